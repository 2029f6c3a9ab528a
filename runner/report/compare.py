"""``runner compare``: two results files, cell by cell, with a significance test per figure.

A change counts as a regression only when it passes the rule's threshold *and* is significant: the
ratio new / base of the per-repeat figures' geometric means, with its 95 % interval and p-value from
one Welch test on log ratios (``stats.log_ratio``, the rule the verdicts use), Holm-adjusted across
every figure of every cell compared. A single noisy repeat cannot fail a build, and a real
slow-down cannot hide behind the mean.

Cells are matched by executor, mix and point on the sweep axes. Figures from different machines or
calibrations are not comparable as such: ``warnings`` says when cores, CPU model, Python, package
versions or the calibration differ.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from runner.engine.bench_results import BenchResults, Cell
from runner.engine.codec import Typed
from runner.engine.results import RunResult
from runner.engine.stats import holm, log_ratio
from workers.errors import InputError

SIGNIFICANCE = 0.05
METRICS: dict[str, Callable[[RunResult], float]] = {
    "throughput": lambda run: run.throughput_jobs_per_s,
    "p50": lambda run: run.latency_ms.p50,
    "p95": lambda run: run.latency_ms.p95,
    "p99": lambda run: run.latency_ms.p99,
    # runner / the bare primitive, run interleaved (benchmarks/overhead.py; only where recorded)
    "vs_bare": lambda run: run.throughput_jobs_per_s / (run.bare_jobs_per_s or math.nan),
}


def _metrics(runs: list[RunResult]) -> list[str]:
    return [m for m in METRICS if m != "vs_bare" or all(r.bare_jobs_per_s for r in runs)]


_RULE = re.compile(r"^(?P<metric>[a-z0-9_]+):(?P<pct>[+-][0-9]{1,6}(?:\.[0-9]{1,6})?)%?$", re.ASCII)


class Rule(NamedTuple):
    metric: str
    pct: float  # signed: -5 means "fail if it falls by 5 % or more", +10 "if it rises by 10 % or more"

    def breached(self, change_pct: float) -> bool:
        return change_pct <= self.pct if self.pct < 0 else change_pct >= self.pct

    def __str__(self) -> str:
        return f"{self.metric}:{self.pct:+g}%"


def parse_rule(text: str) -> Rule:
    match = _RULE.match(text.strip())
    if match is None:
        raise InputError(f"--fail-if: {text!r} is not METRIC:+/-PCT, e.g. throughput:-5% or p99:+10%")
    metric = match["metric"]
    if metric not in METRICS:
        raise InputError(f"--fail-if: unknown metric {metric!r}; choose from: {', '.join(METRICS)}")
    return Rule(metric, float(match["pct"]))


@dataclass(frozen=True, kw_only=True)
class Change(Typed):
    """One figure of one cell: means of the base and new repeats, the relative change, the ratio new
    / base (geometric means) with its 95 % interval, Welch's p-value on the log ratios and the same
    p Holm-adjusted across the comparison (change_pct null: the base mean was 0)."""

    base: float
    new: float
    change_pct: float
    p_value: float
    significant: bool
    ratio: float | None = None
    ci95: list[float] | None = None
    p_holm: float | None = None


@dataclass(frozen=True, kw_only=True)
class CellChange(Typed):
    mode: str
    mix: str
    metrics: dict[str, Change]


@dataclass(frozen=True, kw_only=True)
class Regression(Typed):
    mode: str
    mix: str
    rule: str
    base: float
    new: float
    change_pct: float
    p_value: float
    significant: bool


@dataclass(frozen=True, kw_only=True)
class Comparison(Typed):
    """What ``runner compare --json`` prints."""

    cells: list[CellChange]
    missing: list[str]
    rules: list[str]
    regressions: list[Regression]
    warnings: list[str] = field(default_factory=list)


def _compare_metric(base_runs: list[RunResult], new_runs: list[RunResult], metric: str) -> Change:
    pick = METRICS[metric]
    a = [pick(r) for r in base_runs]
    b = [pick(r) for r in new_runs]
    if not a or not b:
        raise InputError("runner compare: a cell without repeats cannot be compared")
    base_mean, new_mean = statistics.fmean(a), statistics.fmean(b)
    change = (new_mean / base_mean - 1) * 100 if base_mean else math.inf
    r = log_ratio(b, a)
    finite = math.isfinite(r.value)
    return Change(
        base=base_mean,
        new=new_mean,
        change_pct=change,
        p_value=r.p_value,
        significant=r.p_value < SIGNIFICANCE,
        ratio=r.value if finite else None,
        ci95=[r.low, r.high] if finite else None,
    )


def _matched(base: BenchResults, new: BenchResults) -> tuple[dict[tuple[str, str], Cell], dict[tuple[str, str], Cell]]:
    """Cells keyed alike in both files: executor, and the mix with the cell's point on the axes
    that vary in either file (so a sweep without axes reads as before, and a file written before
    the axes existed matches on executor and mix)."""
    everything = base.cells + new.cells
    varying = [
        axis
        for axis in ("workers", "concurrency")
        if all(getattr(c, axis) is not None for c in everything) and len({getattr(c, axis) for c in everything}) > 1
    ]
    rates = len({c.rate_per_s or 0.0 for c in everything}) > 1

    def key(cell: Cell) -> tuple[str, str]:
        parts = [f"{axis} {getattr(cell, axis)}" for axis in varying]
        if rates:
            parts.append(f"{cell.rate_per_s:g} jobs/s offered" if cell.open_loop else "closed loop")
        return cell.mode, cell.mix_name + (f" ({', '.join(parts)})" if parts else "")

    return {key(c): c for c in base.cells}, {key(c): c for c in new.cells}


def machine_warnings(base: BenchResults, new: BenchResults) -> list[str]:
    """What differs between the two files' machines and calibrations, each in one line."""
    out = []
    a, b = base.machine, new.machine
    same = (("cores", a.cpus, b.cpus), ("CPU model", a.cpu_model, b.cpu_model), ("Python", a.python, b.python))
    for name, x, y in same:
        if x != y:
            out.append(f"the machines differ: {name} {x} vs {y}")
    changed = sorted(k for k in a.packages.keys() | b.packages.keys() if a.packages.get(k) != b.packages.get(k))
    if changed:
        shown = ", ".join(f"{k} {a.packages.get(k, '-')} vs {b.packages.get(k, '-')}" for k in changed[:5])
        out.append(f"package versions differ: {shown}" + (f" and {len(changed) - 5} more" if len(changed) > 5 else ""))
    ca, cb = base.calibration, new.calibration
    if ca is not None and cb is not None:
        for name in ("spin_iterations_per_ms", "hash_rounds_per_ms"):
            x, y = getattr(ca, name), getattr(cb, name)
            if x > 0 and abs(y / x - 1) > 0.10:
                out.append(f"the calibrations differ by more than 10 %: {name} {x:,.1f} vs {y:,.1f}")
    return out


