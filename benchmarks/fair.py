"""Runner's executors against the like-for-like way a user would do the same by hand.

    python benchmarks/fair.py [--repeats 5] [--only thread,celery-batched,celery-1,hybrid,io,cpu] [--json FILE]

1. thread:  runner's thread executor vs the same uvloop loop awaiting ``run_in_executor`` on a
   ``ThreadPoolExecutor`` of the same size, with the same jobs in flight (no-op jobs); also
   ``pool.map`` (every job queued at once), which is not like-for-like, for reference.
2. celery-batched: runner's Celery executor with ``--batch 0`` (jobs batched by measured cost)
   vs a user's own batching: one task that takes a list of jobs, ``apply_async`` per chunk of the
   size runner chose in the warm-up, every result fetched.
3. celery-1: runner's Celery executor with ``--batch 1`` (one task per job, the default) vs a plain
   ``apply_async`` loop with every result fetched.
4. hybrid: mixed jobs (50 ms I/O, then 5 ms CPU) vs each single strategy at its best
   configuration: a process pool with one process per job in flight, threads and the event loop
   at the same in-flight count.
5. io: sleep jobs of 100 ms -- the event loop vs a process pool sized by cores and one sized for
   the jobs in flight; cpu: pure-Python CPU jobs of 20 ms -- a process pool sized by cores vs the
   event loop (the two ratios of ``benchmarks/executors.py``, with one calibration and intervals).

One calibration (``workers.calibration.for_coordinator``, once; ``RUNNER_CALIBRATION`` pins it) sizes
the CPU work of every arm. Each
arm runs once as a warm-up (not counted), then ``--repeats`` rounds run every arm in a freshly
shuffled order, so drift on a shared machine hits all arms alike. Ratios are of geometric means
with 95 % intervals from Welch's t on log ratios (``runner.engine.stats.log_ratio``: the same
rule as ``runner bench`` and ``runner compare``). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import uvloop

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from overhead import apply_async_loop, noop, start_baseline_workers  # noqa: E402

from runner.engine.coordinator import executor_config, measure  # noqa: E402
from runner.engine.services import LocalServices  # noqa: E402
from runner.engine.spec import WorkloadSpec  # noqa: E402
from runner.engine.stats import log_ratio  # noqa: E402
from workers.calibration import Calibration, for_coordinator  # noqa: E402
from workers.registry import executor_class  # noqa: E402

CONTESTS = ("thread", "celery-batched", "celery-1", "hybrid", "io", "cpu")


@dataclass
class Arm:
    """One way of running the workload; ``run`` returns jobs/s of one measured repeat."""

    name: str
    run: Callable[[], Awaitable[float]]
    samples: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


Pair = tuple[str, str, str]  # arm a, arm b, a note printed beside a / b


async def contest(title: str, arms: list[Arm], pairs: list[Pair], repeats: int, seed: int) -> dict[str, Any]:
    """Warm every arm up once, then ``repeats`` rounds in shuffled order; print and return the ratios."""
    load_before = load_avg()
    for arm in arms:
        await arm.run()  # warm-up, not counted
    shuffle = random.Random(seed)
    for _ in range(repeats):
        order = list(arms)
        shuffle.shuffle(order)
        for arm in order:
            arm.samples.append(await arm.run())
    load_after = load_avg()
    by_name = {arm.name: arm for arm in arms}
    print(f"\n{title} -- {repeats} shuffled rounds after a warm-up; load average {load_before} -> {load_after}")
    for arm in arms:
        gmean = statistics.geometric_mean(arm.samples)
        print(f"  {arm.name:34s} {gmean:12,.1f} jobs/s  (min {min(arm.samples):,.1f}, max {max(arm.samples):,.1f})")
    ratios = []
    for a, b, note in pairs:
        r = log_ratio(by_name[a].samples, by_name[b].samples)
        verdict = "no difference" if r.low <= 1 <= r.high else ("faster" if r.value > 1 else "slower")
        print(f"  {a} / {b} = {r.value:.2f}x (95 % CI {r.low:.2f}..{r.high:.2f}, p={r.p_value:.3g}): {verdict}{note}")
        ratios.append({"a": a, "b": b, **r.to_dict(), "note": note.strip(" ;")})
    return {
        "title": title,
        "repeats": repeats,
        "load_avg_1m": [load_before, load_after],
        "arms": {arm.name: {"jobs_per_s": arm.samples, **arm.info} for arm in arms},
        "ratios": ratios,
    }


class Runners:
    """Runner's executors, each started once and kept for all the repeats of a contest."""

    def __init__(self, stack: contextlib.AsyncExitStack, services: LocalServices, cal: Calibration) -> None:
        self.stack, self.services, self.cal = stack, services, cal

    async def arm(self, name: str, mode: str, values: dict[str, Any]) -> Arm:
        spec = WorkloadSpec.build(values, (mode,))
        executor = await self.stack.enter_async_context(executor_class(mode)(executor_config(spec), self.services))
        info: dict[str, Any] = {}

        async def run() -> float:
            result = await measure(executor, spec, self.cal, self.services)
            assert result.jobs.done == spec.jobs and result.jobs.lost == 0, result.jobs
            batching = result.executor.batching()
            if batching is not None:
                info["jobs_per_task"] = batching.jobs_per_task
            return result.throughput_jobs_per_s

        return Arm(name, run, info=info)


