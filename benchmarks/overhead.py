"""What runner adds on top of each bare primitive, for no-op jobs.

    python benchmarks/overhead.py [--jobs N] [--concurrency C] [--rounds R] [--modes async,thread,...]
                                  [--json FILE]

In one process, each round runs the same no-op jobs through a runner executor (coordinator,
ledger, latency histograms and resource sampling all on) and through the best hand-written
equivalent, alternating A/B/A/B so drift hits both alike:

- async:   a fixed pool of C worker coroutines on uvloop pulling jobs from one iterator;
- async-10k: the same at 10,000 in flight, each job yielding once to the loop (as runner's drivers
           do) -- the per-job cost of runner's async path above the bare pool;
- thread:  ``ThreadPoolExecutor(C).map``;
- process: ``ProcessPoolExecutor(W).map`` with its best chunksize (16 to 4096, tried, not guessed);
- celery:  a plain ``apply_async`` loop with result retrieval, on the same number of workers.

It prints jobs/s for both (median of the rounds), the ratio runner / hand-written, and runner's
overhead in microseconds per job (1/runner - 1/hand-written), each with its min..max over rounds.
The last section measures what latency recording, the time series and resource sampling cost (on
vs off, ``measure(instrument=False)``, which exists for this benchmark only), and the ``gather`` +
``Semaphore`` pattern that is often used instead of a worker pool. ``--json FILE`` writes the
rounds as a results file that ``runner compare`` reads, figure ``vs_bare`` (``make perf-check``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop
from overhead_results import write_results

from runner.engine.coordinator import executor_config, measure
from runner.engine.ledger import Ledger
from runner.engine.metrics import JobLatencies, LoopLag, ResourceSampler
from runner.engine.results import RunResult
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import Timeline
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
        self.runs: list[RunResult] = []  # runner's rounds, each with its bare rate beside it

    def add(self, run: RunResult, bare: float) -> None:
        self.ours.append(run.throughput_jobs_per_s)
        self.theirs.append(bare)
        self.runs.append(replace(run, bare_jobs_per_s=round(bare, 2), machine=None, calibration=None))

    def report(self) -> str:
        ours, theirs = statistics.median(self.ours), statistics.median(self.theirs)
        ratios = [a / b for a, b in zip(self.ours, self.theirs, strict=True)]
        extra = [(1 / a - 1 / b) * 1e6 for a, b in zip(self.ours, self.theirs, strict=True)]
        return (
            f"{self.name:8s} runner {ours:11,.0f} jobs/s   {self.baseline} {theirs:11,.0f} jobs/s   "
            f"ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f})   "
            f"overhead {statistics.median(extra):6.1f} us/job ({min(extra):.1f}..{max(extra):.1f})"
        )


async def runner_run(
    executor: Any, spec: WorkloadSpec, services: LocalServices, cal: Any, instrument: bool = True
) -> RunResult:
    result = await measure(executor, spec, cal, services, instrument=instrument)
    assert result.jobs.done == spec.jobs and result.jobs.lost == 0, result.jobs
    return result


async def compare(mode: str, args: argparse.Namespace, services: LocalServices, cal: Any) -> Pair:
    jobs = args.jobs // 10 if mode.startswith("celery") else args.jobs
    name = mode.split("-")[0]
    values = spec_values(args, jobs)
    if mode in ("celery", "celery-1"):  # celery-1 is runner's one-task-per-job path (--batch 1)
        values["batch"] = 1 if mode == "celery-1" else 0
    if mode == "async-10k":
        values["concurrency"] = 10_000
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
    elif mode == "async-10k":
        pair = Pair(mode, "yielding pool")

        def baseline() -> Awaitable[float]:
            return worker_pool_yielding(jobs, 10_000)
    elif mode == "thread":
        pool = ThreadPoolExecutor(args.concurrency)
        pair, cleanup = Pair(mode, "pool.map"), pool.shutdown

        async def baseline() -> float:
            return thread_map(pool, jobs)
    elif mode == "process":
        procs = ProcessPoolExecutor(args.workers)
        # The best chunksize, tried (the better of two maps each), not guessed.
        chunk = max((16, 256, 1024, 4096), key=lambda c: max(process_map(procs, jobs, c) for _ in range(2)))
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
        await runner_run(executor, spec, services, cal)  # warm-up, not counted
        await baseline()
        for _ in range(args.rounds):
            run = await runner_run(executor, spec, services, cal)
            pair.add(run, await baseline())
    finally:
        cleanup()
    return pair


async def measurement_cost(mode: str, args: argparse.Namespace, services: LocalServices, cal: Any) -> Pair:
    """No-op jobs with latency recording, time series and resource sampling on, then off, alternating."""
    spec = WorkloadSpec.build(spec_values(args, args.jobs), (mode,))
    pair = Pair(mode, "measurement off")
    async with executor_class(mode)(executor_config(spec), services) as executor:
        await runner_run(executor, spec, services, cal)
        for _ in range(args.rounds):
            on = await runner_run(executor, spec, services, cal, instrument=True)
            off = await runner_run(executor, spec, services, cal, instrument=False)
            pair.add(on, off.throughput_jobs_per_s)
    return pair


def cost_line(pair: Pair) -> str:
    costs = [1 - a / b for a, b in zip(pair.ours, pair.theirs, strict=True)]
    return (
        f"measurement cost ({pair.name}, no-op jobs): on {statistics.median(pair.ours):,.0f} jobs/s, off "
        f"{statistics.median(pair.theirs):,.0f} jobs/s: {statistics.median(costs):.1%} of throughput "
        f"({min(costs):.1%}..{max(costs):.1%})"
    )


def ignore(_: float) -> None:
    return None


def recording_cpu(batch: int, jobs: int = 200_000, buckets: int = 20) -> float:
    """CPU nanoseconds per job that latency recording and the time series' flushes cost, on
    synthetic results (``batch`` jobs per report), less the same loop recording nothing: a figure
    that, unlike the on/off throughputs, a busy machine hardly moves (it is this thread's CPU time)."""
    service = array("d", [1e-6] * batch)

    def once(record: bool) -> float:
        latencies = JobLatencies()
        timeline = Timeline(latencies, Ledger(jobs), LoopLag(), ResourceSampler([], enabled=False))
        timeline.begin(time.perf_counter())
        total, service_one = (latencies.record_total, latencies.record_service) if record else (ignore, ignore)
        every, began, done = jobs // buckets, time.thread_time(), 0
        while done < jobs:
            if batch > 1:
                if record:
                    latencies.record_batch(0.002 + done * 1e-9, service, {})
                done += batch
            else:
                total(0.002 + done * 1e-9)
                service_one(1e-6)
                done += 1
            if record and done % every < batch:
                timeline.close_bucket()
        return time.thread_time() - began

    return min(once(True) - once(False) for _ in range(3)) / jobs * 1e9


def load_line() -> str:
    return "load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg())


async def main_async(args: argparse.Namespace) -> None:
    cal = for_coordinator()  # one for every mode (RUNNER_CALIBRATION pins it)
    began = time.perf_counter()
    print(load_line(), flush=True)
    pairs: list[Pair] = []
    with LocalServices() as services:
        for mode in args.modes.split(","):
            pairs.append(await compare(mode, args, services, cal))
            print(pairs[-1].report(), flush=True)
        for mode in args.cost_modes.split(",") if args.cost_modes else ():
            pairs.append(await measurement_cost(mode, args, services, cal))
            print(cost_line(pairs[-1]), flush=True)
    print(load_line(), flush=True)
    print(
        f"recording CPU per job: {recording_cpu(1):.0f} ns one by one, {recording_cpu(250):.0f} ns in batches of 250",
        flush=True,
    )
    if args.json:
        write_results(args.json, pairs, cal, time.perf_counter() - began)
    if args.short:
        return
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
    parser.add_argument("--modes", default="async,async-10k,thread,process,celery,celery-1")
    parser.add_argument("--cost-modes", default="async,process", help="measurement cost, on vs off")
    parser.add_argument("--json", type=Path, help="write the rounds as a results file for `runner compare`")
    parser.add_argument("--short", action="store_true", help="skip the gather + Semaphore section")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