def compare_results(base: BenchResults, new: BenchResults, rules: list[Rule]) -> Comparison:
    base_cells, new_cells = _matched(base, new)
    if not base_cells or not new_cells:
        raise InputError("runner compare needs two sweep results with cells (presets alone have none)")
    order = list(base_cells)
    keys = sorted(base_cells.keys() & new_cells.keys(), key=order.index)
    measured = {
        k: {
            m: _compare_metric(base_cells[k].repeats, new_cells[k].repeats, m)
            for m in _metrics(base_cells[k].repeats + new_cells[k].repeats)
        }
        for k in keys
    }
    flat = [(k, m) for k in keys for m in measured[k]]
    adjusted = holm([measured[k][m].p_value for k, m in flat])
    for (k, m), p in zip(flat, adjusted, strict=True):
        measured[k][m] = replace(measured[k][m], p_holm=p, significant=p < SIGNIFICANCE)
    cells, regressions = [], []
    for key in keys:
        metrics = measured[key]
        cells.append(CellChange(mode=key[0], mix=key[1], metrics=metrics))
        for rule in rules:
            if rule.metric not in metrics:
                continue  # vs_bare of a cell that has no bare rates
            f = metrics[rule.metric]
            if f.significant and rule.breached(f.change_pct):
                regressions.append(
                    Regression(
                        mode=key[0],
                        mix=key[1],
                        rule=str(rule),
                        base=f.base,
                        new=f.new,
                        change_pct=f.change_pct,
                        p_value=f.p_holm if f.p_holm is not None else f.p_value,
                        significant=f.significant,
                    )
                )
    missing = sorted(f"{m} x {x}" for m, x in base_cells.keys() ^ new_cells.keys())
    return Comparison(
        cells=cells,
        missing=missing,
        rules=[str(r) for r in rules],
        regressions=regressions,
        warnings=machine_warnings(base, new),
    )
