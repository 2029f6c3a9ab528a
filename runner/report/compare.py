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
from typing import Any, NamedTuple

from runner.engine.stats import welch_p
from workers.errors import InputError

SIGNIFICANCE = 0.05
METRICS: dict[str, Callable[[dict[str, Any]], float]] = {
    "throughput": lambda run: float(run["throughput_jobs_per_s"]),
    "p50": lambda run: float(run["latency_ms"]["p50"]),
    "p95": lambda run: float(run["latency_ms"]["p95"]),
    "p99": lambda run: float(run["latency_ms"]["p99"]),
}
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


def _compare_metric(base_runs: list[dict[str, Any]], new_runs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    pick = METRICS[metric]
    a = [pick(r) for r in base_runs]
    b = [pick(r) for r in new_runs]
    base_mean, new_mean = statistics.fmean(a), statistics.fmean(b)
    change = (new_mean / base_mean - 1) * 100 if base_mean else math.inf
    p = welch_p(a, b)
    return {"base": base_mean, "new": new_mean, "change_pct": change, "p_value": p, "significant": p < SIGNIFICANCE}


def compare_results(base: dict[str, Any], new: dict[str, Any], rules: list[Rule]) -> dict[str, Any]:
    base_cells = {(c["mode"], c["mix_name"]): c for c in base.get("cells", [])}
    new_cells = {(c["mode"], c["mix_name"]): c for c in new.get("cells", [])}
    if not base_cells or not new_cells:
        raise InputError("runner compare needs two sweep results with cells (presets alone have none)")
    cells, regressions = [], []
    for key in base_cells.keys() & new_cells.keys():
        metrics = {m: _compare_metric(base_cells[key]["repeats"], new_cells[key]["repeats"], m) for m in METRICS}
        cells.append({"mode": key[0], "mix": key[1], "metrics": metrics})
        for rule in rules:
            figure = metrics[rule.metric]
            if figure["significant"] and rule.breached(figure["change_pct"]):
                regressions.append({"mode": key[0], "mix": key[1], "rule": str(rule), **figure})
    order = list(base_cells)
    cells.sort(key=lambda c: order.index((c["mode"], c["mix"])))
    missing = sorted(f"{m} x {x}" for m, x in base_cells.keys() ^ new_cells.keys())
    return {"cells": cells, "missing": missing, "rules": [str(r) for r in rules], "regressions": regressions}


def render_comparison(console: Any, outcome: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="new vs base: change of the mean (p-value of Welch's t-test)", title_justify="left")
    for name in ("mode", "mix", *METRICS):
        table.add_column(name, justify="left" if name in ("mode", "mix") else "right", no_wrap=True)
    for cell in outcome["cells"]:
        row = []
        for metric in METRICS:
            f = cell["metrics"][metric]
            text = f"{f['change_pct']:+.1f}% (p={f['p_value']:.2f})"
            row.append(f"[bold]{text}[/bold]" if f["significant"] else text)
        table.add_row(cell["mode"], cell["mix"], *row)
    console.print(table)
    for item in outcome["missing"]:
        console.print(f"only in one file: {item}")
    for reg in outcome["regressions"]:
        console.print(
            f"[red]REGRESSION[/red] {reg['mode']} x {reg['mix']}: {reg['rule']} breached "
            f"({reg['change_pct']:+.1f}%, p={reg['p_value']:.3f})"
        )
    if outcome["rules"] and not outcome["regressions"]:
        console.print(f"no significant regression ({', '.join(outcome['rules'])})")
