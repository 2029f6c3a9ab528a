"""Executor names -> classes, and the options each executor declares. Modules are imported on
first use so that, say, a thread-pool run never imports Celery; options come from light modules."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from workers.base import Executor
from workers.errors import InputError
from workers.options import Option

_EXECUTORS: dict[str, str] = {
    "async": "workers.async_loop:AsyncExecutor",
    "thread": "workers.thread_pool:ThreadExecutor",
    "process": "workers.process_pool:ProcessExecutor",
    "celery": "workers.celery_executor:CeleryExecutor",
    "hybrid": "workers.hybrid:HybridExecutor",
    "gevent": "workers.gevent_executor:GeventExecutor",
}

# Executors with options of their own -> where they are declared (modules that import no backend).
_OPTIONS: dict[str, str] = {
    "celery": "workers.celery_nodes:OPTIONS",
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


def options_of(name: str) -> tuple[Option, ...]:
    """The options executor ``name`` declares (its class's ``options``, without importing it)."""
    if name not in _OPTIONS:
        return ()
    module_name, _, attr = _OPTIONS[name].partition(":")
    options: tuple[Option, ...] = getattr(importlib.import_module(module_name), attr)
    return options


def executor_options() -> tuple[Option, ...]:
    """Every executor's own options, for the spec, the command line and sweep files."""
    return tuple(option for name in MODES for option in options_of(name))
