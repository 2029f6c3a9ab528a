"""The ``blocking`` preset: CPU jobs of ``cpu_ms`` (calibrated pure-Python ``spin``) on a uvloop
loop, while HTTP probes (``GET /delay/10``) and a 10 ms loop-lag timer run beside them -- the jobs
run inline in the coroutine (holding the loop) or offloaded with ``run_in_executor`` to a process
pool of CPUs - 1 workers. See ``runner.experiments.presets`` for the figures it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import uvloop

from runner.engine.machine import usable_cpus
from runner.engine.metrics import Latency, LoopLag
from runner.engine.preset_results import BlockingFigure, BlockingMode, BlockingPlan, BlockingRun, InlineVsOffloaded
from runner.engine.services import LocalServices
from runner.engine.stats import Interval, estimate, ratio
from workers.calibration import for_coordinator
from workers.jobs import spin


def _pool_workers() -> int:
    return max(1, usable_cpus() - 1)


def run_blocking(
    plan: BlockingPlan, services: LocalServices, next_step: Callable[[str], None], article: Any
) -> BlockingFigure:
    import multiprocessing

    probe_url = f"{services.target_url()}/delay/{plan.probe_ms:g}"
    units = for_coordinator().units("cpu", plan.cpu_ms)
    workers = _pool_workers()
    runs: dict[str, list[BlockingRun]] = {"inline": [], "offloaded": []}
    next_step("blocking: starting the process pool and the probes' session")

    async def go() -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, spin, units) for _ in range(workers)))  # warm
            async with aiohttp.ClientSession() as session:
                async with session.get(probe_url) as resp:  # warm: the connection is open before timing
                    await resp.read()
                for r in range(plan.repeats):
                    for mode in ("inline", "offloaded"):
                        next_step(f"blocking: {mode}, repeat {r + 1}/{plan.repeats}")
                        runs[mode].append(
                            await _blocking_run(mode == "inline", plan, units, workers, pool, session, probe_url)
                        )

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        loop.run(go())
    modes: dict[str, BlockingMode] = {}
    for mode, reps in runs.items():

        def est(key: str, reps: list[BlockingRun] = reps) -> Interval:
            return Interval.of(estimate([getattr(r, key) for r in reps]))

        modes[mode] = BlockingMode(
            loop_lag_p99_ms=est("loop_lag_p99_ms"),
            probe_p99_ms=est("probe_p99_ms"),
            probe_p50_ms=est("probe_p50_ms"),
            job_ms_p50=est("job_ms_p50"),
            jobs_per_s=est("jobs_per_s"),
            repeats=reps,
        )
    ratios = {}
    for key in ("loop_lag_p99_ms", "probe_p99_ms"):
        value, half = ratio(getattr(modes["inline"], key).estimate(), getattr(modes["offloaded"], key).estimate())
        ratios[key] = InlineVsOffloaded(inline_vs_offloaded=value, half_width=half)
    return BlockingFigure(
        plan=plan,
        workers=workers,
        in_flight=workers,
        loop="uvloop",
        probe=f"GET /delay/{plan.probe_ms:g} on the target",
        modes=modes,
        ratios=ratios,
        article=article,
    )


async def _blocking_run(
    inline: bool, plan: BlockingPlan, units: int, in_flight: int, pool: ProcessPoolExecutor, session: Any, url: str
) -> BlockingRun:
    loop = asyncio.get_running_loop()
    lag, probes, jobs = LoopLag(0.01), Latency(), Latency()
    stop = asyncio.Event()
    pending = iter(range(plan.jobs))

    async def probe() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            async with session.get(url) as resp:
                await resp.read()
            probes.record(time.perf_counter() - began)

    async def cpu_job() -> None:
        if inline:
            await asyncio.sleep(0)  # a handler awaits something first (its request), then computes
            spin(units)
        else:
            await loop.run_in_executor(pool, spin, units)

    async def driver() -> None:
        for _ in pending:
            began = time.perf_counter()
            await cpu_job()
            jobs.record(time.perf_counter() - began)

    lag.start()
    probers = [asyncio.create_task(probe()) for _ in range(plan.probes)]
    await asyncio.sleep(2 * plan.probe_ms / 1000)  # probes in flight before the first job
    began = time.perf_counter()
    await asyncio.gather(*(driver() for _ in range(in_flight)))
    wall = time.perf_counter() - began
    stop.set()
    await asyncio.gather(*probers)
    await lag.stop()
    lag_s, probe_s, job_s = lag.latency.summary(), probes.summary(), jobs.summary()
    return BlockingRun(
        loop_lag_p99_ms=lag_s["p99"],
        loop_lag_max_ms=lag_s["max"],
        probe_p50_ms=probe_s["p50"],
        probe_p99_ms=probe_s["p99"],
        probes=probes.count,
        job_ms_p50=job_s["p50"],
        jobs_per_s=round(plan.jobs / wall, 2),
        wall_s=round(wall, 4),
    )