# --- hand-written equivalents ---------------------------------------------------------------


async def run_in_executor_pool(pool: ThreadPoolExecutor, jobs: int, in_flight: int) -> float:
    """``in_flight`` coroutines on the running loop, each awaiting ``run_in_executor`` job after job."""
    loop = asyncio.get_running_loop()
    source = iter(range(jobs))

    async def driver() -> None:
        for job in source:
            await loop.run_in_executor(pool, noop, job)

    began = time.perf_counter()
    await asyncio.gather(*(driver() for _ in range(in_flight)))
    return jobs / (time.perf_counter() - began)


def pool_map(pool: ThreadPoolExecutor, jobs: int) -> float:
    began = time.perf_counter()
    for _ in pool.map(noop, range(jobs)):
        pass
    return jobs / (time.perf_counter() - began)


def user_batches(jobs: int, chunk: int) -> float:
    from celery_baseline import user_batches as own_batches  # after the benchmark has set its URL

    return own_batches(jobs, chunk)


# --- the contests -----------------------------------------------------------------------------


async def thread_contest(args: argparse.Namespace, runners: Runners) -> dict[str, Any]:
    jobs, flight = args.jobs, args.concurrency
    values = {"jobs": jobs, "mix": "noop=1", "concurrency": flight}
    pool = runners.stack.enter_context(ThreadPoolExecutor(flight))
    arms = [
        await runners.arm("runner thread", "thread", values),
        Arm(f"run_in_executor, {flight} in flight", lambda: run_in_executor_pool(pool, jobs, flight)),
        Arm("ThreadPoolExecutor.map", lambda: asyncio.to_thread(pool_map, pool, jobs)),
    ]
    pairs = [
        ("runner thread", arms[1].name, ""),
        ("runner thread", arms[2].name, "; not like-for-like: map queues every job at once"),
    ]
    title = f"thread: {jobs:,} no-op jobs, {flight:,} in flight, {flight:,} threads"
    return await contest(title, arms, pairs, args.repeats, args.seed)


async def celery_contest(args: argparse.Namespace, runners: Runners, batch: int) -> dict[str, Any]:
    workers = args.workers
    nodes = start_baseline_workers(runners.services.redis_url(), workers)
    runners.stack.callback(nodes.stop)
    if batch == 1:
        jobs = args.jobs // 50
        values = {"jobs": jobs, "mix": "noop=1", "concurrency": args.concurrency, "celery_workers": workers, "batch": 1}
        ours = await runners.arm("runner celery --batch 1", "celery", values)
        theirs = Arm("apply_async loop", lambda: asyncio.to_thread(apply_async_loop, jobs))
        title = f"celery, one task per job: {jobs:,} no-op jobs, {workers} worker nodes"
    else:
        jobs = args.jobs // 5
        values = {"jobs": jobs, "mix": "noop=1", "concurrency": args.concurrency, "celery_workers": workers, "batch": 0}
        ours = await runners.arm("runner celery --batch 0", "celery", values)
        await ours.run()  # learn the batch size runner settles on, then give the user the same
        chunk = max(1, round(ours.info["jobs_per_task"]))
        theirs = Arm(f"user's batches of {chunk} (list task)", lambda: asyncio.to_thread(user_batches, jobs, chunk))
        theirs.info["jobs_per_task"] = chunk
        title = f"celery, batched: {jobs:,} no-op jobs, {workers} worker nodes"
    return await contest(title, [ours, theirs], [(ours.name, theirs.name, "")], args.repeats, args.seed)


