"""The drivers: ``concurrency`` coroutines that take the workload's jobs, hand each to the
executor and account for it -- the coordinator's per-job path, kept lean (``drive``).

Two load models. Closed loop (the default): a driver hands out its next job when its last one
ended, after yielding once so that every driver gets its turn even when jobs never yield (a CPU
job inline on the loop); latency runs from hand-off to result. Open loop (``--rate``): each job
has an intended start on a schedule that does not care how the executor keeps up, and latency
runs from that intended start -- so time a job spent waiting for a free driver, behind a blocked
loop or a full pool, is counted (no coordinated omission); that part is reported apart as
``coordinator_wait_ms``. The executor reports how long the job itself ran (``service_ms``); the
rest of the time after hand-off is ``queue_wait_ms``. Failed and timed-out jobs get latency
histograms of their own.

Per-job timeouts come from one watchdog, not an ``asyncio.timeout`` per job (a timer handle made
and cancelled for every job costs more than a no-op job itself): each driver notes when its job
began, and the watchdog cancels the drivers whose job has run past the timeout. The closed-loop
driver is what a no-op job costs on top of the executor (issue 15), so it reads nothing per job
that it can read once: everything it touches is bound to a local before its loop.
"""

from __future__ import annotations

import asyncio
import functools
import time
import types
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import Any

from runner.engine import interrupt
from runner.engine import results as rs
from runner.engine.calibration_check import ServiceSamples
from runner.engine.dispatch import FULL, BatchRun, Units, failure_reason, report_progress, until_done_or_halted
from runner.engine.ledger import DONE, FAILED, TIMED_OUT, Ledger
from runner.engine.machine import usable_cpus
from runner.engine.metrics import JobLatencies, LoopLag, ResourceSampler
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus, Timeline
from workers.base import Executor
from workers.bulk import Batch
from workers.errors import ServiceError
from workers.jobs import Job

Progress = Callable[[RunStatus], None]  # called a few times a second, and once at the end


