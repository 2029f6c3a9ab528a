"""The coordinator's own CPU time per job on the async path, against the bare yielding pool.

    python benchmarks/async_cpu.py [--jobs N] [--rounds R] [--concurrency C]

Wall-clock overheads (``benchmarks/overhead.py``) move by a factor of several when the machine is
shared; the CPU time of the thread that runs the loop hardly does. Each round runs ``N`` yielding
no-op jobs through runner's async executor (ledger, latencies, time series all on) and through the
bare worker pool of ``overhead.py``, alternately, and reads ``time.thread_time`` around each: for
runner only around the drivers' window (``drive.until_done_or_halted``, wrapped here), the
stretch its throughput is computed over, so the result document's making is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

import uvloop

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from overhead import worker_pool_yielding

from runner.engine import drive
from runner.engine.coordinator import executor_config, measure
from runner.engine.dispatch import until_done_or_halted
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from workers.calibration import for_coordinator
from workers.registry import executor_class

_spent = [0.0]


async def _timed(drivers: list[asyncio.Task[None]], halt: asyncio.Event, hurry: asyncio.Event) -> None:
    began = time.thread_time()
    try:
        await until_done_or_halted(drivers, halt, hurry)
    finally:
        _spent[0] = time.thread_time() - began


drive.until_done_or_halted = _timed  # type: ignore[attr-defined]  # the name drive() waits through


async def main_async(args: argparse.Namespace) -> None:
    cal = for_coordinator()
    values = {"jobs": args.jobs, "mix": "noop=1", "concurrency": args.concurrency, "workers": 2}
    spec = WorkloadSpec.build(values, ("async",))
    ours: list[float] = []
    bare: list[float] = []
    print("load average: " + " ".join(f"{v:.2f}" for v in os.getloadavg()), flush=True)
    with LocalServices() as services:
        async with executor_class("async")(executor_config(spec), services) as executor:
            await measure(executor, spec, cal, services)  # warm-up, not counted
            await worker_pool_yielding(args.jobs, args.concurrency)
            for _ in range(args.rounds):
                result = await measure(executor, spec, cal, services)
                assert result.jobs.done == args.jobs and result.jobs.lost == 0, result.jobs
                ours.append(_spent[0] / args.jobs * 1e6)
                began = time.thread_time()
                await worker_pool_yielding(args.jobs, args.concurrency)
                bare.append((time.thread_time() - began) / args.jobs * 1e6)
    extra = [a - b for a, b in zip(ours, bare, strict=True)]
    print(
        f"coordinator thread CPU per job, {args.concurrency:,} in flight: runner {statistics.median(ours):.2f} us "
        f"({min(ours):.2f}..{max(ours):.2f}), bare yielding pool {statistics.median(bare):.2f} us "
        f"({min(bare):.2f}..{max(bare):.2f}); runner above it {statistics.median(extra):.2f} us/job "
        f"({min(extra):.2f}..{max(extra):.2f}), min - min {min(ours) - min(bare):.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10_000)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
