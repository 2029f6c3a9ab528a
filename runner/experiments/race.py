"""The race-conditions row of the article's comparison table, measured: N read-modify-write
increments of one shared counter, split over several coroutines, threads or processes, and how
many of them were lost (the final count falls short of N).

"Asynchronous Programming" (Tai Le, 2023) says races are less likely with coroutines (but happen
when memory is shared), very likely with threads, and do not happen with processes because they
share no memory. Each variant below tests one part of that claim:

    coroutines           no ``await`` between read and write: the loop cannot switch there
    coroutines-await     an ``await`` between read and write: another coroutine runs in the gap
    threads              plain read-modify-write; the interpreter may switch threads in the gap
    threads-lock         the same under a ``threading.Lock``
    processes-shared     a counter in shared memory (``multiprocessing.Value``, no lock)
    processes-lock       the same under the value's lock
    processes-private    an ordinary variable: each process increments its own copy, so nothing
                         races -- and the parent sees none of the updates (``visible`` = 0)

CPython hands the GIL to another thread only at certain points -- a function call, a loop's
backward jump -- and by default only every 5 ms. So a bare ``x = x + 1`` between two such points
cannot be torn in practice, while one with a call between the read and the write (as real code
has: compute, then store) can. The ``threads`` variant has such a call, and runs with a 1 us
switch interval (restored afterwards) so that a short run sees what a long one would.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

VARIANTS = (
    "coroutines",
    "coroutines-await",
    "threads",
    "threads-lock",
    "processes-shared",
    "processes-lock",
    "processes-private",
)
ARTICLE_CLAIMS = {
    "coroutine": "less likely (one thread, tasks run in turn), but it happens when memory is shared",
    "thread": "very likely: context switches interleave threads",
    "process": "does not happen: processes share no memory",
}


@dataclass(frozen=True)
class RaceResult:
    variant: str
    strategy: str  # the article's column: coroutine, thread or process
    workers: int
    increments: int
    visible: int  # the counter's value as the starter sees it at the end
    lost: int
    lost_per_million: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Box:
    value = 0


def _next(value: int) -> int:
    return value + 1


async def _coroutines(per_worker: int, workers: int, yield_between: bool) -> int:
    box = _Box()

    async def worker() -> None:
        for _ in range(per_worker):
            seen = box.value
            if yield_between:
                await asyncio.sleep(0)
            box.value = seen + 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return box.value


def _threads(per_worker: int, workers: int, locked: bool) -> int:
    box, lock = _Box(), threading.Lock()
    start = threading.Barrier(workers)  # all at once: else the first may finish before the last starts

    def worker() -> None:
        start.wait()
        for _ in range(per_worker):
            if locked:
                with lock:
                    box.value = box.value + 1
            else:
                seen = box.value
                box.value = _next(seen)  # a call: where the interpreter may hand the GIL over

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    return box.value


_private = 0


def _shared_worker(counter: Any, go: Any, per_worker: int, locked: bool) -> None:
    go.wait()
    for _ in range(per_worker):
        if locked:
            with counter.get_lock():
                counter.value += 1
        else:
            seen = counter.value
            counter.value = seen + 1


def _private_worker(go: Any, per_worker: int) -> None:
    global _private
    go.wait()
    for _ in range(per_worker):
        _private += 1


def _processes(per_worker: int, workers: int, mode: str) -> int:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)  # with a lock, used only by processes-lock
    go = context.Event()  # released once every process is up: they start interpreters at different speeds
    if mode == "private":
        procs = [context.Process(target=_private_worker, args=(go, per_worker)) for _ in range(workers)]
    else:
        procs = [
            context.Process(target=_shared_worker, args=(counter, go, per_worker, mode == "lock"))
            for _ in range(workers)
        ]
    for proc in procs:
        proc.start()
    time.sleep(0.05 * workers)  # what an interpreter takes to start; they then wait on ``go``
    go.set()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a race process exited with {proc.exitcode}")
    return _private if mode == "private" else int(counter.value)


def run_variant(variant: str, increments: int, workers: int = 4) -> RaceResult:
    per_worker = max(1, increments // workers)
    total = per_worker * workers
    runs: dict[str, tuple[str, Callable[[], int]]] = {
        "coroutines": ("coroutine", lambda: asyncio.run(_coroutines(per_worker, workers, False))),
        "coroutines-await": ("coroutine", lambda: asyncio.run(_coroutines(per_worker, workers, True))),
        "threads": ("thread", lambda: _threads(per_worker, workers, False)),
        "threads-lock": ("thread", lambda: _threads(per_worker, workers, True)),
        "processes-shared": ("process", lambda: _processes(per_worker, workers, "shared")),
        "processes-lock": ("process", lambda: _processes(per_worker, workers, "lock")),
        "processes-private": ("process", lambda: _processes(per_worker, workers, "private")),
    }
    strategy, run = runs[variant]
    began = time.perf_counter()
    visible = run()
    seconds = time.perf_counter() - began
    lost = total - visible
    return RaceResult(variant, strategy, workers, total, visible, lost, round(lost / total * 1e6, 1), seconds)


def measure_races(increments: int = 200_000, workers: int = 4) -> dict[str, Any]:
    """Every variant once; the figures a report's race table needs, with the article's claims."""
    results = [run_variant(variant, increments, workers).to_dict() for variant in VARIANTS]
    return {"increments": increments, "workers": workers, "variants": results, "article": ARTICLE_CLAIMS}
