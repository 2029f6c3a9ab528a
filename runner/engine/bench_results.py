"""The results document of ``runner bench`` (``BenchResults``, results.json), typed: a sweep's cells
with their summaries and repeats, scaling fits, verdicts, or the presets' figures. Built on the run
result types of ``runner.engine.results``; written, validated and described by the same codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from runner.engine.codec import Typed, keyed, optional, rest
from runner.engine.preset_results import Presets
from runner.engine.results import (
    SCHEMA_VERSION,
    CalibrationFigures,
    Jobs,
    Machine,
    Percentiles,
    RunResult,
)
from runner.engine.stats import Interval
from workers.errors import InputError

BENCH_KIND = "runner-bench"
_MAX_RESULTS_BYTES = 1 << 30  # far above any sweep's results (a big one is a few MB)


@dataclass(frozen=True, kw_only=True)
class Bound(Typed):
    """The best throughput the executor could reach on the mix, and which limit binds."""

    jobs_per_s: float | None
    limited_by: str | None
    limits: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class CellSummary(Typed):
    throughput: Interval
    latency_ms: Percentiles
    queue_wait_ms: Percentiles
    service_ms: Percentiles
    loop_lag_p99_ms: Interval
    cpu_utilisation: float
    peak_rss_mb: float
    workers_peak_rss_mb: float
    jobs: Jobs
    bound: Bound
    efficiency: float | None
    # Noise: coefficient of variation of the repeats' throughput, and how many repeats began on a
    # busy machine (``machine.busy``); peak jobs in flight over the repeats (closed loop: the window).
    cv: float | None = optional()
    busy_runs: int | None = optional()
    peak_in_flight: int | None = optional()
    # Jobs per pool/Celery task, mean over the repeats (None: the executor sends no tasks), and the
    # --batch setting behind it ("auto" or N): a figure that batching changed says so.
    jobs_per_task: float | None = optional()
    batch: str | None = optional()

    @property
    def batched(self) -> bool:
        """True when jobs shared tasks: the cell's figures are batching's as much as the executor's."""
        return self.jobs_per_task is not None and self.jobs_per_task > 1.0


@dataclass(frozen=True, kw_only=True)
class Cell(Typed):
    """One executor on one mix: the summary over its measured repeats, and the repeats."""

    mode: str
    mix_name: str
    mix: dict[str, float]
    cpu_share: float
    jobs_per_run: int
    # The sweep axes this cell sits at (files written before the axes existed lack them).
    workers: int | None = optional()
    concurrency: int | None = optional()
    rate_per_s: float | None = optional()  # 0: closed loop
    summary: CellSummary
    repeats: list[RunResult]

    @property
    def open_loop(self) -> bool:
        return bool(self.rate_per_s)

    def at(self) -> tuple[int | None, int | None, float]:
        """Where the cell sits on the sweep axes: (workers, concurrency, rate)."""
        return self.workers, self.concurrency, self.rate_per_s or 0.0


@dataclass(frozen=True, kw_only=True)
class NamedMix(Typed):
    name: str
    mix: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class SweepPlan(Typed):
    """The sweep's settings, as ``runner bench`` resolved them."""

    modes: list[str]
    mixes: list[NamedMix]
    repeats: int
    io_ms: float
    cpu_ms: float
    concurrency: int
    workers: int
    celery_workers: int | None
    celery_pool: str
    batch: int | None = optional()
    timeout: float
    run_s: float
    min_jobs: int
    max_jobs: int
    seed: int
    quick: bool
    # Sweep axes: each value list gives one cell per combination (absent: the single value above).
    workers_axis: list[int] | None = optional()
    concurrency_axis: list[int] | None = optional()
    rates: list[float] | None = optional()
    slo_p99_ms: float | None = optional()
    more: dict[str, Any] = rest()


@dataclass(frozen=True, kw_only=True)
class Verdict(Typed):
    """A conclusion in words; ``kind`` is mix, crossover, loop, scaling, capacity or preset. The figures behind it
    (winner, ratios, p-values, ...) differ per kind and are kept beside the text."""

    kind: str
    text: str
    preset: str | None = optional()
    figures: dict[str, Any] = rest()


@dataclass(frozen=True, kw_only=True)
class Usl(Typed):
    """The Universal Scalability Law fitted to throughput vs workers, X(N) = lambda N / (1 + sigma
    (N-1) + kappa N (N-1)): sigma is contention, kappa coherency, lambda the one-worker rate."""

    sigma: float
    kappa: float
    lambda_: float = keyed("lambda")
    peak_workers: float | None
    peak_jobs_per_s: float | None
    r2: float


@dataclass(frozen=True, kw_only=True)
class ScalingPoint(Typed):
    workers: int
    jobs_per_s: float
    half_width: float
    bound: float | None = None


@dataclass(frozen=True, kw_only=True)
class Scaling(Typed):
    """Throughput vs workers of one executor on one mix (at one concurrency and rate), with the
    USL fit where there are enough points and it fits; ``note`` says why not otherwise."""

    mode: str
    mix_name: str
    concurrency: int | None = None
    rate_per_s: float = 0.0
    points: list[ScalingPoint]
    usl: Usl | None = optional()
    note: str | None = optional()


@dataclass(frozen=True, kw_only=True)
class BenchStopped(Typed):
    reason: str
    cells_with_runs: int


@dataclass(frozen=True, kw_only=True)
class Container(Typed):
    """CPU and memory of one container of a compose cluster (``runner cluster sample``)."""

    name: str
    service: str
    hostname: str | None = None
    cpu_percent_mean: float
    cpu_percent_max: float
    mem_peak_mb: float
    samples: int


@dataclass(frozen=True, kw_only=True)
class BenchResults(Typed):
    """``results.json`` of ``runner bench``: a sweep (cells) or presets, with verdicts."""

    schema_version: int
    kind: str = BENCH_KIND
    runner_version: str
    started_at: str
    wall_s: float
    quick: bool | None = optional()
    sweep: SweepPlan | None = optional()
    calibration: CalibrationFigures | None = optional()
    machine: Machine
    warmup: list[RunResult] | None = optional()
    cells: list[Cell] = field(default_factory=list)
    presets: Presets | None = optional()
    scaling: list[Scaling] | None = optional()
    verdicts: list[Verdict] = field(default_factory=list)
    stopped: BenchStopped | None = optional()
    containers: list[Container] | None = optional()

    @classmethod
    def from_json(cls, data: Any, where: str = "results") -> Self:
        if not isinstance(data, dict) or data.get("kind") != BENCH_KIND:
            raise InputError(f'{where} is not a results file of `runner bench` (no "kind": "{BENCH_KIND}")')
        if data.get("schema_version") != SCHEMA_VERSION:
            version = data.get("schema_version")
            raise InputError(f"{where} has schema_version {version!r}; this runner reads {SCHEMA_VERSION}")
        return super().from_json(data, where)


def load_results(path: Path) -> BenchResults:
    """A results file, validated; InputError (one line, exit 2) naming the file and the bad path."""
    import json
    import stat

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise InputError(f"{path} is not a regular file")
        if info.st_size > _MAX_RESULTS_BYTES:
            raise InputError(f"{path} is {info.st_size:,} bytes; a results file is at most {_MAX_RESULTS_BYTES:,}")
        text = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError(f"{path} is not a results file (nested too deeply)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a results file (invalid JSON: {exc})") from None
    return BenchResults.from_json(data, str(path))
