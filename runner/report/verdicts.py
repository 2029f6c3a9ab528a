"""Verdicts in words, with their uncertainty, from a sweep's cells.

- Per mix: who wins, and by how much over each other executor ("I/O only: async 1.4x +/- 0.1
  thread, 120x +/- 6 process"), with Welch's t-test deciding whether a lead is real or a tie.
- The crossover: along the sleep/cpu mixes, the CPU share at which the I/O winner stops winning.
- The loop: how much CPU work delays the event loop, for the executor where it grows most.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

from runner.engine.stats import Estimate, ratio, welch_p

SIGNIFICANCE = 0.05
_SERIES_KINDS = frozenset({"sleep", "cpu"})


def _estimate(cell: dict[str, Any]) -> Estimate:
    t = cell["summary"]["throughput"]
    return Estimate(t["mean"], t["half_width"], t["n"])


def _samples(cell: dict[str, Any]) -> list[float]:
    return [float(r["throughput_jobs_per_s"]) for r in cell["repeats"]]


def mix_label(cell: dict[str, Any]) -> str:
    kinds = set(cell["mix"])
    if cell["cpu_share"] == 0 and kinds <= {"sleep", "http", "redis"}:
        return f"I/O only ({cell['mix_name']})"
    if cell["cpu_share"] == 1 and kinds <= {"cpu"}:
        return f"CPU only ({cell['mix_name']})"
    return str(cell["mix_name"])


def _times(value: float, half_width: float) -> str:
    digits = 0 if value >= 20 else 1 if value >= 2 else 2
    spread = "?" if math.isinf(half_width) else f"{half_width:.{digits}f}"
    return f"{value:.{digits}f}x +/- {spread}"


def _mix_verdict(group: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(group, key=lambda c: c["summary"]["throughput"]["mean"], reverse=True)
    winner = ranked[0]
    versus = []
    for other in ranked[1:]:
        value, half = ratio(_estimate(winner), _estimate(other))
        p = welch_p(_samples(winner), _samples(other))
        versus.append(
            {"mode": other["mode"], "ratio": value, "half_width": half, "p_value": p, "significant": p < SIGNIFICANCE}
        )
    label = mix_label(winner)
    ties = [v["mode"] for v in versus if not v["significant"]]
    parts = [f"{_times(v['ratio'], v['half_width'])} {v['mode']}" for v in versus if v["significant"]]
    if ties:
        text = f"{label}: {winner['mode']} ties with {', '.join(ties)} (no significant difference)"
        if parts:
            text += f"; {winner['mode']} " + ", ".join(parts)
    else:
        text = f"{label}: {winner['mode']} wins, " + ", ".join(parts)
    return {
        "kind": "mix",
        "mix": winner["mix_name"],
        "winner": winner["mode"],
        "ties": ties,
        "versus": versus,
        "text": text,
    }


def _series(cells: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per executor, the cells whose mix is only sleep and cpu, by rising CPU share."""
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        if set(cell["mix"]) <= _SERIES_KINDS:
            by_mode[cell["mode"]].append(cell)
    return {m: sorted(cs, key=lambda c: c["cpu_share"]) for m, cs in by_mode.items() if len(cs) >= 2}


def _crossover(series: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    if len(series) < 2:
        return None
    shares = sorted({c["cpu_share"] for cs in series.values() for c in cs})
    thr = {m: {c["cpu_share"]: c["summary"]["throughput"]["mean"] for c in cs} for m, cs in series.items()}
    common = [s for s in shares if all(s in t for t in thr.values())]
    if len(common) < 2:
        return None
    low_winner = max(thr, key=lambda m: thr[m][common[0]])
    high_winner = max(thr, key=lambda m: thr[m][common[-1]])
    if low_winner == high_winner:
        return {
            "kind": "crossover",
            "modes": [low_winner],
            "between": None,
            "estimate": None,
            "text": f"No crossover: {low_winner} leads from {common[0]:.0%} to {common[-1]:.0%} CPU",
        }
    a, b = thr[low_winner], thr[high_winner]
    for lo, hi in itertools.pairwise(common):
        if a[lo] >= b[lo] and a[hi] < b[hi]:
            lr_lo, lr_hi = math.log(a[lo] / b[lo]), math.log(a[hi] / b[hi])
            at = lo + (hi - lo) * lr_lo / (lr_lo - lr_hi) if lr_lo != lr_hi else lo
            return {
                "kind": "crossover",
                "modes": [low_winner, high_winner],
                "between": [lo, hi],
                "estimate": at,
                "text": f"Crossover between {lo:.0%} and {hi:.0%} CPU (about {at:.0%}): {low_winner} wins "
                f"below it, {high_winner} above",
            }
    return None


def _loop_verdict(series: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    growth = {m: (cs[0], cs[-1]) for m, cs in series.items()}
    if not growth:
        return None
    mode = max(
        growth,
        key=lambda m: (
            growth[m][1]["summary"]["loop_lag_p99_ms"]["mean"] - growth[m][0]["summary"]["loop_lag_p99_ms"]["mean"]
        ),
    )
    first, last = growth[mode]
    lag_lo = first["summary"]["loop_lag_p99_ms"]["mean"]
    lag_hi = last["summary"]["loop_lag_p99_ms"]["mean"]
    return {
        "kind": "loop",
        "mode": mode,
        "from_ms": lag_lo,
        "to_ms": lag_hi,
        "text": f"CPU work blocks the event loop: {mode}'s loop lag p99 grows from {lag_lo:.1f} ms at "
        f"{first['cpu_share']:.0%} CPU to {lag_hi:.1f} ms at {last['cpu_share']:.0%} CPU",
    }


def verdicts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    cells = doc.get("cells", [])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[cell["mix_name"]].append(cell)
    out = [_mix_verdict(group) for group in groups.values() if len(group) >= 2]
    series = _series(cells)
    for extra in (_crossover(series), _loop_verdict(series)):
        if extra is not None:
            out.append(extra)
    return out
