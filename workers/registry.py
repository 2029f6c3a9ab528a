"""Executor names -> classes. Modules are imported on first use so that, say, a thread-pool run
never imports Celery."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from workers.base import Executor
from workers.errors import InputError

_EXECUTORS: dict[str, str] = {
    "async": "workers.async_loop:AsyncExecutor",
    "thread": "workers.thread_pool:ThreadExecutor",
    "process": "workers.process_pool:ProcessExecutor",
    "celery": "workers.celery_executor:CeleryExecutor",
    "hybrid": "workers.hybrid:HybridExecutor",
    "gevent": "workers.gevent_executor:GeventExecutor",
}

MODES: tuple[str, ...] = tuple(_EXECUTORS)


def executor_class(name: str) -> type[Executor]:
    try:
        module_name, _, class_name = _EXECUTORS[name].partition(":")
    except KeyError:
        raise InputError(f"--mode: unknown executor {name!r}; choose one of: {', '.join(MODES)}") from None
    cls: type[Executor] = getattr(importlib.import_module(module_name), class_name)
    return cls


@contextlib.contextmanager
def registered(name: str, target: str) -> Iterator[None]:
    """Make ``name`` -> ``"module:Class"`` an executor for the duration (the fast tests plug their
    in-process stub in this way). ``MODES`` -- what ``--mode all`` means -- is left unchanged."""
    if name in _EXECUTORS:
        raise ValueError(f"executor {name!r} is already registered")
    _EXECUTORS[name] = target
    try:
        yield
    finally:
        del _EXECUTORS[name]
