"""``offload(fn, *args)``: where a user's coroutine hands its CPU part to, in every executor.

``await offload(fn, *args)`` returns ``fn(*args)``. In hybrid mode it runs in the executor's
process pool (``fn`` and its arguments must pickle: a module-level function), so the loop keeps
serving I/O while it runs -- "await the I/O, offload the CPU", measured on the user's own code.
Everywhere else it runs inline, exactly as if the function had called ``fn(*args)`` itself: on the
async executor that blocks the loop (the loop-lag figure shows it), and in thread, process, Celery
and gevent workers -- where an async-only function runs in a per-worker event loop -- it runs in
that worker, which is where the CPU work goes in those executors anyway.

The executor says where to offload through a context variable that it sets around each job; this
module imports nothing else of runner, so ``from runner import offload`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
Offloader = Callable[..., Awaitable[Any]]

_target: ContextVar[Offloader | None] = ContextVar("runner_offload", default=None)


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` where this executor runs CPU work; inline when it has no pool for it."""
    handler = _target.get()
    if handler is None:
        return fn(*args)
    result: T = await handler(fn, *args)
    return result


@contextlib.contextmanager
def offloading_to(handler: Offloader) -> Iterator[None]:
    """``offload`` calls made (in this context) while this is open go to ``handler``."""
    token = _target.set(handler)
    try:
        yield
    finally:
        _target.reset(token)
