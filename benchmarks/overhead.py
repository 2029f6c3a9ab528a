"""What runner adds on top of each bare primitive, for no-op jobs.

    python benchmarks/overhead.py [--jobs N] [--concurrency C] [--rounds R] [--modes async,thread,...]

In one process, each round runs the same no-op jobs through a runner executor (coordinator,
ledger, latency histograms and resource sampling all on) and through the best hand-written
equivalent, alternating A/B/A/B so drift hits both alike:

- async:   a fixed pool of C worker coroutines on uvloop pulling jobs from one iterator;
- thread:  ``ThreadPoolExecutor(C).map``;
- process: ``ProcessPoolExecutor(W).map`` with its best chunksize (tried, not guessed);
- celery:  a plain ``apply_async`` loop with result retrieval, on the same number of workers.

It prints jobs/s for both (median of the rounds), the ratio runner / hand-written, and runner's
overhead in microseconds per job (1/runner - 1/hand-written), each with its min..max over rounds.
The last section measures what latency recording and resource sampling cost (on vs off), and the
``gather`` + ``Semaphore`` pattern that is often used instead of a worker pool.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import uvloop

from runner.engine.coordinator import executor_config, measure
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from workers.calibration import for_coordinator
from workers.celery_nodes import LocalNodes, NodeSpec, wait_until_answering
from workers.registry import executor_class

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def noop(_: int) -> None:
    return None


async def noop_async(_: int) -> None:
    return None


# --- hand-written equivalents ---------------------------------------------------------------


async def async_worker_pool(jobs: int, concurrency: int) -> float:
    source = iter(range(jobs))

    async def worker() -> None:
        for job in source:
            await noop_async(job)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return jobs / (time.perf_counter() - began)


async def gather_with_semaphore(jobs: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job: int) -> None:
        async with semaphore:
            await asyncio.sleep(0)  # a job that yields once, as real I/O would
            await noop_async(job)

    began = time.perf_counter()
    await asyncio.gather(*(one(job) for job in range(jobs)))
    return jobs / (time.perf_counter() - began)


async def worker_pool_yielding(jobs: int, concurrency: int) -> float:
    source = iter(range(jobs))

    async def worker() -> None:
        for job in source:
            await asyncio.sleep(0)
            await noop_async(job)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return jobs / (time.perf_counter() - began)


def thread_map(pool: ThreadPoolExecutor, jobs: int) -> float:
    began = time.perf_counter()
    for _ in pool.map(noop, range(jobs)):
        pass
    return jobs / (time.perf_counter() - began)


def process_map(pool: ProcessPoolExecutor, jobs: int, chunksize: int) -> float:
    began = time.perf_counter()
    for _ in pool.map(noop, range(jobs), chunksize=chunksize):
        pass
    return jobs / (time.perf_counter() - began)


def start_baseline_workers(redis_url: str, count: int) -> LocalNodes:
    nodes = LocalNodes({"REDIS_URL": redis_url}, paths=(HERE,))
    try:
        nodes.start(NodeSpec("baseline{i}@%h", app="celery_baseline"), count)
        from celery_baseline import app

        app.conf.broker_url = app.conf.result_backend = redis_url
        if wait_until_answering(app, count, 60.0, nodes=nodes, marker="baseline") is None:
            raise SystemExit("baseline Celery workers did not start")
    except BaseException:
        nodes.stop()
        raise
    return nodes


def apply_async_loop(jobs: int) -> float:
    from celery_baseline import noop

    began = time.perf_counter()
    results = [noop.apply_async((job,)) for job in range(jobs)]
    for result in results:
        result.get(timeout=120)
    return jobs / (time.perf_counter() - began)


# --- the harness ------------------------------------------------------------------------------


def spec_values(args: argparse.Namespace, jobs: int) -> dict[str, Any]:
    return {
        "jobs": jobs,
        "mix": "noop=1",
        "concurrency": args.concurrency,
        "workers": args.workers,
        "celery_workers": args.workers,
    }


class Pair:
    """Median and range of runner's and the baseline's rates over the rounds."""

    def __init__(self, name: str, baseline: str) -> None:
        self.name, self.baseline = name, baseline
        self.ours: list[float] = []
        self.theirs: list[float] = []

    def report(self) -> str:
        ours, theirs = statistics.median(self.ours), statistics.median(self.theirs)
        ratios = [a / b for a, b in zip(self.ours, self.theirs, strict=True)]
        extra = [(1 / a - 1 / b) * 1e6 for a, b in zip(self.ours, self.theirs, strict=True)]
        return (
            f"{self.name:8s} runner {ours:11,.0f} jobs/s   {self.baseline} {theirs:11,.0f} jobs/s   "
            f"ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})   "
            f"overhead {statistics.median(extra):6.1f} us/job ({min(extra):.1f}..{max(extra):.1f})"
        )


async def runner_rate(
    executor: Any, spec: WorkloadSpec, services: LocalServices, cal: Any, instrument: bool = True
) -> float:
    result = await measure(executor, spec, cal, services, instrument=instrument)
    assert result.jobs.done == spec.jobs, result.jobs
    return result.throughput_jobs_per_s


async def compare(mode: str, args: argparse.Namespace, services: LocalServices, cal: Any) -> Pair:
    jobs = args.jobs if mode in ("async", "thread") else args.jobs // 10
    name = "celery" if mode.startswith("celery") else mode
    if mode in ("celery", "celery-1"):  # celery-1 is runner's one-task-per-job path (--batch 1)
        values = {**spec_values(args, jobs), "batch": 1 if mode == "celery-1" else 0}
    else:
        values = spec_values(args, jobs)
    spec = WorkloadSpec.build(values, (name,))
    async with executor_class(name)(executor_config(spec), services) as executor:
        return await _rounds(mode, args, jobs, executor, spec, services, cal)


async def _rounds(
    mode: str, args: argparse.Namespace, jobs: int, executor: Any, spec: WorkloadSpec, services: LocalServices, cal: Any
) -> Pair:
    baseline: Callable[[], Awaitable[float]]
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if mode == "async":
        pair = Pair(mode, "worker pool")

        def baseline() -> Awaitable[float]:
            return async_worker_pool(jobs, args.concurrency)
    elif mode == "thread":
        pool = ThreadPoolExecutor(args.concurrency)
        pair, cleanup = Pair(mode, "pool.map"), pool.shutdown

        async def baseline() -> float:
            return thread_map(pool, jobs)
    elif mode == "process":
        procs = ProcessPoolExecutor(args.workers)
        chunk = max((1, 16, 256, 4096), key=lambda c: process_map(procs, jobs, c))
        pair, cleanup = Pair(mode, f"map(chunksize={chunk})"), procs.shutdown

        async def baseline() -> float:
            return process_map(procs, jobs, chunk)
    elif mode in ("celery", "celery-1"):
        nodes = start_baseline_workers(services.redis_url(), args.workers)
        pair, cleanup = Pair(mode, "apply_async loop"), nodes.stop

        async def baseline() -> float:
            return await asyncio.to_thread(apply_async_loop, jobs)
    else:
        raise SystemExit(f"no hand-written equivalent for {mode}")
    try:
        await runner_rate(executor, spec, services, cal)  # warm-up, not counted
        await baseline()
        for _ in range(args.rounds):
            pair.ours.append(await runner_rate(executor, spec, services, cal))
            pair.theirs.append(await baseline())
    finally:
        cleanup()
    return pair


async def measurement_cost(args: argparse.Namespace, services: LocalServices, cal: Any) -> str:
    """Async no-op jobs with latency recording and resource sampling on, then off, alternating."""
    spec = WorkloadSpec.build({"jobs": args.jobs, "mix": "noop=1", "concurrency": args.concurrency}, ("async",))
    on: list[float] = []
    off: list[float] = []
    async with executor_class("async")(executor_config(spec), services) as executor:
        await runner_rate(executor, spec, services, cal)
        for _ in range(args.rounds):
            on.append(await runner_rate(executor, spec, services, cal, instrument=True))
            off.append(await runner_rate(executor, spec, services, cal, instrument=False))
    costs = [1 - a / b for a, b in zip(on, off, strict=True)]
    return (
        f"measurement cost (async, no-op jobs): on {statistics.median(on):,.0f} jobs/s, off "
        f"{statistics.median(off):,.0f} jobs/s: {statistics.median(costs):.1%} of throughput "
        f"({min(costs):.1%}..{max(costs):.1%})"
    )


async def main_async(args: argparse.Namespace) -> None:
    cal = for_coordinator()  # one for every mode (RUNNER_CALIBRATION pins it)
    with LocalServices() as services:
        for mode in args.modes.split(","):
            print((await compare(mode, args, services, cal)).report(), flush=True)
        print(await measurement_cost(args, services, cal), flush=True)
    for flight in (args.concurrency, 10_000):
        sem = statistics.median([await gather_with_semaphore(args.jobs // 4, flight) for _ in range(3)])
        pool = statistics.median([await worker_pool_yielding(args.jobs // 4, flight) for _ in range(3)])
        print(
            f"yielding no-op jobs, {flight:,} in flight: gather + Semaphore {sem:,.0f} jobs/s, "
            f"worker pool {pool:,.0f} jobs/s ({pool / sem:.1f}x)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="async,thread,process,celery,celery-1")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
