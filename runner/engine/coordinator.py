"""The coordinator: turns a spec into jobs, drives one executor, and returns the run result.

Jobs are generated lazily and pulled by ``concurrency`` driver coroutines (``runner.engine.drive``,
which also describes the closed and open load models): at most that many are in flight, no list of
all jobs is held, and every job ends in the ledger done, failed or timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from runner import __version__
from runner.engine import codec, interrupt, preflight, user_jobs
from runner.engine import results as rs
from runner.engine.calibration_check import ServiceSamples, check
from runner.engine.dispatch import Units
from runner.engine.drive import Progress, drive
from runner.engine.ledger import DONE, Ledger
from runner.engine.machine import describe_machine, machine_state
from runner.engine.outputs import OutputError
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from workers.base import Executor, ExecutorConfig
from workers.calibration import Calibration, for_coordinator
from workers.errors import RunStopped
from workers.jobs import Job
from workers.registry import executor_class

__all__ = ["Progress", "check_modes", "executor_config", "make_jobs", "measure", "run_mode"]


def make_jobs(spec: WorkloadSpec, calibration: Calibration, services: LocalServices) -> Iterator[Job]:
    """The workload, one job at a time. Services the kinds need are started now, before timing
    starts (a generator's body would start them inside the first job, blocking the loop)."""
    targets = _targets(spec, services)
    units = {kind: calibration.units(kind, spec.cpu_ms) for kind in spec.mix}
    if spec.user_jobs:
        return user_jobs.make_jobs(spec, units, targets)
    return (
        Job(job_id, kind, spec.io_ms, units[kind], targets.get(kind, "")) for job_id, kind in enumerate(spec.kinds())
    )


def make_units(
    spec: WorkloadSpec, calibration: Calibration, services: LocalServices, executor: Executor, ledger: Ledger
) -> Units:
    """The closed-loop workload of built-in kinds: jobs, or batches where the executor takes them."""
    targets = _targets(spec, services)
    params = {kind: (spec.io_ms, calibration.units(kind, spec.cpu_ms), targets.get(kind, "")) for kind in spec.mix}
    return Units(
        spec.kinds(), params, executor.batch_size, spec.concurrency, lambda: ledger.in_flight, executor.probe_limit
    )


def _targets(spec: WorkloadSpec, services: LocalServices) -> dict[str, str]:
    targets = {
        "http": services.target_url() if "http" in spec.mix else "",
        "redis": services.redis_url() if "redis" in spec.mix else "",
    }
    preflight.check_services(targets)  # a wrong REDIS_URL/TARGET_URL fails here, not in every job
    return targets


_CONFIG = ("concurrency", "workers", "batch", "expect_workers", "wait_s", "options")  # spec fields of the same name


def executor_config(spec: WorkloadSpec) -> ExecutorConfig:
    same = {name: getattr(spec, name) for name in _CONFIG}
    return ExecutorConfig(**same, timeout_s=spec.timeout, user_jobs=spec.job_table())


def check_modes(spec: WorkloadSpec) -> None:
    """Fail fast, before any run starts, if a requested executor cannot run this spec."""
    preflight.check_environment(spec.modes, spec.mix)
    user_jobs.check(spec)  # imports, signatures, the first input: before any executor starts
    for mode in spec.modes:
        executor_class(mode).validate(executor_config(spec), LocalServices.redis_from_environment())


def run_mode(
    spec: WorkloadSpec,
    mode: str,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    calibration: Calibration | None = None,
) -> rs.RunResult:
    """Start one executor, run the whole workload through it, stop it; return the result document."""
    cls = executor_class(mode)
    config = executor_config(spec)
    cls.validate(config, external_redis=LocalServices.redis_from_environment())
    calibration = calibration or for_coordinator()
    # Signals are trapped from before anything starts until everything has stopped, so Ctrl-C or
    # SIGTERM always goes through executor.stop() and services.close().
    with (
        interrupt.trap() as stop,
        LocalServices() as services,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        executor = cls(config, services)

        async def start_measure_stop() -> rs.RunResult:
            async with contextlib.AsyncExitStack() as started:
                await _unless_stopped(started.enter_async_context(executor), stop, "while starting the executor")
                return await measure(executor, spec, calibration, services, out_dir=out_dir, progress=progress)

        result = runner.run(start_measure_stop())
    if stop.requested:  # arrived while the executor was stopping: the run is complete, but say so
        raise RunStopped(f"interrupted by {stop.name}", stop.exit_code, result)
    return result


async def _unless_stopped(work: Coroutine[Any, Any, object], stop: interrupt.StopRequest, when: str) -> None:
    """Await ``work`` unless a stop is requested first; then cancel it and raise RunStopped."""
    task = asyncio.create_task(work)
    loop = asyncio.get_running_loop()
    with stop.on_signal(lambda: loop.call_soon_threadsafe(task.cancel)):
        if stop.requested:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not stop.requested:
                raise
    if stop.requested:
        raise RunStopped(f"interrupted by {stop.name} {when}; no job was sent", stop.exit_code)


async def measure(
    executor: Executor,
    spec: WorkloadSpec,
    calibration: Calibration,
    services: LocalServices,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    instrument: bool = True,
) -> rs.RunResult:
    """Run one workload through an executor that is already started (and stays started), and
    return the result document. A sweep calls this many times on the same executor.
    ``instrument=False`` turns latency recording and resource sampling off, only to measure what
    they cost (benchmarks/overhead.py); the ledger always runs."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    state = machine_state()  # before the run adds its own load
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(spec.jobs, out_dir / "ledger.jsonl" if out_dir else None)
    samples = ServiceSamples(spec.mix if instrument else {})
    try:
        with interrupt.trap() as stop:
            await executor.begin_workload()
            executor.tally.begin_workload()
            # User jobs carry an input each: one by one (open loop too: each job has its own start).
            if spec.open_loop or spec.user_jobs:
                jobs: Iterator[Job] | Units = make_jobs(spec, calibration, services)
            else:
                jobs = make_units(spec, calibration, services, executor, ledger)
            measured, halted = await drive(executor, jobs, spec, ledger, progress, stop, instrument, samples)
            nodes = [n | {"jobs": ledger.by_worker.get(n["name"], 0)} for n in await executor.node_figures()]
    finally:
        ledger.close()
    result = rs.RunResult(
        schema_version=rs.SCHEMA_VERSION,
        runner_version=__version__,
        mode=executor.name,
        executor=rs.ExecutorInfo(summary=executor.summary, settings=executor.describe()),
        spec=codec.decode(rs.RunSpec, spec.to_dict() | {"modes": [executor.name]}),
        kinds=spec.kind_counts(),
        jobs=rs.Jobs(**ledger.summary()),
        **measured,
        failures=dict(ledger.reasons.most_common()),
        by_worker=dict(sorted(ledger.by_worker.items())),
        nodes=[codec.decode(rs.Node, n) for n in nodes] or None,
        calibration=rs.CalibrationFigures(**calibration.to_dict()),
        calibration_check=check(samples, spec.cpu_ms, calibration, executor.worker_calibrations()),
        started_at=started_at,
        machine=codec.decode(rs.Machine, describe_machine(state)),
        user_jobs=user_jobs.figures(spec, executor.user_job_figures()),
    )
    if ledger.write_error is not None and halted is None:  # all jobs ran and are counted: keep the result
        raise OutputError(f"{ledger.write_error}; the run finished, but its ledger is incomplete", result)
    if halted is not None:
        # Partial, but every dispatched job is accounted for; the rest were never submitted.
        result = replace(result, stopped=rs.RunStoppedInfo(reason=halted, not_submitted=spec.jobs - ledger.submitted))
        exit_code = stop.exit_code if stop.requested else 1
        message = f"interrupted by {stop.name}" if stop.requested else f"run stopped: {halted}"
        done = ledger.counts[DONE]
        raise RunStopped(f"{message}; {done} of {spec.jobs} jobs done, partial result kept", exit_code, result)
    return result
