"""The figures of ``runner bench --preset`` as typed results (``BenchResults.presets``).

What each figure means is described in ``runner.experiments.presets``; here only their shape.
The figures of "Asynchronous Programming" (Tai Le, 2023) travel beside ours (``article``) so a report can show both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.engine.codec import Typed, optional, rest
from runner.engine.stats import Interval

# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RequestsPlan(Typed):
    calls: int = 3
    call_ms: float = 3000.0
    repeats: int = 3


@dataclass(frozen=True, kw_only=True)
class RequestsVariant(Typed):
    what: str
    executor: str
    in_flight: int
    wall_s: Interval
    samples: list[float]
    ideal_s: float
    call_ms_p50: float


@dataclass(frozen=True, kw_only=True)
class VsSequential(Typed):
    vs_sequential: float
    half_width: float


@dataclass(frozen=True, kw_only=True)
class RequestsArticle(Typed):
    calls: int
    call_s: float
    sequential_s: float
    gevent_s: float
    asyncio_s: float
    where: str


@dataclass(frozen=True, kw_only=True)
class RequestsFigure(Typed):
    plan: RequestsPlan
    target: str
    target_url: str
    variants: dict[str, RequestsVariant]
    ratios: dict[str, VsSequential]
    article: RequestsArticle


# --- spawn -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpawnPlan(Typed):
    coroutine: int = 100_000
    thread: int = 2_000
    process: int = 50
    process_spawn: int = 10
    repeats: int = 5

    def counts(self) -> dict[str, int]:
        return {
            "coroutine": self.coroutine,
            "thread": self.thread,
            "process": self.process,
            "process-spawn": self.process_spawn,
        }


@dataclass(frozen=True, kw_only=True)
class Million(Typed):
    """A linear extrapolation to 10^6 units, not a measurement."""

    time_s: float
    memory_mib: float
    extrapolated: bool = True


@dataclass(frozen=True, kw_only=True)
class SpawnKind(Typed):
    n: int
    time_per_unit_us: Interval
    memory_per_unit_kib: Interval
    million: Million
    samples: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class OrderHolds(Typed):
    time: bool
    memory: bool


@dataclass(frozen=True, kw_only=True)
class SpawnArticle(Typed):
    n: int
    time_s: float
    memory_mib: float | None
    million_s: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class SpawnFigure(Typed):
    plan: SpawnPlan
    kinds: dict[str, SpawnKind]
    order_holds: OrderHolds
    article: dict[str, SpawnArticle]


# --- blocking ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BlockingPlan(Typed):
    jobs: int = 40
    cpu_ms: float = 50.0
    probe_ms: float = 10.0
    probes: int = 4
    repeats: int = 5


@dataclass(frozen=True, kw_only=True)
class BlockingRun(Typed):
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    probe_p50_ms: float
    probe_p99_ms: float
    probes: int
    job_ms_p50: float
    jobs_per_s: float
    wall_s: float


@dataclass(frozen=True, kw_only=True)
class BlockingMode(Typed):
    loop_lag_p99_ms: Interval
    probe_p99_ms: Interval
    probe_p50_ms: Interval
    job_ms_p50: Interval
    jobs_per_s: Interval
    repeats: list[BlockingRun]


@dataclass(frozen=True, kw_only=True)
class InlineVsOffloaded(Typed):
    inline_vs_offloaded: float
    half_width: float


@dataclass(frozen=True, kw_only=True)
class BlockingFigure(Typed):
    plan: BlockingPlan
    workers: int
    in_flight: int
    loop: str
    probe: str
    modes: dict[str, BlockingMode]
    ratios: dict[str, InlineVsOffloaded]
    article: dict[str, Any]


# --- race --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RaceVariant(Typed):
    """One way of sharing a counter: ``lost`` increments of ``increments`` (visible = the counter
    as the starter saw it at the end)."""

    variant: str
    strategy: str  # the article's column: coroutine, thread or process
    workers: int
    increments: int
    visible: int
    lost: int
    lost_per_million: float
    seconds: float


@dataclass(frozen=True, kw_only=True)
class RaceFigure(Typed):
    increments: int
    workers: int
    variants: list[RaceVariant]
    article: dict[str, str]  # strategy -> the article's claim


@dataclass(frozen=True, kw_only=True)
class Presets(Typed):
    """The presets that ran, each with its figures."""

    requests: RequestsFigure | None = optional()
    spawn: SpawnFigure | None = optional()
    blocking: BlockingFigure | None = optional()
    race: RaceFigure | None = optional()
    more: dict[str, Any] = rest()

    def names(self) -> list[str]:
        return [name for name in ("requests", "spawn", "blocking", "race") if getattr(self, name) is not None]
