"""The coordinator: turns a spec into jobs, drives one executor, and returns the run result.

Jobs are generated lazily and pulled by ``concurrency`` driver coroutines: at most that many are in
flight, no list of all jobs is held, and every job ends in the ledger done, failed or timed out.

Two load models. Closed loop (the default): a driver hands out its next job when its last one
ended, after yielding once so that every driver gets its turn even when jobs never yield (a CPU
job inline on the loop); latency runs from hand-off to result. Open loop (``--rate``): each job
has an intended start on a schedule that does not care how the executor keeps up, and latency
runs from that intended start -- so time a job spent waiting for a free driver, behind a blocked
loop or a full pool, is counted (no coordinated omission); that part is reported apart as
``coordinator_wait_ms``. The executor reports how long the job itself ran (``service_ms``); the
rest of the time after hand-off is ``queue_wait_ms``. Failed and timed-out jobs get latency
histograms of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from runner import __version__
from runner.engine import codec, interrupt, preflight, user_jobs
from runner.engine import results as rs
from runner.engine.calibration_check import ServiceSamples, check
from runner.engine.dispatch import FULL, BatchRun, Units, failure_reason, report_progress, until_done_or_halted
from runner.engine.ledger import DONE, FAILED, TIMED_OUT, Ledger
from runner.engine.machine import describe_machine, machine_state, usable_cpus
from runner.engine.metrics import JobLatencies, LoopLag, ResourceSampler
from runner.engine.outputs import OutputError
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus, Timeline
from workers.base import Executor, ExecutorConfig
from workers.bulk import Batch
from workers.calibration import Calibration, for_coordinator
from workers.errors import RunStopped, ServiceError
from workers.jobs import Job
from workers.registry import executor_class

Progress = Callable[[RunStatus], None]  # called a few times a second, and once at the end


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
    return Units(spec.kinds(), params, executor.batch_size, spec.concurrency, lambda: ledger.in_flight)


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
            measured, halted = await _drive(executor, jobs, spec, ledger, progress, stop, instrument, samples)
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


async def _drive(
    executor: Executor,
    jobs: Iterator[Job] | Units,
    spec: WorkloadSpec,
    ledger: Ledger,
    progress: Progress | None,
    stop: interrupt.StopRequest,
    instrument: bool = True,
    samples: ServiceSamples | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Run the jobs; return the measurements and, if dispatch stopped early, why."""
    latencies = JobLatencies()
    timeout = spec.timeout
    halt = asyncio.Event()  # stop dispatching: a signal, or the executor lost a service it needs
    hurry = asyncio.Event()  # a second signal: don't wait for in-flight jobs
    why: list[str] = []

    def halt_with(reason: str) -> None:
        if not why:
            why.append(reason)
        halt.set()

    def on_signal() -> None:
        halt_with(stop.name)
        if stop.count > 1:
            hurry.set()

    # Per-job timeouts come from one watchdog, not an ``asyncio.timeout`` per job (a timer handle
    # made and cancelled for every job costs more than a no-op job itself): each driver notes when
    # its job began, and the watchdog cancels the drivers whose job has run past the timeout.
    slots = min(spec.concurrency, spec.jobs)
    began_at = [0.0] * slots  # when each driver's current job began; 0.0 between jobs
    expired = [False] * slots  # the watchdog cancelled that driver's job for its timeout
    drivers: list[asyncio.Task[None]] = []
    timed_out = f"timed out after {timeout:g} s"
    on = instrument
    record_total, record_service = (latencies.record_total, latencies.record_service) if on else (_ignore, _ignore)
    record_wait, record_failed = (latencies.record_wait, latencies.failed.record) if on else (_ignore, _ignore)
    record_timed_out = latencies.timed_out.record if on else _ignore
    paced = spec.open_loop
    work: Iterator[tuple[Job, float]] = zip(jobs, spec.arrival_offsets(), strict=True) if paced else iter(())  # type: ignore[arg-type]
    units = jobs if isinstance(jobs, Units) else None
    start = [0.0]  # when the schedule begins: set just before the drivers start

    take_paced = functools.partial(next, work, None)
    # Closed loop without units (user jobs: each carries its own input): the jobs one by one.
    plain = iter(jobs) if not paced and units is None else iter(())  # type: ignore[arg-type]
    take_plain = functools.partial(next, plain, None)

    async def driver(slot: int) -> None:
        run, clock, submit, finish = executor.run, time.perf_counter, ledger.submit, ledger.finish
        sleep, take = asyncio.sleep, units.take if units is not None else take_plain
        waiters = units.waiters if units is not None else ()
        sample = samples.add if samples is not None and samples.kinds else None
        due = 0.0
        while True:
            if paced:
                item = take_paced()
                if item is None:
                    return
                job, offset = item
                due = start[0] + offset
                if (ahead := due - clock()) > 0:
                    await sleep(ahead)
            else:
                await sleep(0)  # let every other driver take a job before this one takes another
                unit = take()
                while unit is FULL:
                    await units.room()  # type: ignore[union-attr]  # FULL comes only from units
                    unit = take()
                if unit is None:
                    return
                if isinstance(unit, Batch):
                    if halt.is_set():
                        return
                    await run_batch(slot, unit)
                    continue
                job = unit
            if halt.is_set():
                return  # this job (and the rest) is never submitted
            submit(job.id)
            began = began_at[slot] = clock()
            since = due if paced else began  # latency counts from the intended start in open loop
            try:
                report = await run(job)
            except asyncio.CancelledError:
                began_at[slot] = 0.0
                if expired[slot]:  # our own timeout, not a stop: account and go on
                    expired[slot] = False
                    drivers[slot].uncancel()
                    record_timed_out(clock() - since)
                    finish(job.id, TIMED_OUT, job.kind, clock() - since, reason=timed_out)
                    continue
                # Cancelled only after a stop request and its grace period: account, then end.
                reason = f"interrupted by {why[0]} before it finished" if why else "cancelled"
                finish(job.id, FAILED, job.kind, clock() - since, reason=reason)
                raise
            except ServiceError as exc:  # the executor cannot go on (e.g. its broker is gone)
                began_at[slot] = 0.0
                record_failed(clock() - since)
                finish(job.id, FAILED, job.kind, clock() - since, reason=failure_reason(exc))
                halt_with(str(exc))
            except Exception as exc:  # any job error is data for the ledger, never fatal to the run
                began_at[slot] = 0.0
                record_failed(clock() - since)
                finish(job.id, FAILED, job.kind, clock() - since, reason=failure_reason(exc))
            else:
                began_at[slot] = 0.0
                ended = clock()
                record_total(ended - since)
                record_service(report.service_s)
                if sample is not None:
                    sample(job.kind, report)
                if paced:
                    record_wait(began - since)
                finish(job.id, DONE, job.kind, ended - since, report.worker)
            if waiters:  # drivers wait for room only while batches are out
                units.released()  # type: ignore[union-attr]  # waiters are the units' own

    shared = (began_at, expired, drivers)
    run_batch = BatchRun(executor, ledger, latencies if on else None, units, shared, timed_out, why, halt_with, samples)

    async def watchdog() -> None:
        tick = max(0.005, min(timeout / 20, 0.5))
        while True:
            await asyncio.sleep(tick)
            limit = time.perf_counter() - timeout
            for slot, began in enumerate(began_at):
                if 0.0 < began < limit and not expired[slot]:
                    expired[slot] = True
                    drivers[slot].cancel()

    loop = asyncio.get_running_loop()
    lag = LoopLag()
    reporter: asyncio.Task[None] | None = None
    ticker: asyncio.Task[None] | None = None
    try:
        sampler = ResourceSampler(executor.worker_pids(), enabled=instrument)
        sampler.start()
        lag.start()
        timeline = Timeline(latencies, ledger, lag, sampler)
        began = start[0] = time.perf_counter()
        timeline.begin(began)
        status = functools.partial(timeline.status, executor.name, spec.jobs)
        reporter = asyncio.create_task(report_progress(status, progress)) if progress else None
        # The timeline also moves latencies into the histograms, once per bucket, which keeps the
        # buffers small on long runs; uninstrumented runs record none.
        ticker = asyncio.create_task(timeline.run(), name="timeline") if instrument else None
        with stop.on_signal(lambda: loop.call_soon_threadsafe(on_signal)):
            if stop.requested:
                on_signal()
            drivers.extend(asyncio.create_task(driver(slot)) for slot in range(slots))
            guard = asyncio.create_task(watchdog(), name="timeouts")
            try:
                await until_done_or_halted(drivers, halt, hurry)
            finally:
                guard.cancel()
                await asyncio.gather(guard, return_exceptions=True)
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            timeline.close_bucket()  # the last flush of the latency buffers, inside the window
        wall_s = time.perf_counter() - began
        await lag.stop()
        if reporter is not None:
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            progress(status(finished=True))  # type: ignore[misc]  # reporter exists only when progress is set
        resources = sampler.stop()
        ledger.add_extra_runs(executor.extra_runs())
    finally:
        await lag.stop()
        if ticker is not None and not ticker.done():
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        if reporter is not None and not reporter.done():
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
    done = ledger.counts[DONE]
    measured: dict[str, Any] = {
        "wall_s": round(wall_s, 4),
        "throughput_jobs_per_s": round(done / wall_s, 2) if wall_s > 0 else 0.0,
        "peak_in_flight": ledger.peak_in_flight,
        "load": rs.LoadModel.of(spec),
        **rs.latency_fields(latencies.summary()),
        "loop_lag_ms": rs.Percentiles(**lag.latency.summary()),
        "histograms_us": rs.Histograms(**latencies.encode()),
        "timeseries": [rs.Bucket(**bucket) for bucket in timeline.buckets],
        "resources": rs.Resources(**resources, cpu_utilisation=_utilisation(resources["cpu_s"], wall_s)),
    }
    return measured, (why[0] if why else None)


def _utilisation(cpu_s: float, wall_s: float) -> float:
    return round(cpu_s / (wall_s * usable_cpus()), 3) if wall_s > 0 else 0.0


def _ignore(_: float) -> None:
    return None
