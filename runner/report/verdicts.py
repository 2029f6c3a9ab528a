"""Verdicts in words, with their uncertainty, drawn from a results document's figures.

Measuring does not judge: ``runner bench`` hands its results here (``with_verdicts``) before they
are written, and the verdicts are kept in the results file so every report shows the same ones.

- Per mix (and point of the sweep axes): who wins, and by how much over each other executor ("I/O
  only: async wins, 1.40x (1.31-1.52) thread"): the ratio of geometric means with its 95 % interval
  and the decision from one Welch test on log ratios (``stats.log_ratio``), Holm-adjusted across
  every comparison of the sweep, so an interval that includes 1 is never called a win.
- The crossover: along the sleep/cpu mixes, the CPU share at which the I/O winner stops winning --
  interpolated between the two measured shares around it, with the range the ratios' intervals allow.
- Scaling: the Universal Scalability Law fitted per executor x mix (``runner.report.scaling``).
- Capacity: with a rate axis and ``--slo-p99-ms``, each executor's highest rate meeting the target.
- The loop: how much CPU work delays the event loop, for the executor where it grows most.
- Per preset: the article's claim, with our figures beside the article's.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import replace
from typing import Any

from runner.engine.bench_results import BenchResults, Cell, Verdict
from runner.engine.preset_results import BlockingFigure, Presets, RequestsFigure, SpawnFigure
from runner.engine.stats import Ratio, holm, log_ratio
from runner.report import format as fmt
from runner.report import scaling as sc

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


def axes_label(cell: Cell, cells: list[Cell]) -> str:
    """Where on the sweep axes a cell sits, naming only the axes the sweep varies; a rate axis
    labels every cell as open loop (at its rate) or closed loop."""
    parts = []
    if len({c.workers for c in cells}) > 1:
        parts.append(f"{cell.workers} {fmt.plural(cell.workers, 'worker')}")
    if len({c.concurrency for c in cells}) > 1:
        parts.append(f"concurrency {cell.concurrency}")
    if len({c.rate_per_s or 0.0 for c in cells}) > 1 or any(c.open_loop for c in cells):
        parts.append(f"open loop at {cell.rate_per_s or 0:g} jobs/s" if cell.open_loop else "closed loop")
    return ", ".join(parts)


def _group_label(cell: Cell, cells: list[Cell]) -> str:
    where = axes_label(cell, cells)
    return mix_label(cell) + (f", {where}" if where else "")


def _geometric_mean(cell: Cell) -> float:
    samples = [x for x in _samples(cell) if x > 0]
    return statistics.geometric_mean(samples) if samples else 0.0


def _mix_verdicts(groups: list[list[Cell]], cells: list[Cell]) -> list[Verdict]:
    """One verdict per group of cells (same mix and axes), every comparison Holm-adjusted together."""
    ranked = [sorted(g, key=_geometric_mean, reverse=True) for g in groups]  # what log_ratio compares
    pairs = [(r[0], other) for r in ranked for other in r[1:]]
    ratios: list[Ratio] = [log_ratio(_samples(w), _samples(o)) for w, o in pairs]
    adjusted = holm([r.p_value for r in ratios])
    found = {(id(w), id(o)): (r, p) for (w, o), r, p in zip(pairs, ratios, adjusted, strict=True)}
    out = []
    for r in ranked:
        winner = r[0]
        versus: list[dict[str, Any]] = []
        parts, ties = [], []
        for other in r[1:]:
            result, p_holm = found[(id(winner), id(other))]
            significant = p_holm < SIGNIFICANCE
            versus.append({"mode": other.mode, **result.to_dict(), "p_holm": p_holm, "significant": significant})
            if significant:
                parts.append(f"{fmt.ratio_range(result.value, result.low, result.high)} {other.mode}")
            else:
                ties.append(other.mode)
        label = _group_label(winner, cells)
        if ties:
            text = f"{label}: {winner.mode} ties with {', '.join(ties)} (no significant difference)"
            if parts:
                text += f"; {winner.mode} " + ", ".join(parts)
        else:
            text = f"{label}: {winner.mode} wins, " + ", ".join(parts)
        batched = [f"{c.mode} {fmt.per_task(c.summary.jobs_per_task or 1)} jobs/task" for c in r if c.summary.batched]
        if batched:  # those figures are the batching's as much as the executor's
            text += f" (batched: {', '.join(batched)})"
        figures = {
            "mix": winner.mix_name,
            "workers": winner.workers,
            "concurrency": winner.concurrency,
            "rate_per_s": winner.rate_per_s,
            "winner": winner.mode,
            "ties": ties,
            "versus": versus,
            "comparisons_in_sweep": len(pairs),
        }
        out.append(Verdict(kind="mix", text=text, figures=figures))
    return out


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
    by = {m: {c.cpu_share: c for c in cs} for m, cs in series.items()}
    thr = {m: {s: c.summary.throughput.mean for s, c in cells.items()} for m, cells in by.items()}
    common = [s for s in shares if all(s in t for t in thr.values())]
    if len(common) < 2:
        return None
    low_winner = max(thr, key=lambda m: thr[m][common[0]])
    high_winner = max(thr, key=lambda m: thr[m][common[-1]])
    if low_winner == high_winner:
        text = f"No crossover: {low_winner} leads from {fmt.pct(common[0])} to {fmt.pct(common[-1])} CPU"
        return Verdict(kind="crossover", text=text, figures={"modes": [low_winner], "between": None, "estimate": None})
    a, b = by[low_winner], by[high_winner]
    for lo, hi in itertools.pairwise(common):
        r_lo = log_ratio(_samples(a[lo]), _samples(b[lo]))
        r_hi = log_ratio(_samples(a[hi]), _samples(b[hi]))
        if r_lo.value >= 1 > r_hi.value:
            at = _interpolate(lo, hi, r_lo.value, r_hi.value)
            # The interpolated share moves with both log ratios: their intervals' ends give its range.
            early, late = _interpolate(lo, hi, r_lo.low, r_hi.low), _interpolate(lo, hi, r_lo.high, r_hi.high)
            text = (
                f"Crossover between {fmt.pct(lo)} and {fmt.pct(hi)} CPU: {low_winner} wins below it, {high_winner} "
                f"above; interpolated (log-linear between the two measured shares, not measured) at about "
                f"{fmt.pct(at)}, 95 % range {fmt.pct(early)}-{fmt.pct(late)}"
            )
            figures = {
                "modes": [low_winner, high_winner],
                "between": [lo, hi],
                "estimate": at,
                "range": [early, late],
                "interpolated": True,
            }
            return Verdict(kind="crossover", text=text, figures=figures)
    return None


def _interpolate(lo: float, hi: float, ratio_lo: float, ratio_hi: float) -> float:
    """Where the log ratio, linear between two measured shares, crosses 0; clipped to [lo, hi]."""
    if not (ratio_lo > 0 and ratio_hi > 0 and math.isfinite(ratio_lo) and math.isfinite(ratio_hi)):
        return hi if ratio_lo > 1 else lo
    l_lo, l_hi = math.log(ratio_lo), math.log(ratio_hi)
    if l_lo <= 0:
        return lo
    if l_hi >= 0:
        return hi
    return lo + (hi - lo) * l_lo / (l_lo - l_hi)


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


def main_slice(cells: list[Cell]) -> list[Cell]:
    """The cells of the most populated point of the axes (the one charts across mixes show):
    closed loop first, then the most workers and concurrency."""
    points = slices(cells)
    if not points:
        return []
    best = max(points, key=lambda p: (len(points[p]), p[2] == 0, p[0] or 0, p[1] or 0))
    return points[best]


def slices(cells: list[Cell]) -> dict[tuple[int | None, int | None, float], list[Cell]]:
    """The cells at each point of the (workers, concurrency, rate) axes."""
    out: dict[tuple[int | None, int | None, float], list[Cell]] = defaultdict(list)
    for cell in cells:
        out[cell.at()].append(cell)
    return out


def _capacity_verdicts(cells: list[Cell], slo_ms: float) -> list[Verdict]:
    """Per mix (and workers, concurrency): each executor's highest open-loop rate whose p99 meets
    the target, the jobs all done and the rate kept up with (throughput within 10 % of it)."""
    groups: dict[tuple[str, int | None, int | None], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        if cell.open_loop:
            groups[(cell.mix_name, cell.workers, cell.concurrency)][cell.mode].append(cell)
    out = []
    for (mix, workers, concurrency), modes in groups.items():
        best: dict[str, float | None] = {}
        for mode, cs in modes.items():
            meets = [c.rate_per_s or 0.0 for c in cs if meets_slo(c, slo_ms)]
            best[mode] = max(meets) if meets else None
        rates = sorted({c.rate_per_s or 0.0 for cs in modes.values() for c in cs})
        order = sorted(best, key=lambda m: best[m] or -1.0, reverse=True)
        met = [m for m in order if best[m] is not None]
        none = [m for m in order if best[m] is None]
        axes = (
            f"{workers} {fmt.plural(workers, 'worker')}" if len({c.workers for c in cells}) > 1 else "",
            f"concurrency {concurrency}" if len({c.concurrency for c in cells}) > 1 else "",
        )
        where = ", ".join(x for x in axes if x)
        text = f"At p99 <= {fmt.num(slo_ms)} ms on {mix}" + (f" ({where})" if where else "") + ": "
        if met:
            text += f"{met[0]} sustains {fmt.num(best[met[0]], 0)} jobs/s"
            text += "".join(f", {m} {fmt.num(best[m], 0)}" for m in met[1:])
        if none:
            text += ("; " if met else "") + f"{', '.join(none)} meet{'s' if len(none) == 1 else ''} it at none"
        text += f" of the rates tried ({', '.join(fmt.num(r, 0) for r in rates)} jobs/s)"
        figures = {"mix": mix, "workers": workers, "concurrency": concurrency, "slo_p99_ms": slo_ms, "sustained": best}
        out.append(Verdict(kind="capacity", text=text, figures=figures))
    return out


def meets_slo(cell: Cell, slo_ms: float) -> bool:
    s = cell.summary
    kept_up = s.throughput.mean >= 0.9 * (cell.rate_per_s or 0.0)
    return s.latency_ms.p99 <= slo_ms and s.jobs.done == s.jobs.submitted and kept_up


def sweep_verdicts(cells: list[Cell], slo_ms: float | None = None) -> list[Verdict]:
    groups: dict[tuple[str, int | None, int | None, float], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[(cell.mix_name, *cell.at())].append(cell)
    out = _mix_verdicts([g for g in groups.values() if len(g) >= 2], cells)
    for point in slices(cells).values():
        series = cpu_series(point)
        for extra in (_crossover(series), _loop_verdict(series)):
            if extra is not None:
                if len(slices(cells)) > 1:
                    extra = replace(extra, text=f"{extra.text} ({axes_label(point[0], cells)})")
                out.append(extra)
    fits = sc.scaling(cells)
    axes = len({(s.concurrency, s.rate_per_s) for s in fits}) > 1
    for s in fits:
        if s.note == sc.UNCHANGED:  # said in the report's scaling section; not a finding
            continue
        figures = {"mode": s.mode, "mix": s.mix_name, "concurrency": s.concurrency, "rate_per_s": s.rate_per_s}
        out.append(Verdict(kind="scaling", text=sc.usl_words(s, axes), figures=figures))
    if slo_ms is not None:
        out += _capacity_verdicts(cells, slo_ms)
    return out


def with_verdicts(doc: BenchResults) -> BenchResults:
    """The document with its scaling fits and verdicts drawn: the sweep's cells first, then each preset."""
    slo = doc.sweep.slo_p99_ms if doc.sweep is not None else None
    found = sweep_verdicts(doc.cells, slo) + (preset_verdicts(doc.presets) if doc.presets else [])
    fits = sc.scaling(doc.cells)
    return replace(doc, verdicts=found, scaling=fits or None)


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
    if presets.race is not None:
        from runner.report.presets import race_verdict

        found.append(Verdict(kind="preset", preset="race", text=race_verdict(presets.race)))
    return found
