"""``runner bench``: sweep executors x workload mixes and summarise every cell.

All executors of the sweep are started once and stay up (so Celery's and the process pool's start-up
is paid once, not per run); one warm-up run per executor is kept apart; then every (executor, mix,
repeat) run happens in a shuffled order, so drift on the machine spreads over all cells instead of
biasing one.

Each run is sized from the cell's bound (what the executor could do at best on that mix): about
``run_s`` seconds of work, between ``min_jobs`` and ``max_jobs`` jobs. Without this, a job count
that keeps the process pool busy for a second is over in milliseconds on the event loop, and a
count that gives the event loop a fair run keeps the pool busy for minutes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from runner import __version__
from runner.engine import codec, interrupt
from runner.engine.coordinator import Progress, executor_config, measure
from runner.engine.machine import describe_machine, usable_cpus
from runner.engine.metrics import Latency
from runner.engine.results import (
    SCHEMA_VERSION,
    BenchResults,
    BenchStopped,
    Bound,
    CalibrationFigures,
    Cell,
    CellSummary,
    Jobs,
    Machine,
    Percentiles,
    RunResult,
    SweepPlan,
)
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec, parse_mix, read_toml
from runner.engine.stats import Interval, bound, cpu_share, estimate
from workers.base import Executor
from workers.calibration import Calibration, calibrate
from workers.errors import InputError, RunStopped
from workers.registry import MODES, executor_class

# The four strategies the question is about; --modes all adds hybrid and gevent.
CLASSIC_MODES = ("async", "thread", "process", "celery")

Step = Callable[[int, int, str], None]  # (runs done, runs in all, what runs next)


@dataclass(frozen=True)
class Mix:
    name: str
    weights: dict[str, float]


DEFAULT_MIXES = (
    Mix("cpu 0%", {"sleep": 1.0}),
    Mix("cpu 25%", {"sleep": 3.0, "cpu": 1.0}),
    Mix("cpu 50%", {"sleep": 1.0, "cpu": 1.0}),
    Mix("cpu 75%", {"sleep": 1.0, "cpu": 3.0}),
    Mix("cpu 100%", {"cpu": 1.0}),
    Mix("hash", {"hash": 1.0}),
    Mix("http", {"http": 1.0}),
)


@dataclass(frozen=True)
class Sweep:
    modes: tuple[str, ...] = CLASSIC_MODES
    mixes: tuple[Mix, ...] = DEFAULT_MIXES
    repeats: int = 3
    io_ms: float = 50.0
    cpu_ms: float = 10.0
    concurrency: int = 1000
    workers: int = field(default_factory=usable_cpus)
    celery_workers: int | None = None  # same as workers
    celery_pool: str = "prefork"
    expect_workers: int = 0  # a cluster's Celery nodes to wait for (celery_workers 0)
    wait_s: float = 30.0
    timeout: float = 60.0
    run_s: float = 2.0
    min_jobs: int = 50
    max_jobs: int = 50_000
    seed: int = 1
    quick: bool = False

    def workload(self, mix: Mix, jobs: int, mode: str) -> WorkloadSpec:
        values = {k: getattr(self, k) for k in ("io_ms", "cpu_ms", "concurrency", "workers", "timeout")}
        values["celery_workers"] = self.celery_workers
        values["celery_pool"] = self.celery_pool
        values["expect_workers"], values["wait_s"] = self.expect_workers, self.wait_s
        return WorkloadSpec.build({**values, "jobs": jobs, "mix": dict(mix.weights)}, (mode,))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mixes"] = [{"name": m.name, "mix": m.weights} for m in self.mixes]
        out["modes"] = list(self.modes)
        return out


QUICK = {
    "repeats": 3,
    "io_ms": 20.0,
    "cpu_ms": 5.0,
    "concurrency": 500,
    "run_s": 0.6,
    "min_jobs": 20,
    "max_jobs": 5_000,
    "quick": True,
}
_SWEEP_KEYS = {
    "celery_pool",
    "modes",
    "mixes",
    "repeats",
    "io_ms",
    "cpu_ms",
    "concurrency",
    "workers",
    "celery_workers",
    "expect_workers",
    "wait_s",
    "timeout",
    "run_s",
    "min_jobs",
    "max_jobs",
    "seed",
}


def parse_named_mix(text: str) -> Mix:
    """``io:sleep=1`` -> Mix("io", ...); an unnamed ``sleep=1,cpu=1`` is named after itself."""
    name, sep, weights = text.partition(":")
    if not sep:
        name, weights = text, text
    name = name.strip()
    if not name:
        raise InputError(f"--mix: empty name in {text!r}; write NAME:KIND=W,... or KIND=W,...")
    return Mix(name, parse_mix(weights))


def build_sweep(overrides: Mapping[str, Any], *, quick: bool, sweep_file: Path | None = None) -> Sweep:
    """Defaults < --quick < sweep file < flags; every value validated like ``runner submit``'s."""
    values: dict[str, Any] = dict(QUICK) if quick else {}
    if sweep_file is not None:
        values.update(_load_sweep_file(sweep_file))
    values.update({k: v for k, v in overrides.items() if v is not None})
    modes = tuple(values.get("modes") or CLASSIC_MODES)
    if modes == ("all",):
        modes = MODES
    for mode in modes:
        executor_class(mode)
    if len(set(modes)) != len(modes):
        raise InputError("--modes: each executor may appear once")
    mixes = tuple(values.get("mixes") or DEFAULT_MIXES)
    if len({m.name for m in mixes}) != len(mixes):
        raise InputError("--mix: two mixes share a name; name them NAME:KIND=W,...")
    sweep = Sweep(**{**values, "modes": modes, "mixes": mixes})
    for name, low in (("repeats", 1), ("min_jobs", 1), ("max_jobs", 1)):
        value = getattr(sweep, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"--{name.replace('_', '-')}: expected a whole number >= {low}, got {value!r}")
    if sweep.min_jobs > sweep.max_jobs:
        raise InputError("--min-jobs: must not exceed --max-jobs")
    if not isinstance(sweep.run_s, int | float) or not 0 < sweep.run_s <= 3600:
        raise InputError(f"--run-s: expected seconds between 0 and 3600, got {sweep.run_s!r}")
    sweep.workload(mixes[0], sweep.min_jobs, modes[0])  # validates the shared workload values
    return sweep


