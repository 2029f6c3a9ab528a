"""Verdicts in words, with their uncertainty, drawn from a results document's figures.

Measuring does not judge: ``runner bench`` hands its results here (``with_verdicts``) before they
are written, and the verdicts are kept in the results file so every report shows the same ones.

- Per mix: who wins, and by how much over each other executor ("I/O only: async 1.4x +/- 0.1
  thread, 120x +/- 6 process"), with Welch's t-test deciding whether a lead is real or a tie.
- The crossover: along the sleep/cpu mixes, the CPU share at which the I/O winner stops winning.
- The loop: how much CPU work delays the event loop, for the executor where it grows most.
- Per preset: the seed article's claim, with our figures beside the article's.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import replace
from typing import Any

from runner.engine.preset_results import BlockingFigure, Presets, RequestsFigure, SpawnFigure
from runner.engine.results import BenchResults, Cell, Verdict
from runner.engine.stats import ratio, welch_p
from runner.report import format as fmt

SIGNIFICANCE = 0.05
_SERIES_KINDS = frozenset({"sleep", "cpu"})


def _samples(cell: Cell) -> list[float]:
    return [r.throughput_jobs_per_s for r in cell.repeats]


def mix_label(cell: Cell) -> str:
    kinds = set(cell.mix)
    if cell.cpu_share == 0 and kinds <= {"sleep", "http", "redis"}:
        return f"I/O only ({cell.mix_name})"
    if cell.cpu_share == 1 and kinds <= {"cpu"}:
        return f"CPU only ({cell.mix_name})"
    return cell.mix_name


def _mix_verdict(group: list[Cell]) -> Verdict:
    ranked = sorted(group, key=lambda c: c.summary.throughput.mean, reverse=True)
    winner = ranked[0]
    versus: list[dict[str, Any]] = []
    parts, ties = [], []
    for other in ranked[1:]:
        value, half = ratio(winner.summary.throughput.estimate(), other.summary.throughput.estimate())
        p = welch_p(_samples(winner), _samples(other))
        significant = p < SIGNIFICANCE
        versus.append(
            {"mode": other.mode, "ratio": value, "half_width": half, "p_value": p, "significant": significant}
        )
        if significant:
            parts.append(f"{fmt.times(value, half)} {other.mode}")
        else:
            ties.append(other.mode)
    label = mix_label(winner)
    if ties:
        text = f"{label}: {winner.mode} ties with {', '.join(ties)} (no significant difference)"
        if parts:
            text += f"; {winner.mode} " + ", ".join(parts)
    else:
        text = f"{label}: {winner.mode} wins, " + ", ".join(parts)
    figures = {"mix": winner.mix_name, "winner": winner.mode, "ties": ties, "versus": versus}
    return Verdict(kind="mix", text=text, figures=figures)


def cpu_series(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Per executor, the cells whose mix is only sleep and cpu, by rising CPU share (the verdicts'
    crossover and the charts' lines)."""
    by_mode: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        if set(cell.mix) <= _SERIES_KINDS:
            by_mode[cell.mode].append(cell)
    return {m: sorted(cs, key=lambda c: c.cpu_share) for m, cs in by_mode.items() if len(cs) >= 2}


def _crossover(series: dict[str, list[Cell]]) -> Verdict | None:
    if len(series) < 2:
        return None
    shares = sorted({c.cpu_share for cs in series.values() for c in cs})
    thr = {m: {c.cpu_share: c.summary.throughput.mean for c in cs} for m, cs in series.items()}
    common = [s for s in shares if all(s in t for t in thr.values())]
    if len(common) < 2:
        return None
    low_winner = max(thr, key=lambda m: thr[m][common[0]])
    high_winner = max(thr, key=lambda m: thr[m][common[-1]])
    if low_winner == high_winner:
        text = f"No crossover: {low_winner} leads from {fmt.pct(common[0])} to {fmt.pct(common[-1])} CPU"
        return Verdict(kind="crossover", text=text, figures={"modes": [low_winner], "between": None, "estimate": None})
    a, b = thr[low_winner], thr[high_winner]
    for lo, hi in itertools.pairwise(common):
        if a[lo] >= b[lo] and a[hi] < b[hi]:
            lr_lo, lr_hi = math.log(a[lo] / b[lo]), math.log(a[hi] / b[hi])
            at = lo + (hi - lo) * lr_lo / (lr_lo - lr_hi) if lr_lo != lr_hi else lo
            text = (
                f"Crossover between {fmt.pct(lo)} and {fmt.pct(hi)} CPU (about {fmt.pct(at)}): {low_winner} wins "
                f"below it, {high_winner} above"
            )
            figures = {"modes": [low_winner, high_winner], "between": [lo, hi], "estimate": at}
            return Verdict(kind="crossover", text=text, figures=figures)
    return None


def _loop_verdict(series: dict[str, list[Cell]]) -> Verdict | None:
    if not series:
        return None

    def lag(cell: Cell) -> float:
        return cell.summary.loop_lag_p99_ms.mean

    mode = max(series, key=lambda m: lag(series[m][-1]) - lag(series[m][0]))
    first, last = series[mode][0], series[mode][-1]
    text = (
        f"CPU work blocks the event loop: {mode}'s loop lag p99 grows from {fmt.fixed(lag(first), 1)} ms at "
        f"{fmt.pct(first.cpu_share)} CPU to {fmt.fixed(lag(last), 1)} ms at {fmt.pct(last.cpu_share)} CPU"
    )
    return Verdict(kind="loop", text=text, figures={"mode": mode, "from_ms": lag(first), "to_ms": lag(last)})