async def drive(
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
    halted = [False]  # halt.is_set(), read by every driver before each job without a method call
    hurry = asyncio.Event()  # a second signal: don't wait for in-flight jobs
    why: list[str] = []

    def halt_with(reason: str) -> None:
        if not why:
            why.append(reason)
        halted[0] = True
        halt.set()

    def on_driver_end(task: asyncio.Task[None]) -> None:
        """A driver's own bug ends the run (re-raised by ``until_done_or_halted``): the others may
        be waiting for room its jobs would have freed, and would wait for ever."""
        if not task.cancelled() and isinstance(error := task.exception(), Exception):  # as re-raised there
            halt_with(f"internal error: {type(error).__name__}: {error}")

    def on_signal() -> None:
        halt_with(stop.name)
        if stop.count > 1:
            hurry.set()

    slots = min(spec.concurrency, spec.jobs)
    began_at = [0.0] * slots  # when each driver's current job began; 0.0 between jobs
    expired = [False] * slots  # the watchdog cancelled that driver's job for its timeout
    drivers: list[asyncio.Task[None]] = []
    timed_out = f"timed out after {timeout:g} s"
    on = instrument
    record_total, record_service = (latencies.record_total, latencies.record_service) if on else (_ignore, _ignore)
    record_wait, record_failed = (latencies.record_wait, latencies.failed.record) if on else (_ignore, _ignore)
    record_timed_out = latencies.timed_out.record if on else _ignore
    sample = samples.add if samples is not None and samples.kinds else None
    units = jobs if isinstance(jobs, Units) else None
    start = [0.0]  # when the schedule begins: set just before the drivers start
    # Closed loop without units (user jobs: each carries its own input): the jobs one by one.
    take = units.take if units is not None else functools.partial(next, iter(jobs), None)  # type: ignore[arg-type]

    def ended_badly(slot: int, job: Job, since: float, exc: BaseException) -> None:
        """Account for a job that raised; re-raise what must end its driver (a stop)."""
        began_at[slot] = 0.0
        latency = time.perf_counter() - since
        if isinstance(exc, asyncio.CancelledError):
            if expired[slot]:  # our own timeout, not a stop: account and go on
                expired[slot] = False
                drivers[slot].uncancel()
                record_timed_out(latency)
                ledger.finish(job.id, TIMED_OUT, job.kind, latency, reason=timed_out)
                return
            # Cancelled only after a stop request and its grace period: account, then end.
            reason = f"interrupted by {why[0]} before it finished" if why else "cancelled"
            ledger.finish(job.id, FAILED, job.kind, latency, reason=reason)
            raise exc
        if not isinstance(exc, Exception):
            raise exc
        record_failed(latency)  # any job error is data for the ledger, never fatal to the run
        ledger.finish(job.id, FAILED, job.kind, latency, reason=failure_reason(exc))
        if isinstance(exc, ServiceError):  # the executor cannot go on (e.g. its broker is gone)
            halt_with(str(exc))

    async def closed(slot: int) -> None:
        """Closed loop: the next job as soon as this driver's last one ended."""
        run, clock, submit, done = executor.run, time.perf_counter, ledger.submit, ledger.finish_done
        ready = units.ready if units is not None else deque[Job]()
        pop, waiters = ready.popleft, units.waiters if units is not None else ()
        while True:
            await _turn()  # let every other driver take a job before this one takes another
            if ready:
                job = pop()
            else:
                unit = take()
                while unit is FULL:
                    await units.room()  # type: ignore[union-attr]  # FULL comes only from units
                    unit = take()
                if unit is None:
                    return
                if isinstance(unit, Batch):
                    if halted[0]:
                        return
                    await run_batch(slot, unit)
                    continue
                job = unit
            if halted[0]:
                return  # this job (and the rest) is never submitted
            submit(job.id)
            began = began_at[slot] = clock()
            try:
                report = await run(job)
            except BaseException as exc:
                ended_badly(slot, job, began, exc)
            else:
                began_at[slot] = 0.0
                ended = clock()
                record_total(ended - began)
                record_service(report.service_s)
                if sample is not None:
                    sample(job.kind, report)
                done(job.id, job.kind, ended - began, report.worker)
            if waiters:  # drivers wait for room only while batches are out
                units.released()  # type: ignore[union-attr]  # waiters are the units' own

    work = zip(jobs, spec.arrival_offsets(), strict=True) if spec.open_loop else iter(())  # type: ignore[arg-type]
    take_paced = functools.partial(next, work, None)

    async def paced(slot: int) -> None:
        """Open loop: each job at its intended start, its latency counted from there."""
        run, clock, submit, finish = executor.run, time.perf_counter, ledger.submit, ledger.finish
        while (item := take_paced()) is not None:
            job, offset = item
            due = start[0] + offset
            if (ahead := due - clock()) > 0:
                await asyncio.sleep(ahead)
            if halted[0]:
                return
            submit(job.id)
            began = began_at[slot] = clock()
            if began < due:  # uvloop's timers (whole ms) can wake us early: nothing waited, count from now
                due = began
            try:
                report = await run(job)
            except BaseException as exc:
                ended_badly(slot, job, due, exc)
                continue
            began_at[slot] = 0.0
            ended = clock()
            record_total(ended - due)
            record_service(report.service_s)
            if sample is not None:
                sample(job.kind, report)
            record_wait(began - due)
            finish(job.id, DONE, job.kind, ended - due, report.worker)

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

    driver = paced if spec.open_loop else closed
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
            for each in drivers:
                each.add_done_callback(on_driver_end)
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
        for task in (ticker, reporter):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
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


@types.coroutine
def _turn() -> Generator[None, None, None]:
    """One turn of the loop for every other ready task: ``asyncio.sleep(0)`` less its own frame."""
    yield


def _utilisation(cpu_s: float, wall_s: float) -> float:
    return round(cpu_s / (wall_s * usable_cpus()), 3) if wall_s > 0 else 0.0


def _ignore(_: float) -> None:
    return None
