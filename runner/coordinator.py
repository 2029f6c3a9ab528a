"""The coordinator: turns a spec into jobs, drives one executor, and returns the run result.

Jobs are generated lazily and pulled by a fixed set of ``concurrency`` driver coroutines, so at
most ``concurrency`` jobs are ever in flight and no list of all jobs (or results) is held. Each job
gets the per-job timeout, and every job ends in the ledger as done, failed (with a reason) or
timed out. Latency is measured here, from hand-off to result; the executor reports how long the
job itself ran, and the difference is the time it waited in a queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from runner import __version__
from runner.errors import JobFailed
from runner.ledger import DONE, FAILED, TIMED_OUT, Ledger
from runner.machine import describe_machine
from runner.metrics import Latency, LoopLag, ResourceSampler
from runner.services import LocalServices
from runner.spec import WorkloadSpec
from workers.base import Executor, ExecutorConfig
from workers.calibration import Calibration, calibrate
from workers.jobs import Job
from workers.registry import executor_class

SCHEMA_VERSION = 1

Progress = Callable[[Ledger], None]


def make_jobs(spec: WorkloadSpec, calibration: Calibration, services: LocalServices) -> Iterator[Job]:
    """The workload, one job at a time; services a kind needs are started before the first job."""
    targets = {
        "http": services.target_url() if "http" in spec.mix else "",
        "redis": services.redis_url() if "redis" in spec.mix else "",
    }
    units = {kind: calibration.units(kind, spec.cpu_ms) for kind in spec.mix}
    for job_id, kind in enumerate(spec.kinds()):
        yield Job(job_id, kind, spec.io_ms, units[kind], targets.get(kind, ""))


def executor_config(spec: WorkloadSpec) -> ExecutorConfig:
    return ExecutorConfig(
        concurrency=spec.concurrency,
        workers=spec.workers,
        timeout_s=spec.timeout,
        celery_workers=spec.celery_workers,
    )


def check_modes(spec: WorkloadSpec) -> None:
    """Fail fast, before any run starts, if a requested executor cannot run this spec."""
    for mode in spec.modes:
        executor_class(mode).validate(executor_config(spec), LocalServices.redis_from_environment())


def run_mode(
    spec: WorkloadSpec,
    mode: str,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """Start one executor, run the whole workload through it, stop it; return the result document."""
    cls = executor_class(mode)
    config = executor_config(spec)
    cls.validate(config, external_redis=LocalServices.redis_from_environment())
    calibration = calibration or calibrate()
    with LocalServices() as services, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        executor = cls(config, services)

        async def start_measure_stop() -> dict[str, Any]:
            try:
                await executor.start()
                return await measure(executor, spec, calibration, services, out_dir=out_dir, progress=progress)
            finally:
                await executor.stop()

        return runner.run(start_measure_stop())


async def measure(
    executor: Executor,
    spec: WorkloadSpec,
    calibration: Calibration,
    services: LocalServices,
    *,
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one workload through an executor that is already started (and stays started), and
    return the result document. A sweep calls this many times on the same executor."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(spec.jobs, out_dir / "ledger.jsonl" if out_dir else None)
    try:
        await executor.begin_workload()
        jobs = make_jobs(spec, calibration, services)
        measured = await _drive(executor, jobs, spec, ledger, progress)
    finally:
        ledger.close()
    return {
        "schema_version": SCHEMA_VERSION,
        "runner_version": __version__,
        "mode": executor.name,
        "executor": {"summary": executor.summary, **executor.describe()},
        "spec": spec.to_dict() | {"modes": [executor.name]},
        "kinds": spec.kind_counts(),
        "jobs": ledger.summary(),
        **measured,
        "failures": dict(ledger.reasons.most_common()),
        "by_worker": dict(sorted(ledger.by_worker.items())),
        "calibration": calibration.to_dict(),
        "started_at": started_at,
        "machine": describe_machine(),
    }


async def _drive(
    executor: Executor,
    jobs: Iterator[Job],
    spec: WorkloadSpec,
    ledger: Ledger,
    progress: Progress | None,
) -> dict[str, Any]:
    total, queue_wait, service = Latency(), Latency(), Latency()
    timeout = spec.timeout

    async def driver() -> None:
        for job in jobs:
            ledger.submit(job.id)
            began = time.perf_counter()
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    report = await executor.run(job)
            except TimeoutError as exc:
                elapsed = time.perf_counter() - began
                if deadline.expired():
                    ledger.finish(job.id, TIMED_OUT, job.kind, elapsed, reason=f"timed out after {timeout:g} s")
                else:
                    ledger.finish(job.id, FAILED, job.kind, elapsed, reason=_reason(exc))
            except Exception as exc:  # any job error is data for the ledger, never fatal to the run
                ledger.finish(job.id, FAILED, job.kind, time.perf_counter() - began, reason=_reason(exc))
            else:
                elapsed = time.perf_counter() - began
                total.record(elapsed)
                service.record(report.service_s)
                queue_wait.record(max(0.0, elapsed - report.service_s))
                ledger.finish(job.id, DONE, job.kind, elapsed, worker=report.worker)

    lag = LoopLag()
    try:
        sampler = ResourceSampler(executor.worker_pids())
        sampler.start()
        lag.start()
        reporter = asyncio.create_task(_report_progress(ledger, progress)) if progress else None
        began = time.perf_counter()
        await asyncio.gather(*(driver() for _ in range(min(spec.concurrency, spec.jobs))))
        wall_s = time.perf_counter() - began
        await lag.stop()
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            progress(ledger)  # type: ignore[misc]  # reporter exists only when progress is set
        resources = sampler.stop()
        ledger.add_extra_runs(executor.extra_runs())
    finally:
        await lag.stop()
    done = ledger.counts[DONE]
    return {
        "wall_s": round(wall_s, 4),
        "throughput_jobs_per_s": round(done / wall_s, 2) if wall_s > 0 else 0.0,
        "latency_ms": total.summary(),
        "queue_wait_ms": queue_wait.summary(),
        "service_ms": service.summary(),
        "loop_lag_ms": lag.latency.summary(),
        "histograms_us": {"latency": total.encode(), "queue_wait": queue_wait.encode(), "service": service.encode()},
        "resources": resources | {"cpu_utilisation": _utilisation(resources["cpu_s"], wall_s)},
    }


async def _report_progress(ledger: Ledger, progress: Progress | None) -> None:
    assert progress is not None
    while True:
        progress(ledger)
        await asyncio.sleep(0.2)


def _utilisation(cpu_s: float, wall_s: float) -> float:
    from runner.machine import usable_cpus

    return round(cpu_s / (wall_s * usable_cpus()), 3) if wall_s > 0 else 0.0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, JobFailed):
        return exc.reason
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