async def hybrid_contest(args: argparse.Namespace, runners: Runners) -> dict[str, Any]:
    flight, jobs = args.hybrid_concurrency, args.hybrid_jobs
    base = {"jobs": jobs, "mix": "mixed=1", "io_ms": 50, "cpu_ms": 5, "concurrency": flight}
    cores = os.cpu_count() or 1
    arms = [
        await runners.arm(f"hybrid ({cores} CPU processes)", "hybrid", {**base, "workers": cores}),
        await runners.arm(f"process ({flight} processes)", "process", {**base, "workers": flight}),
        await runners.arm(f"thread ({flight} threads)", "thread", base),
        await runners.arm("async", "async", base),
    ]
    pairs = [(arms[0].name, arm.name, "") for arm in arms[1:]]
    title = f"hybrid: {jobs:,} mixed jobs (50 ms I/O, then 5 ms CPU), {flight} in flight"
    return await contest(title, arms, pairs, args.repeats, args.seed)


async def io_contest(args: argparse.Namespace, runners: Runners) -> dict[str, Any]:
    flight, jobs, cores = args.hybrid_concurrency, args.io_jobs, os.cpu_count() or 1
    base = {"jobs": jobs, "mix": "sleep=1", "io_ms": 100, "concurrency": flight}
    arms = [
        await runners.arm("async", "async", base),
        await runners.arm(f"process ({flight} processes)", "process", {**base, "workers": flight}),
        await runners.arm(f"process ({cores} processes)", "process", {**base, "workers": cores}),
    ]
    pairs = [("async", arms[1].name, ""), ("async", arms[2].name, "; a pool sized by cores holds 2 waits at once")]
    title = f"io: {jobs:,} sleep jobs of 100 ms, {flight} in flight"
    return await contest(title, arms, pairs, args.repeats, args.seed)


async def cpu_contest(args: argparse.Namespace, runners: Runners) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    base = {"jobs": 100, "mix": "cpu=1", "cpu_ms": 20, "workers": cores}
    process = await runners.arm(f"process ({cores} processes)", "process", base)
    arms = [process, await runners.arm("async", "async", base)]
    title = "cpu: 100 jobs of 20 ms pure-Python CPU"
    return await contest(title, arms, [(arms[0].name, "async", "")], args.repeats, args.seed)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    cal = for_coordinator()  # once (or as RUNNER_CALIBRATION pins it): sizes every arm's CPU work
    print(f"calibration: {cal.to_dict()}; load average {load_avg()} on {os.cpu_count()} cores", flush=True)
    out = []
    with LocalServices() as services:
        for name in args.only.split(","):
            async with contextlib.AsyncExitStack() as stack:
                runners = Runners(stack, services, cal)
                if name == "thread":
                    out.append(await thread_contest(args, runners))
                elif name in ("celery-batched", "celery-1"):
                    out.append(await celery_contest(args, runners, 0 if name == "celery-batched" else 1))
                elif name == "hybrid":
                    out.append(await hybrid_contest(args, runners))
                elif name == "io":
                    out.append(await io_contest(args, runners))
                elif name == "cpu":
                    out.append(await cpu_contest(args, runners))
                else:
                    raise SystemExit(f"--only: unknown contest {name!r}; choose from {', '.join(CONTESTS)}")
            sys.stdout.flush()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default=",".join(CONTESTS))
    parser.add_argument("--jobs", type=int, default=50_000, help="no-op jobs per thread run (Celery: /5, /50)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker nodes (runner's and the baseline's)")
    parser.add_argument("--hybrid-jobs", type=int, default=1000)
    parser.add_argument("--hybrid-concurrency", type=int, default=50, help="jobs in flight of hybrid and io")
    parser.add_argument("--io-jobs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_out", help="also write the samples and ratios here")
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(main_async(args))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"machine_cpus": os.cpu_count(), "contests": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