def _load_sweep_file(path: Path) -> dict[str, Any]:
    data = read_toml(path, "--sweep", _SWEEP_KEYS)
    if "modes" in data:
        if not isinstance(data["modes"], list) or not all(isinstance(m, str) for m in data["modes"]):
            raise InputError(f"--sweep: 'modes' in {path} must be a list of executor names")
        data["modes"] = tuple(data["modes"])
    if "mixes" in data:
        data["mixes"] = tuple(_mix_entry(entry, path) for entry in _as_list(data["mixes"], path))
    return data


def _as_list(value: Any, path: Path) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InputError(f"--sweep: 'mixes' in {path} must be a non-empty array of tables")
    return value


def _mix_entry(entry: Any, path: Path) -> Mix:
    if not isinstance(entry, dict) or set(entry) != {"name", "mix"} or not isinstance(entry["name"], str):
        raise InputError(f"--sweep: each [[mixes]] entry in {path} needs exactly 'name' (text) and 'mix'")
    return Mix(entry["name"], parse_mix(entry["mix"]))


def run_sweep(sweep: Sweep, step: Step | None = None, progress: Progress | None = None) -> BenchResults:
    """Run the whole sweep; return the results document (see README, "Results file"). Verdicts are
    the report's to draw (``runner.report.verdicts``): measuring does not judge."""
    probe = WorkloadSpec.build(
        {"workers": sweep.workers, "celery_workers": sweep.celery_workers, "expect_workers": sweep.expect_workers},
        sweep.modes,
    )
    for mode in sweep.modes:
        executor_class(mode).validate(executor_config(probe), LocalServices.redis_from_environment())
    calibration = calibrate()
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


