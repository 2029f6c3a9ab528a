"""Waiting out broker outages for the Celery executor.

Sending and reading wait while Redis is unreachable and carry on when it answers again: whoever
notices first starts one recovery, everyone else waits on ``healthy``. If Redis comes back empty (a
restart without persistence loses queues and replies: its ``run_id`` changed), ``on_restart``
resends every job still waiting. If it stays away for ``limit_s``, ``on_give_up`` gets the
``ServiceError`` that ends the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from workers.celery_replies import cancel_and_wait
from workers.clients import redact
from workers.errors import ServiceError

RETRY_S = 0.2  # between reconnection attempts while the broker is away


def broker_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable broker raises, from redis-py (replies) and kombu (sending)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OperationalError, OSError)


async def server_id(redis: Any) -> str:
    """Redis's ``run_id``: a new one means the server restarted (and, without persistence, lost all)."""
    info = await redis.info("server")
    return str(info.get("run_id", ""))


class Outage:
    """One recovery at a time; ``healthy`` is set whenever nobody needs to wait."""

    def __init__(
        self,
        redis: Any,
        broker_url: str,
        limit_s: float,
        *,
        on_restart: Callable[[], Awaitable[None]],
        on_give_up: Callable[[ServiceError], None],
    ) -> None:
        self._redis = redis
        self._broker_url = broker_url
        self._limit_s = limit_s
        self._on_restart = on_restart
        self._on_give_up = on_give_up
        self._errors = broker_errors()
        self.server_id = ""
        self.healthy = asyncio.Event()
        self.healthy.set()
        self._recovery: asyncio.Task[None] | None = None

    def start(self, exc: BaseException) -> asyncio.Task[None]:
        if self._recovery is None or self._recovery.done():
            self.healthy.clear()
            self._recovery = asyncio.create_task(self._recover(exc), name="celery-broker-recovery")
        return self._recovery

    async def stop(self) -> None:
        if self._recovery is not None:
            await cancel_and_wait(self._recovery, 3.0)  # bounded: it gives up on its own after the limit

    async def _recover(self, cause: BaseException) -> None:
        give_up = time.monotonic() + self._limit_s
        try:
            while True:
                try:
                    now = await server_id(self._redis)
                    if now != self.server_id:  # restarted empty: queued messages and replies are gone
                        await self._on_restart()
                        self.server_id = now
                    return
                except self._errors as exc:
                    cause = exc
                if time.monotonic() >= give_up:
                    self._on_give_up(
                        ServiceError(
                            f"lost the broker: Redis at {redact(self._broker_url)} did not answer for "
                            f"{self._limit_s:g} s ({cause}); start it again or check REDIS_URL"
                        )
                    )
                    return
                await asyncio.sleep(RETRY_S)
        finally:
            self.healthy.set()  # wakes everyone waiting: to carry on, or to see the fatal error
