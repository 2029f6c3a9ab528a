"""``runner bench``: sweep executors x workload mixes (x workers x concurrency x rate) and summarise
every cell.

Executors whose configuration differs are separate instances (a pool of 2 processes is not a pool
of 4), so the sweep runs group by group: for each (workers, concurrency) combination it starts the
executors of every mode once (so Celery's and the process pool's start-up is paid once per group,
not per run), keeps one warm-up run per executor apart, runs the group's (executor, mix, rate,
repeat) plan in a shuffled order -- so drift on the machine spreads over the group's cells instead
of biasing one -- and stops them before the next group starts. A sweep without axes is one group.

Each closed-loop run is sized from the cell's bound (what the executor could do at best on that
mix): about ``run_s`` seconds of work, between ``min_jobs`` and ``max_jobs`` jobs. Without this, a
job count that keeps the process pool busy for a second is over in milliseconds on the event loop,
and a count that gives the event loop a fair run keeps the pool busy for minutes. An open-loop run
(a rate on the rate axis; 0 there means closed loop) is sized from rate x ``run_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import uvloop

from runner import __version__
from runner.engine import codec, interrupt, preflight
from runner.engine.bench_results import BenchResults, BenchStopped, Bound, Cell, CellSummary, SweepPlan
from runner.engine.calibration_check import cpu_ms_scale
from runner.engine.coordinator import Progress, check_modes, executor_config, measure
from runner.engine.machine import describe_machine, usable_cpus
from runner.engine.metrics import Latency
from runner.engine.results import SCHEMA_VERSION, CalibrationFigures, Jobs, Machine, Percentiles, RunResult
from runner.engine.services import LocalServices
from runner.engine.stats import Interval, bound, cpu_share, estimate
from runner.experiments.plan import (
    CLASSIC_MODES,
    DEFAULT_MIXES,
    Mix,
    Sweep,
    build_sweep,
    parse_axis,
    parse_named_mix,
)
from workers.base import Executor
from workers.calibration import Calibration, for_coordinator
from workers.errors import RunStopped
from workers.registry import executor_class

__all__ = [
    "CLASSIC_MODES",
    "DEFAULT_MIXES",
    "Mix",
    "Sweep",
    "build_sweep",
    "parse_axis",
    "parse_named_mix",
    "run_sweep",
]

Step = Callable[[int, int, str], None]  # (runs done, runs in all, what runs next)


def run_sweep(sweep: Sweep, step: Step | None = None, progress: Progress | None = None) -> BenchResults:
    """Run the whole sweep; return the results document (see README, "Results file"). Verdicts are
    the report's to draw (``runner.report.verdicts``): measuring does not judge."""
    preflight.check_environment(sweep.modes, {kind for mix in sweep.mixes for kind in mix.weights})
    for at in sweep.groups():
        check_modes(
            dataclasses.replace(sweep.workload(sweep.mixes[0], sweep.min_jobs, sweep.modes[0], at), modes=sweep.modes)
        )
    calibration = for_coordinator()
    began = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    # Signals are caught for the whole sweep (and between runs), so a Ctrl-C stops it cleanly: the
    # executors and services are stopped, and the cells measured so far are kept.
    with (
        interrupt.trap() as stop,
        LocalServices() as services,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        warmup, cells, stopped = runner.run(
            _sweep(sweep, calibration, services, step or (lambda *_: None), stop, progress)
        )
    doc = BenchResults(
        schema_version=SCHEMA_VERSION,
        runner_version=__version__,
        started_at=started_at,
        wall_s=round(time.perf_counter() - began, 2),
        sweep=codec.decode(SweepPlan, sweep.to_dict()),
        calibration=CalibrationFigures(**calibration.to_dict()),
        machine=codec.decode(Machine, describe_machine()),
        warmup=warmup,
        cells=cells,
    )
    if stopped is not None:
        doc = replace(doc, stopped=BenchStopped(reason=str(stopped), cells_with_runs=len(cells)))
        raise RunStopped(f"{stopped}; {len(cells)} cells measured, partial results kept", stopped.exit_code, doc)
    return doc


_Key = tuple[str, str, int, int, float]  # mode, mix, workers, concurrency, rate


async def _sweep(
    sweep: Sweep,
    calibration: Calibration,
    services: LocalServices,
    step: Step,
    stop: interrupt.StopRequest,
    progress: Progress | None = None,
) -> tuple[list[RunResult], list[Cell], RunStopped | None]:
    kinds = {kind for mix in sweep.mixes for kind in mix.weights}
    preflight.check_services(  # a wrong TARGET_URL/REDIS_URL fails the sweep before its first run
        {
            "http": services.target_url() if "http" in kinds else "",
            "redis": services.redis_url() if "redis" in kinds else "",
        }
    )
    state = _SweepRun(sweep, calibration, services, step, stop, progress)
    stopped: RunStopped | None = None
    try:
        for at in sweep.groups():
            await state.group(at)
    except RunStopped as exc:  # a run cut short is not a measurement: only whole runs are kept
        stopped = exc
    step(state.total, state.total, "done")
    return state.warmup, state.cells(), stopped


class _SweepRun:
    """What a sweep has measured so far, group by group: runs, bounds and busy starts per cell key,
    the warm-up runs, and the progress count across groups."""

    def __init__(
        self,
        sweep: Sweep,
        calibration: Calibration,
        services: LocalServices,
        step: Step,
        stop: interrupt.StopRequest,
        progress: Progress | None,
    ) -> None:
        self.sweep, self.calibration, self.services = sweep, calibration, services
        self.step, self.stop, self.progress = step, stop, progress
        self.cores = usable_cpus()
        self.runs: dict[_Key, list[RunResult]] = {}
        self.bounds: dict[_Key, dict[str, Any]] = {}
        self.busy: dict[_Key, int] = {}
        self.warmup: list[RunResult] = []
        per_group = len(sweep.modes) * (1 + len(sweep.mixes) * len(sweep.rate_values()) * sweep.repeats)
        self.done, self.total = 0, per_group * len(sweep.groups())

    def _next(self, label: str) -> None:
        self.step(self.done, self.total, label)
        self.done += 1

    async def group(self, at: tuple[int, int]) -> None:
        """One (workers, concurrency) combination: its executors started, warmed up, its shuffled
        plan run, and the executors stopped (also when a run fails or a signal stops the sweep)."""
        sweep, where = self.sweep, _where(self.sweep, at)
        executors: dict[str, Executor] = {}
        async with contextlib.AsyncExitStack() as started:  # stops every executor, even if one stop() raises
            for mode in sweep.modes:
                spec = sweep.workload(sweep.mixes[0], sweep.min_jobs, mode, at)
                executor = executor_class(mode)(executor_config(spec), self.services)
                executors[mode] = await started.enter_async_context(executor)
            # Workers whose own rate is over 10 % from the coordinator's: the bound uses their rate.
            scale = {mode: cpu_ms_scale(self.calibration, ex.worker_calibrations()) for mode, ex in executors.items()}
            for mode, ex in executors.items():
                cap = ex.capacity(self.cores)
                for mix in sweep.mixes:
                    for rate in sweep.rate_values():
                        self.runs[(mode, mix.name, *at, rate)] = []
                        self.bounds[(mode, mix.name, *at, rate)] = bound(
                            mix.weights, sweep.io_ms, sweep.cpu_ms, cap, self.cores, scale[mode]
                        )
            warm_mix = Mix("warm-up", {"sleep": 1.0, "cpu": 1.0})
            for mode in sweep.modes:
                self._next(f"warm-up {mode}{where}")
                jobs = min(sweep.max_jobs, max(sweep.min_jobs, 4 * len(sweep.modes)))
                spec = sweep.workload(warm_mix, jobs, mode, at)
                self.warmup.append(_lean(await measure(executors[mode], spec, self.calibration, self.services)))
            plan = [
                (mode, mix, rate, r)
                for mode in sweep.modes
                for mix in sweep.mixes
                for rate in sweep.rate_values()
                for r in range(sweep.repeats)
            ]
            random.Random(sweep.seed).shuffle(plan)
            for mode, mix, rate, r in plan:
                if self.stop.requested:  # a signal between two runs
                    raise RunStopped(f"interrupted by {self.stop.name}", self.stop.exit_code)
                label = f"{mode} x {mix.name}{where}{_rate_label(rate)}"
                self._next(f"{label} (repeat {r + 1}/{sweep.repeats})")
                key = (mode, mix.name, *at, rate)
                spec = sweep.workload(mix, _jobs_for(sweep, self.bounds[key], rate), mode, at, rate)
                run = await measure(
                    executors[mode], spec, self.calibration, self.services, progress=_labelled(self.progress, label)
                )
                if run.machine is not None and run.machine.busy:
                    self.busy[key] = self.busy.get(key, 0) + 1
                self.runs[key].append(_lean(run))

    def cells(self) -> list[Cell]:
        """A cell per key with whole runs, mix by mix in the sweep's order."""
        return [
            summarize_cell(key[0], mix, runs, self.bounds[key], at=key[2:], busy_runs=self.busy.get(key, 0))
            for mix in self.sweep.mixes
            for key, runs in self.runs.items()
            if key[1] == mix.name and runs
        ]


def _where(sweep: Sweep, at: tuple[int, int]) -> str:
    parts = []
    if sweep.workers_axis:
        parts.append(f"{at[0]} workers")
    if sweep.concurrency_axis:
        parts.append(f"concurrency {at[1]}")
    return f" ({', '.join(parts)})" if parts else ""


def _rate_label(rate: float) -> str:
    return f" at {rate:g}/s" if rate else ""


def _labelled(progress: Progress | None, label: str) -> Progress | None:
    """The live view shows one row per cell: the runs of a cell update the same row."""
    if progress is None:
        return None
    return lambda status: progress(dataclasses.replace(status, mode=label))


def _jobs_for(sweep: Sweep, best: dict[str, Any], rate: float) -> int:
    """Closed loop: about run_s at the bound; open loop: rate x run_s (the schedule's length)."""
    rate_s = rate or best["jobs_per_s"]
    wanted = sweep.max_jobs if rate_s is None else round(rate_s * sweep.run_s)
    return max(sweep.min_jobs, min(sweep.max_jobs, wanted))


def _lean(run: RunResult) -> RunResult:
    """A run as kept in a results file: the machine and calibration are recorded once, at the top."""
    return replace(run, machine=None, calibration=None)


def summarize_cell(
    mode: str,
    mix: Mix,
    runs: list[RunResult],
    best: dict[str, Any],
    *,
    at: tuple[int, int, float] | None = None,
    busy_runs: int = 0,
) -> Cell:
    samples = [r.throughput_jobs_per_s for r in runs]
    throughput = estimate(samples)
    mean = statistics.fmean(samples)
    cv = statistics.stdev(samples) / mean if len(samples) > 1 and mean > 0 else None
    hists = {
        name: Percentiles(**Latency.merged([getattr(r.histograms_us, name) for r in runs]).summary())
        for name in ("latency", "queue_wait", "service")
    }
    counts = [r.jobs for r in runs]
    jobs = Jobs(
        submitted=sum(j.submitted for j in counts),
        done=sum(j.done for j in counts),
        failed=sum(j.failed for j in counts),
        timed_out=sum(j.timed_out for j in counts),
        lost=sum(j.lost for j in counts),
        duplicates=sum(j.duplicates for j in counts),
    )
    best_rate = best["jobs_per_s"]
    return Cell(
        mode=mode,
        mix_name=mix.name,
        mix=mix.weights,
        cpu_share=round(cpu_share(mix.weights), 4),
        jobs_per_run=runs[0].jobs.submitted,
        workers=at[0] if at else None,
        concurrency=at[1] if at else None,
        rate_per_s=at[2] if at else None,
        summary=CellSummary(
            throughput=Interval.of(throughput),
            latency_ms=hists["latency"],
            queue_wait_ms=hists["queue_wait"],
            service_ms=hists["service"],
            loop_lag_p99_ms=Interval.of(estimate([r.loop_lag_ms.p99 for r in runs])),
            cpu_utilisation=round(sum(r.resources.cpu_utilisation for r in runs) / len(runs), 3),
            peak_rss_mb=max(r.resources.peak_rss_mb for r in runs),
            workers_peak_rss_mb=max(r.resources.workers_peak_rss_mb for r in runs),
            jobs=jobs,
            bound=Bound(jobs_per_s=best_rate, limited_by=best["limited_by"], limits=best["limits"]),
            efficiency=round(throughput.mean / best_rate, 3) if best_rate else None,
            cv=round(cv, 4) if cv is not None else None,
            busy_runs=busy_runs,
            peak_in_flight=max(r.peak_in_flight for r in runs),
            **_batching(runs),
        ),
        repeats=runs,
    )


def _batching(runs: list[RunResult]) -> dict[str, Any]:
    """A cell's jobs per task (mean over its repeats) and batch setting, for executors that send tasks."""
    found = [b for b in (r.executor.batching() for r in runs) if b is not None]
    if not found:
        return {}
    per = statistics.fmean(b.jobs_per_task for b in found)
    return {"jobs_per_task": round(per, 2), "batch": str(found[0].batch)}