async def _sweep(
    sweep: Sweep,
    calibration: Calibration,
    services: LocalServices,
    step: Step,
    stop: interrupt.StopRequest,
    progress: Progress | None = None,
) -> tuple[list[RunResult], list[Cell], RunStopped | None]:
    cores = usable_cpus()
    executors: dict[str, Executor] = {}
    runs: dict[tuple[str, str], list[RunResult]] = {}
    warmup: list[RunResult] = []
    capacities: dict[str, Any] = {}
    stopped: RunStopped | None = None
    try:
        for mode in sweep.modes:
            spec = sweep.workload(sweep.mixes[0], sweep.min_jobs, mode)
            executors[mode] = executor_class(mode)(executor_config(spec), services)
            await executors[mode].start()
        sizes = {
            (mode, mix.name): _jobs_for(sweep, mix, executors[mode], cores)
            for mode in sweep.modes
            for mix in sweep.mixes
        }
        plan = [(mode, mix, r) for mode in sweep.modes for mix in sweep.mixes for r in range(sweep.repeats)]
        random.Random(sweep.seed).shuffle(plan)
        total = len(plan) + len(sweep.modes)
        capacities = {mode: ex.capacity(cores) for mode, ex in executors.items()}
        warm_mix = Mix("warm-up", {"sleep": 1.0, "cpu": 1.0})
        runs = {key: [] for key in sizes}
        try:
            for i, mode in enumerate(sweep.modes):
                step(i, total, f"warm-up {mode}")
                spec = sweep.workload(warm_mix, min(sweep.max_jobs, max(sweep.min_jobs, 4 * len(sweep.modes))), mode)
                warmup.append(_lean(await measure(executors[mode], spec, calibration, services)))
            for i, (mode, mix, r) in enumerate(plan):
                if stop.requested:  # a signal between two runs
                    raise RunStopped(f"interrupted by {stop.name}", stop.exit_code)
                step(len(sweep.modes) + i, total, f"{mode} x {mix.name} (repeat {r + 1}/{sweep.repeats})")
                spec = sweep.workload(mix, sizes[(mode, mix.name)], mode)
                cell_progress = _labelled(progress, f"{mode} x {mix.name}")
                run = await measure(executors[mode], spec, calibration, services, progress=cell_progress)
                runs[(mode, mix.name)].append(_lean(run))
        except RunStopped as exc:  # a run cut short is not a measurement: only whole runs are kept
            stopped = exc
        step(total, total, "done")
    finally:
        for ex in executors.values():
            await ex.stop()
    cells = [
        summarize_cell(
            mode, mix, runs[(mode, mix.name)], bound(mix.weights, sweep.io_ms, sweep.cpu_ms, capacities[mode], cores)
        )
        for mix in sweep.mixes
        for mode in sweep.modes
        if runs.get((mode, mix.name))
    ]
    return warmup, cells, stopped


def _labelled(progress: Progress | None, label: str) -> Progress | None:
    """The live view shows one row per cell: the runs of a cell update the same row."""
    if progress is None:
        return None
    return lambda status: progress(dataclasses.replace(status, mode=label))


def _jobs_for(sweep: Sweep, mix: Mix, executor: Executor, cores: int) -> int:
    best = bound(mix.weights, sweep.io_ms, sweep.cpu_ms, executor.capacity(cores), cores)["jobs_per_s"]
    wanted = sweep.max_jobs if best is None else round(best * sweep.run_s)
    return max(sweep.min_jobs, min(sweep.max_jobs, wanted))


def _lean(run: RunResult) -> RunResult:
    """A run as kept in a results file: the machine and calibration are recorded once, at the top."""
    return replace(run, machine=None, calibration=None)


def summarize_cell(mode: str, mix: Mix, runs: list[RunResult], best: dict[str, Any]) -> Cell:
    throughput = estimate([r.throughput_jobs_per_s for r in runs])
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
        ),
        repeats=runs,
    )
