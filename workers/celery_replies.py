"""Reading the Celery executor's replies: one coroutine per workload drains the reply list.

Workers push one JSON object per run of a job onto a per-workload Redis list (see
``workers.celery_app``): ``{"id", "worker", "service_s", "result"}`` or ``{"id", "worker",
"error"}`` (a batch handed over whole: one compact reply, ``workers.celery_compact``).
The reader checks each one before it is handed on: a reply that is not such an object, or names
a job id never sent in this workload, means something else writes to the list (or a
worker of another version does), so nothing the list says can be trusted any more. The reader then
stops the run with one ``ServiceError`` naming the list and the reply -- never a silent death that
would leave every waiting job to time out. Any other failure of the reader does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from workers.celery_compact import COMPACT_MARK, read_compact
from workers.errors import ServiceError

_SHOWN = 60  # characters of a bad reply quoted in the error


def parse_reply(raw: bytes | str, sent_ids: int) -> dict[str, Any]:
    """The reply as a dict with an int ``id`` below ``sent_ids``; ValueError saying what is wrong."""
    if isinstance(raw, bytes) and raw[:1] == COMPACT_MARK:  # a whole batch's reply (workers.celery_compact)
        return read_compact(raw, sent_ids)
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not JSON") from None
    if not isinstance(reply, dict):
        raise ValueError("not a JSON object")
    job_id = reply.get("id")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        raise ValueError("no integer 'id'")
    if not 0 <= job_id < sent_ids:
        raise ValueError(f"job id {job_id} out of range (0 to {sent_ids - 1} were sent)")
    if "error" in reply:
        if not isinstance(reply["error"], str):
            raise ValueError("'error' is not text")
    elif not isinstance(reply.get("service_s"), int | float) or not isinstance(reply.get("worker"), str):
        raise ValueError("neither 'error' nor 'service_s' and 'worker'")
    return reply


class ReplyReader:
    """Drains ``key`` on ``redis`` while started; each good reply goes to ``on_reply``.

    ``sent_ids()`` bounds valid ids; ``on_broker_error`` waits out an outage (or raises);
    ``on_fatal`` receives the one error that ends the run."""

    def __init__(
        self,
        redis: Any,
        key: str,
        *,
        sent_ids: Callable[[], int],
        on_reply: Callable[[dict[str, Any]], None],
        on_broker_error: Callable[[BaseException], Awaitable[None]],
        broker_errors: tuple[type[BaseException], ...],
        on_fatal: Callable[[ServiceError], None],
    ) -> None:
        self.key = key
        self._redis = redis
        self._sent_ids = sent_ids
        self._on_reply = on_reply
        self._on_broker_error = on_broker_error
        self._broker_errors = broker_errors
        self._on_fatal = on_fatal
        self._reading = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reading = True
        self._task = asyncio.create_task(self._read(), name="celery-replies")

    async def stop(self) -> None:
        """End the reader (bounded even if a cancellation is lost) and drop the list."""
        task, self._task = self._task, None
        if task is None:
            return
        self._reading = False  # ends the loop within a second even if the cancellation is lost
        if not await cancel_and_wait(task, 3.0):
            await self._redis.connection_pool.disconnect()  # fails the read it is stuck in
            await cancel_and_wait(task, 3.0)
        with contextlib.suppress(Exception):  # best effort: the broker may be gone already
            await self._redis.delete(self.key)

    async def _read(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except ServiceError as exc:  # the outage handler gave up: already reported
            self._on_fatal(exc)
        except Exception as exc:
            self._on_fatal(ServiceError(f"the Celery reply reader failed: {type(exc).__name__}: {exc}"))

    async def _loop(self) -> None:
        # redis-py's reads run under asyncio.timeout, which on Python 3.11 can swallow a cancel that
        # lands as its own deadline expires: the flag, not only the cancel, ends this loop.
        while self._reading:
            try:
                first = await self._redis.blpop([self.key], timeout=1)
                if first is None:
                    continue
                rest: Any = await self._redis.lpop(self.key, 1000)
            except self._broker_errors as exc:
                await self._on_broker_error(exc)
                continue
            for raw in [first[1], *(rest or [])]:
                try:
                    reply = parse_reply(raw, self._sent_ids())
                except ValueError as exc:
                    shown = raw[:_SHOWN].decode(errors="replace") if isinstance(raw, bytes) else str(raw)[:_SHOWN]
                    where = f"the Celery reply list {self.key}"
                    self._on_fatal(ServiceError(f"malformed reply on {where} ({exc}): {shown!r}"))
                    return
                self._on_reply(reply)


async def cancel_and_wait(task: asyncio.Task[None], timeout_s: float) -> bool:
    """Cancel ``task`` and wait at most ``timeout_s`` for it to end; its outcome is always retrieved."""
    task.cancel()
    await asyncio.wait([task], timeout=timeout_s)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task.done()
