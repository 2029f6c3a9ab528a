"""``runner compare``: two results files, cell by cell, with a significance test per figure.

A change counts as a regression only when it passes the rule's threshold *and* Welch's t-test over
the per-repeat figures says it is unlikely to be noise (p < 0.05); a single noisy repeat cannot fail
a build, and a real slow-down cannot hide behind the mean.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from runner.engine.codec import Typed
from runner.engine.results import BenchResults, RunResult
from runner.engine.stats import welch_p
from workers.errors import InputError

SIGNIFICANCE = 0.05
METRICS: dict[str, Callable[[RunResult], float]] = {
    "throughput": lambda run: run.throughput_jobs_per_s,
    "p50": lambda run: run.latency_ms.p50,
    "p95": lambda run: run.latency_ms.p95,
    "p99": lambda run: run.latency_ms.p99,
}
_RULE = re.compile(r"^(?P<metric>[a-z0-9_]+):(?P<pct>[+-]\d+(?:\.\d+)?)%?$")


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
    """One figure of one cell: means of the base and new repeats, the relative change, and Welch's
    p-value (change_pct null: the base mean was 0)."""

    base: float
    new: float
    change_pct: float
    p_value: float
    significant: bool


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


def _compare_metric(base_runs: list[RunResult], new_runs: list[RunResult], metric: str) -> Change:
    pick = METRICS[metric]
    a = [pick(r) for r in base_runs]
    b = [pick(r) for r in new_runs]
    if not a or not b:
        raise InputError("runner compare: a cell without repeats cannot be compared")
    base_mean, new_mean = statistics.fmean(a), statistics.fmean(b)
    change = (new_mean / base_mean - 1) * 100 if base_mean else math.inf
    p = welch_p(a, b)
    return Change(base=base_mean, new=new_mean, change_pct=change, p_value=p, significant=p < SIGNIFICANCE)


def compare_results(base: BenchResults, new: BenchResults, rules: list[Rule]) -> Comparison:
    base_cells = {(c.mode, c.mix_name): c for c in base.cells}
    new_cells = {(c.mode, c.mix_name): c for c in new.cells}
    if not base_cells or not new_cells:
        raise InputError("runner compare needs two sweep results with cells (presets alone have none)")
    cells, regressions = [], []
    for key in base_cells.keys() & new_cells.keys():
        metrics = {m: _compare_metric(base_cells[key].repeats, new_cells[key].repeats, m) for m in METRICS}
        cells.append(CellChange(mode=key[0], mix=key[1], metrics=metrics))
        for rule in rules:
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
                        p_value=f.p_value,
                        significant=f.significant,
                    )
                )
    order = list(base_cells)
    cells.sort(key=lambda c: order.index((c.mode, c.mix)))
    missing = sorted(f"{m} x {x}" for m, x in base_cells.keys() ^ new_cells.keys())
    return Comparison(cells=cells, missing=missing, rules=[str(r) for r in rules], regressions=regressions)
