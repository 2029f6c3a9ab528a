"""Statistics for repeated measurements: means with confidence intervals, ratios with their
uncertainty (Welch's t-test on log ratios: one rule for the interval and the decision), Holm's
correction for many comparisons, and the best throughput an executor could reach on a mix.

scipy supplies the t distribution; the rest is a few lines of arithmetic kept here so the report,
the verdicts and ``runner compare`` all use the same definitions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.engine.codec import Typed
from runner.extras import needs_extra
from workers.base import Capacity
from workers.jobs import FREE_CPU_KINDS, GIL_CPU_KINDS

IO_MS_KINDS = frozenset({"sleep", "http", "mixed"})  # kinds whose I/O lasts --io-ms


@dataclass(frozen=True)
class Estimate:
    """Mean of n samples and the half-width of its 95 % confidence interval."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


@dataclass(frozen=True, kw_only=True)
class Interval(Typed):
    """An Estimate as results files keep it: mean, its 95 % interval, half-width and n."""

    mean: float
    ci95: list[float]
    half_width: float
    n: int

    @classmethod
    def of(cls, est: Estimate) -> Interval:
        return cls(mean=est.mean, ci95=[est.low, est.high], half_width=est.half_width, n=est.n)

    def estimate(self) -> Estimate:
        return Estimate(self.mean, self.half_width, self.n)


def t_critical(n: int, confidence: float = 0.95) -> float:
    with needs_extra("report"):
        from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(0.5 + confidence / 2, n - 1)) if n > 1 else math.inf


def estimate(samples: Sequence[float]) -> Estimate:
    n = len(samples)
    if n == 0:
        return Estimate(0.0, 0.0, 0)
    mean = statistics.fmean(samples)
    if n == 1:
        return Estimate(mean, math.inf, 1)
    return Estimate(mean, t_critical(n) * statistics.stdev(samples) / math.sqrt(n), n)


def ratio(a: Estimate, b: Estimate) -> tuple[float, float]:
    """a / b and the half-width of its 95 % interval (first-order error propagation)."""
    if b.mean <= 0:
        return math.inf, math.inf
    value = a.mean / b.mean
    rel_a = a.half_width / a.mean if a.mean > 0 else math.inf
    rel_b = b.half_width / b.mean
    return value, value * math.hypot(rel_a, rel_b)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that a and b have the same mean (1.0 if undecidable)."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    var_a, var_b = statistics.variance(a), statistics.variance(b)
    if var_a == 0 and var_b == 0:
        return 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    with needs_extra("report"):
        from scipy import stats as scipy_stats

    return float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


@dataclass(frozen=True)
class Ratio:
    """a / b as a ratio of geometric means, with its 95 % interval and the p-value of "no
    difference" -- both from one Welch t-test on the logarithms, so the interval excludes 1
    exactly when p < 0.05. Computed on log ratios, the interval is asymmetric and never crosses
    zero however wide it is (a first-order "675 +/- 600" cannot happen)."""

    value: float
    low: float
    high: float
    p_value: float
    df: float

    def to_dict(self) -> dict[str, Any]:
        return {"ratio": self.value, "ci95": [self.low, self.high], "p_value": self.p_value, "df": self.df}


def log_ratio(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Ratio:
    """Ratio of a's to b's geometric mean, e.g. throughput samples of two executors."""
    if not a or not b or min(a) <= 0 or min(b) <= 0:
        return Ratio(math.nan, math.nan, math.nan, 1.0, 0.0)
    la, lb = [math.log(x) for x in a], [math.log(x) for x in b]
    diff = statistics.fmean(la) - statistics.fmean(lb)
    value = math.exp(diff)
    if len(a) < 2 or len(b) < 2:
        return Ratio(value, 0.0, math.inf, 1.0, 0.0)
    va, vb = statistics.variance(la) / len(a), statistics.variance(lb) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Ratio(value, value, value, 0.0 if diff else 1.0, math.inf)
    # Welch-Satterthwaite degrees of freedom
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    with needs_extra("report"):
        from scipy import stats as scipy_stats

    t = float(scipy_stats.t.ppf(0.5 + confidence / 2, df))
    p = float(2 * scipy_stats.t.sf(abs(diff) / se, df))
    return Ratio(value, math.exp(diff - t * se), math.exp(diff + t * se), p, df)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: compare each with 0.05 to keep the chance of any false
    "wins" among all the comparisons of a sweep (or of ``compare``) at 5 %."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def cpu_share(mix: Mapping[str, float]) -> float:
    """Fraction of jobs that burn CPU (cpu, hash, mixed)."""
    total = sum(mix.values())
    return sum(w for k, w in mix.items() if k in GIL_CPU_KINDS | FREE_CPU_KINDS) / total if total else 0.0


def bound(
    mix: Mapping[str, float],
    io_ms: float,
    cpu_ms: float,
    capacity: Capacity,
    cores: int,
    cpu_scale: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The best throughput (jobs/s) the executor could reach on this mix, from the calibrated job
    costs: I/O is limited by slots / time per job; GIL-bound CPU by the cores that may run Python
    at once; GIL-free CPU by the cores it may use; all CPU by the machine's cores (a cluster's
    nodes' cores, when the capacity names them). The smallest limit is the bound, and names what
    binds. ``cpu_scale`` ("gil", "free") stretches the CPU costs where the workers measured
    themselves slower than the coordinator that sized the jobs."""
    scale = cpu_scale or {}
    total = sum(mix.values())
    share = {k: w / total for k, w in mix.items()}
    io_s = sum(s for k, s in share.items() if k in IO_MS_KINDS) * io_ms / 1000
    gil_s = sum(s for k, s in share.items() if k in GIL_CPU_KINDS) * cpu_ms * scale.get("gil", 1.0) / 1000
    free_s = sum(s for k, s in share.items() if k in FREE_CPU_KINDS) * cpu_ms * scale.get("free", 1.0) / 1000
    limits: dict[str, float] = {}
    if io_s + gil_s + free_s > 0:
        limits["slots"] = capacity.slots / (io_s + gil_s + free_s)
    if gil_s > 0:
        limits["gil"] = capacity.gil_cores / gil_s
    if free_s > 0:
        limits["gil_free_cores"] = capacity.free_cores / free_s
    if gil_s + free_s > 0:
        limits["cores"] = (capacity.cores or cores) / (gil_s + free_s)
    if not limits:
        return {"jobs_per_s": None, "limited_by": None, "limits": {}}
    binding = min(limits, key=limits.__getitem__)
    return {"jobs_per_s": limits[binding], "limited_by": binding, "limits": limits}
