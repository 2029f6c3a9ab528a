"""Where a Celery no-op job's CPU goes: the coordinator, Redis, each node's main process and its
prefork children, during the run only.

    python benchmarks/celery_cpu.py [--jobs N] [--rounds R] [--concurrency C] [--workers W] [--batch B]

Runs runner's celery mode (embedded Redis, W local prefork nodes, ``--batch 0`` unless told) on
no-op jobs, a warm-up round and then R rounds. A thread samples every process's CPU time (psutil)
every 10 ms; each round's figures are the CPU used between the first batch handed over and the
last one's report, per job -- not the result's summing up after the run, and not the sampling
thread's own CPU. Also prints jobs/s, jobs per task and the cores each part kept busy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from typing import Any

import psutil
import uvloop

from runner.engine.coordinator import executor_config, measure
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from workers.bulk import Batch, BatchReport
from workers.calibration import for_coordinator
from workers.registry import executor_class

_EVERY_S = 0.01


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class Sampler:
    """CPU seconds of each group of processes, every 10 ms, in a thread of its own."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            values = {name: cpu_of(pids) for name, pids in self.groups.items()}
            values["coordinator"] -= time.thread_time()  # this thread's own CPU is not the coordinator's
            self.samples.append((time.perf_counter(), values))
            self._stop.wait(_EVERY_S)

    def between(self, began: float, ended: float) -> tuple[float, dict[str, float]]:
        inside = [s for s in self.samples if began <= s[0] <= ended]
        if len(inside) < 2:
            raise SystemExit("the run was too short to sample: give it more jobs")
        (t0, first), (t1, last) = inside[0], inside[-1]
        return t1 - t0, {name: last[name] - first[name] for name in first}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


async def main_async(args: argparse.Namespace) -> None:
    cal = for_coordinator()
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    values = {"jobs": args.jobs, "mix": "noop=1", "concurrency": args.concurrency, "workers": args.workers}
    spec = WorkloadSpec.build(values | {"celery_workers": args.workers, "batch": args.batch}, ("celery",))
    with LocalServices() as services:
        services.redis_url()
        redis = [p.pid for p in psutil.Process().children() if "redis-server" in " ".join(p.cmdline())]
        async with executor_class("celery")(executor_config(spec), services) as executor:
            await measure(executor, spec, cal, services)  # warm-up, not counted
            marks: list[float] = []
            run_batch = executor.run_batch

            async def timed(batch: Batch) -> BatchReport:
                if not marks:
                    marks.append(time.perf_counter())
                try:
                    return await run_batch(batch)
                finally:
                    marks[1:] = [time.perf_counter()]

            executor.run_batch = timed  # type: ignore[method-assign]
            mains = executor.worker_pids()
            children = [c.pid for pid in mains for c in psutil.Process(pid).children(recursive=True)]
            groups = {"coordinator": [os.getpid()], "redis": redis, "node mains": mains, "children": children}
            sampler = Sampler(groups)
            rates: list[float] = []
            try:
                for _ in range(args.rounds):
                    marks.clear()
                    result = await measure(executor, spec, cal, services)
                    await asyncio.sleep(2 * _EVERY_S)
                    rates.append(result.throughput_jobs_per_s)
                    print(_round_line(result, marks, sampler, executor.describe()), flush=True)
            finally:
                sampler.close()
    print(f"median {statistics.median(rates):,.0f} jobs/s ({min(rates):,.0f}..{max(rates):,.0f})")
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)


def _round_line(result: Any, marks: list[float], sampler: Sampler, described: dict[str, Any]) -> str:
    if len(marks) < 2:
        return f"{result.throughput_jobs_per_s:,.0f} jobs/s (no batch went whole: nothing to split)"
    wall, used = sampler.between(marks[0], marks[1])
    jobs = result.jobs.done * wall / (marks[1] - marks[0])  # the jobs of the sampled part of the run
    per_job = "  ".join(f"{name} {cpu / jobs * 1e6:.2f}" for name, cpu in used.items())
    busy = "  ".join(f"{name} {cpu / wall:.2f}" for name, cpu in used.items())
    total = sum(used.values()) / jobs * 1e6
    return (
        f"{result.throughput_jobs_per_s:,.0f} jobs/s, {described['batching']['jobs_per_task']} jobs/task, "
        f"lost {result.jobs.lost} | CPU us/job: {per_job}  total {total:.2f} | cores busy: {busy}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
