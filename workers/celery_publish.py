"""Sending Celery tasks from the coordinator's event loop without blocking it.

``app.send_task`` is synchronous: kombu makes a fresh redis-py client for each message (a table of
some 170 reply callbacks built every time) and waits for Redis on the loop's own thread, which
under load cost milliseconds per batch. A batch's task message is instead built here -- Celery's
own protocol-2 headers and body (``app.amqp.as_task_v2``), in the envelope kombu's Redis transport
keeps in a queue list -- and LPUSHed with the coordinator's asyncio Redis client, every message of
one loop turn in one command. Workers see exactly what ``send_task(queue=...)`` would have put
there (the default exchange, routing key = queue): a late ack, the visibility timeout and a dead
node's redelivery work as for any Celery message. ``tests/test_celery_publish.py`` holds the two
side by side.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import uuid
from typing import Any

_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"  # as Celery names a sender
_ENVELOPE = {"content-encoding": "utf-8", "content-type": "application/json"}


def task_message(app: Any, name: str, args: list[Any], *, task_id: str, queue: str, time_limit: float) -> str:
    """The JSON text kombu's Redis transport would LPUSH onto ``queue`` for this task."""
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id,
        name,
        args,
        time_limit=time_limit,
        origin=_ORIGIN,
        argsrepr=repr(args),  # Celery's saferepr walks the arguments element by element
        kwargsrepr="{}",
        ignore_result=None,  # as send_task leaves it: the app's task_ignore_result decides
    )
    properties = properties | {
        "delivery_mode": 2,  # persistent, as kombu's default
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),  # the worker's ack and the unacked index key on it
    }
    encoded = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({"body": encoded, **_ENVELOPE, "headers": headers, "properties": properties})


class Publisher:
    """LPUSHes task messages onto one queue: the messages handed over in one turn of the event
    loop go in one command (kombu's order: the first handed over is the first a worker takes).
    ``publish`` returns once Redis has them; a broker error reaches every caller of that command."""

    def __init__(self, redis: Any, queue: str) -> None:
        self._redis = redis
        self._queue = queue
        self._waiting: list[tuple[str, asyncio.Future[None]]] = []
        self._flush: asyncio.Task[None] | None = None

    async def publish(self, message: str) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if self._flush is None:
            self._flush = asyncio.create_task(self._push(), name="celery-publish")
        await future

    async def _push(self) -> None:
        await asyncio.sleep(0)  # let the rest of this loop turn add theirs
        waiting, self._waiting, self._flush = self._waiting, [], None
        try:
            await self._redis.lpush(self._queue, *(message for message, _ in waiting))
        except asyncio.CancelledError:  # the loop is closing: so are its callers
            for _, future in waiting:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in waiting:
            if not future.done():
                future.set_result(None)
