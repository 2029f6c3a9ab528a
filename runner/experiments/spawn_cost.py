"""What it costs to create a coroutine, a thread and a process: measured in a fresh interpreter.

Each measurement runs in its own child interpreter (``python -c``), so the memory one kind
leaves behind never shows in another kind's figures and every kind starts from the same baseline.
Inside the child, N units are created and kept alive until the memory is read:

- ``coroutine``: N ``create_task`` calls on a uvloop loop; the tasks are pending (created, not yet
  run) when memory is read, as in the article's measurement.
- ``thread``: N ``threading.Thread(...).start()``; each thread waits on an event, so all N are
  alive when memory is read (``start`` returns once the thread runs).
- ``process`` (fork, the article's default on Linux) and ``process-spawn`` (a fresh interpreter,
  what runner's process pool uses): N ``multiprocessing.Process(...).start()``; time runs until
  every child has reported that it runs, and memory is the sum of the children's USS (the pages
  each child alone holds: what killing it would free) plus the parent's growth. The children's
  summed RSS is recorded too; it counts pages shared with the parent once per child.

Time per unit is the creation time over N; memory per unit the growth over N. Both come from
the whole batch, so the per-unit figures are averages, not the cost of any one unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from workers.errors import InputError, RunnerError

KINDS = ("coroutine", "thread", "process", "process-spawn")
_CHILD_TIMEOUT_S = 300.0


def measure_in_child(kind: str, n: int) -> dict[str, Any]:
    """Create ``n`` units of ``kind`` in a fresh interpreter; return its figures (see module doc)."""
    if kind not in KINDS:
        raise InputError(f"unknown unit kind {kind!r}; choose from: {', '.join(KINDS)}")
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    code = "import sys; from runner.experiments.spawn_cost import child_main; child_main(sys.argv[1], int(sys.argv[2]))"
    # Own session, so that on a timeout or Ctrl-C the child and any processes it forked go together.
    proc = subprocess.Popen(
        [sys.executable, "-c", code, kind, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=_CHILD_TIMEOUT_S)
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise RunnerError(f"creating {n} units of {kind} took over {_CHILD_TIMEOUT_S:g} s") from exc
        raise
    lines = stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise RunnerError(f"measuring {n} units of {kind} failed (exit {proc.returncode}): {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_main(kind: str, n: int) -> None:
    """Entry point of the child interpreter: one JSON line on stdout."""
    if kind == "coroutine":
        out = _coroutines(n)
    elif kind == "thread":
        out = _threads(n)
    else:
        out = _processes(n, "spawn" if kind == "process-spawn" else _fork_method())
    out |= {"kind": kind, "n": n}
    print(json.dumps(out), flush=True)


def _fork_method() -> str:
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


async def _pending() -> None:
    return None


def _coroutines(n: int) -> dict[str, Any]:
    import uvloop

    async def main() -> dict[str, Any]:
        await asyncio.create_task(_pending())  # first task: the loop's own lazy set-up is not counted
        gc.collect()
        before = _rss()
        began = time.perf_counter()
        tasks = []
        for _ in range(n):
            tasks.append(asyncio.create_task(_pending()))
        took = time.perf_counter() - began
        grown = _rss() - before
        await asyncio.gather(*tasks)
        return {"create_s": took, "memory_bytes": grown, "loop": "uvloop"}

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def _threads(n: int) -> dict[str, Any]:
    release = threading.Event()
    warm = threading.Thread(target=release.wait, daemon=True)  # threading's lazy set-up is not counted
    warm.start()
    gc.collect()
    before = _rss()
    began = time.perf_counter()
    threads = []
    try:
        for _ in range(n):
            thread = threading.Thread(target=release.wait, daemon=True)
            thread.start()
            threads.append(thread)
        took = time.perf_counter() - began
        grown = _rss() - before
    finally:
        release.set()
        for thread in [warm, *threads]:
            thread.join()
    return {"create_s": took, "memory_bytes": grown, "stack_size": threading.stack_size() or "default"}


def _hold(ready: Any, release: Any) -> None:
    ready.release()
    release.wait()


def _processes(n: int, method: str) -> dict[str, Any]:
    ctx: Any = multiprocessing.get_context(method)  # the typeshed base context lacks Process
    ready, release = ctx.Semaphore(0), ctx.Event()
    gc.collect()
    before = _rss()
    began = time.perf_counter()
    procs: list[Any] = []
    try:
        for _ in range(n):
            proc = ctx.Process(target=_hold, args=(ready, release), daemon=True)
            proc.start()
            procs.append(proc)
        started = time.perf_counter() - began
        for _ in range(n):
            ready.acquire()
        took = time.perf_counter() - began
        grown = _rss() - before
        uss = rss = 0
        for proc in procs:
            info = psutil.Process(proc.pid).memory_full_info()
            uss += int(info.uss)
            rss += int(info.rss)
    finally:
        release.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return {
        "create_s": took,
        "start_calls_s": started,
        "memory_bytes": uss + max(0, grown),
        "children_uss_bytes": uss,
        "children_rss_bytes": rss,
        "parent_growth_bytes": grown,
        "start_method": method,
    }
