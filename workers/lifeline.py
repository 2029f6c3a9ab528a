"""No orphans: a process runner started dies soon after the process that started it.

A coordinator killed without cleaning up (SIGKILL, the OOM killer, a closed terminal) cannot stop
its children, so each child watches its own parent instead:

- ``hold()``, called first thing in a Python child (a pool process, a Celery node or prefork child,
  the gevent worker): a daemon thread polls ``getppid()``; once the parent is gone (the child was
  re-parented) it kills the child -- its whole process group when it leads one, so a Celery node
  takes its prefork children along. A poll, not ``PR_SET_PDEATHSIG``: that signal fires when the
  *thread* that forked exits, which would kill children spawned from a short-lived thread.
- ``die_with_parent`` for a child that runs no Python of ours (redis-server, used by
  ``runner.engine.services``): pass it as ``preexec_fn``; on Linux it sets ``PR_SET_PDEATHSIG`` to
  SIGKILL, then closes the race where the parent died between fork and prctl. Spawn from a thread
  that lives as long as the child (the main thread), for the reason above. Elsewhere than Linux it
  does nothing.

``child_env()`` marks a child's environment so that code shared with the coordinator (the Celery app
module) knows it runs as runner's child: ``hold_if_child()`` holds only then.

Temporary files of a killed run are ``workers.scratch``'s business.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from _thread import start_new_thread  # bound at import: the gevent worker imports this before patching
from collections.abc import Callable
from time import sleep
from typing import Any

ENV = "RUNNER_LIFELINE"  # set to the coordinator's pid in the environment of the children it starts
POLL_S = 0.2
_PR_SET_PDEATHSIG = 1
_held = False


def child_env() -> dict[str, str]:
    """Environment entries for a child that should die with this process."""
    return {ENV: str(os.getpid())}


def hold(parent: int | None = None) -> None:
    """Die within ``POLL_S`` of the parent's death. ``parent``: the pid the parent should have
    (a child that starts after its parent already died then dies at once)."""
    global _held
    if _held:
        return
    _held = True
    expected = os.getppid() if parent is None else parent
    if os.getppid() != expected:
        _die()
    spawn, _ = _real_threads()
    spawn(_watch, (expected,))


def hold_if_child() -> None:
    """``hold()`` if this process was started with ``child_env()`` by its parent."""
    pid = os.environ.get(ENV, "")
    if pid.isdigit() and int(pid) == os.getppid():
        hold(int(pid))
    elif pid.isdigit() and os.getppid() == 1:  # started, but the coordinator is already gone
        _die()


def die_with_parent() -> None:
    """``preexec_fn`` for a child that runs none of our code: SIGKILL when its parent thread ends."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent is already gone: we were handed to init
        os.kill(os.getpid(), signal.SIGKILL)


def _real_threads() -> tuple[Callable[..., Any], Callable[[float], None]]:
    """An OS thread and a blocking sleep, even where gevent patched both (a Celery gevent-pool node):
    a greenlet would not run while a job holds the CPU."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "start_new_thread"), monkey.get_original("time", "sleep")
    return start_new_thread, sleep


def _watch(parent: int) -> None:
    _, pause = _real_threads()
    while os.getppid() == parent:
        pause(POLL_S)
    _die()


def _die() -> None:
    try:
        if os.getpgrp() == os.getpid():  # a group leader (a Celery node): its children go too
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)