def sweep_verdicts(cells: list[Cell]) -> list[Verdict]:
    groups: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[cell.mix_name].append(cell)
    out = [_mix_verdict(group) for group in groups.values() if len(group) >= 2]
    series = cpu_series(cells)
    for extra in (_crossover(series), _loop_verdict(series)):
        if extra is not None:
            out.append(extra)
    return out


def with_verdicts(doc: BenchResults) -> BenchResults:
    """The document with its verdicts drawn: the sweep's cells first, then each preset."""
    found = sweep_verdicts(doc.cells) + (preset_verdicts(doc.presets) if doc.presets else [])
    return replace(doc, verdicts=found)


# --- presets ------------------------------------------------------------------------------------


def requests_verdict(fig: RequestsFigure) -> str:
    plan, v, r = fig.plan, fig.variants, fig.ratios
    call_s = plan.call_ms / 1000
    rel = {name: f"{fmt.fixed(x.vs_sequential, 3)}x +/- {fmt.spread(x.half_width, 3)}" for name, x in r.items()}

    def wall(name: str) -> str:
        return fmt.pm(v[name].wall_s, 3, sign="+/-")

    return (
        f"{plan.calls} HTTP calls of {call_s:g} s: one after another {wall('sequential')} s, as coroutines "
        f"{wall('coroutines')} s ({rel['coroutines']} of sequential), as threads {wall('threads')} s "
        f"({rel['threads']}); 95 % intervals over {plan.repeats} repeats "
        "(the article, 3 s calls to httpbin.org: 11.4 s one after another vs 4.1-4.9 s at once)"
    )


_SPAWN_ORDER = (("coroutine", "a coroutine"), ("thread", "a thread"), ("process", "a forked process"))


def spawn_verdict(fig: SpawnFigure) -> str:
    parts = []
    for kind, label in _SPAWN_ORDER:
        k = fig.kinds[kind]
        t, m = k.time_per_unit_us, k.memory_per_unit_kib
        parts.append(
            f"{label} {fmt.duration_us(t.mean)} +/- {fmt.duration_us(t.half_width)} and "
            f"{fmt.size_kib(m.mean)} +/- {fmt.size_kib(m.half_width)} (N = {fmt.count(k.n)})"
        )
    failed = [x for x in ("time", "memory") if not getattr(fig.order_holds, x)]
    holds = "holds for time and memory" if not failed else f"does NOT hold for {' and '.join(failed)}"
    mil = {kind: fig.kinds[kind].million for kind, _ in _SPAWN_ORDER}
    return (
        f"Creating one unit costs {'; '.join(parts)} (95 % intervals over {fig.plan.repeats} repeats), so "
        f"coroutine < thread < process {holds}; extrapolated linearly to a million units (not measured) that is "
        f"{fmt.fixed(mil['coroutine'].time_s, 1)} s / {fmt.size_mib(mil['coroutine'].memory_mib)}, "
        f"{fmt.fixed(mil['thread'].time_s, 0)} s / {fmt.size_mib(mil['thread'].memory_mib)} and "
        f"{fmt.fixed(mil['process'].time_s, 0)} s / {fmt.size_mib(mil['process'].memory_mib)} (the article: 6.8 s / "
        "1,112 MB, 43.6 s / 2,661 MB, and 379 s for a million processes, extrapolated from 1,000)"
    )


def blocking_verdict(fig: BlockingFigure) -> str:
    plan, r = fig.plan, fig.ratios
    lag, probe = r["loop_lag_p99_ms"], r["probe_p99_ms"]

    def figures(mode: str) -> str:
        f = fig.modes[mode]
        return (
            f"loop lag p99 {fmt.pm(f.loop_lag_p99_ms, 1, sign='+/-')} ms, probes p50 "
            f"{fmt.pm(f.probe_p50_ms, 1, sign='+/-')} ms and p99 {fmt.pm(f.probe_p99_ms, 1, sign='+/-')} ms"
        )

    return (
        f"{plan.cpu_ms:g} ms CPU jobs run inline in the coroutine hold the event loop ({figures('inline')} for "
        f"{plan.probe_ms:g} ms HTTP probes), against {figures('offloaded')} offloaded to a {fig.workers}-process "
        f"pool: {fmt.times(lag.inline_vs_offloaded, lag.half_width, 1)} the lag and "
        f"{fmt.times(probe.inline_vs_offloaded, probe.half_width, 1)} the probe p99 (95 % intervals over "
        f"{plan.repeats} repeats)"
    )


def preset_verdicts(presets: Presets) -> list[Verdict]:
    found = []
    if presets.requests is not None:
        found.append(Verdict(kind="preset", preset="requests", text=requests_verdict(presets.requests)))
    if presets.spawn is not None:
        found.append(Verdict(kind="preset", preset="spawn", text=spawn_verdict(presets.spawn)))
    if presets.blocking is not None:
        found.append(Verdict(kind="preset", preset="blocking", text=blocking_verdict(presets.blocking)))
    return found
