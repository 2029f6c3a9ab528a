"""Charts of a results document, as PNG bytes (matplotlib, Agg backend: no display needed).

One chart type, ``Chart``: each function takes the typed results and returns a ``Chart`` or None
when there is nothing to show for it (e.g. no CPU-share series). ``charts(doc)`` makes them all:
the sweep's, then one per preset.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from runner.engine.preset_results import BlockingFigure, BlockingMode, RequestsFigure, SpawnFigure
from runner.engine.results import BenchResults, Cell
from runner.engine.stats import Interval
from runner.extras import needs_extra
from runner.report.verdicts import cpu_series, main_slice

_COLOURS = {
    "async": "#1f77b4",
    "thread": "#ff7f0e",
    "process": "#2ca02c",
    "celery": "#d62728",
    "hybrid": "#9467bd",
    "gevent": "#8c564b",
}


class Chart(NamedTuple):
    name: str  # file stem
    title: str
    png: bytes


def pyplot() -> Any:
    with needs_extra("report"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    return buffer.getvalue()


def at_point(doc: BenchResults) -> str:
    """Charts across mixes show one point of the sweep axes; this names it when there are several."""
    from runner.report.verdicts import axes_label, slices

    if len(slices(doc.cells)) < 2:
        return ""
    return f"\n(at {axes_label(main_slice(doc.cells)[0], doc.cells)}; other points in the tables)"


def colour(mode: str) -> str:
    return _COLOURS.get(mode, "#7f7f7f")


def crossover(doc: BenchResults) -> Chart | None:
    series = cpu_series(main_slice(doc.cells))
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for mode, cells in series.items():
        x = [100 * c.cpu_share for c in cells]
        y = [c.summary.throughput.mean for c in cells]
        err = [min(c.summary.throughput.half_width, y_i * 0.999) for c, y_i in zip(cells, y, strict=True)]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=mode, color=colour(mode))
    ax.set_yscale("log")
    ax.set_xlabel("CPU-bound share of jobs (%)")
    ax.set_ylabel("throughput (jobs/s, log scale)")
    ax.set_title("Throughput vs CPU share: where the lines cross, the best strategy changes" + at_point(doc))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return Chart("crossover", "Throughput vs CPU share (95 % CI)", png(fig))


def _grouped_bars(doc: BenchResults, value: Callable[[Cell], float | None], ylabel: str, title: str, log: bool) -> Any:
    cells = main_slice(doc.cells)
    mixes = list(dict.fromkeys(c.mix_name for c in cells))
    modes = list(dict.fromkeys(c.mode for c in cells))
    table = {(c.mode, c.mix_name): c for c in cells}
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(7.5, 1.1 * len(mixes) + 2), 4.2))
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        xs, ys = [], []
        for j, mix in enumerate(mixes):
            cell = table.get((mode, mix))
            v = value(cell) if cell else None
            if v is not None:
                xs.append(j + (i - (len(modes) - 1) / 2) * width)
                ys.append(v)
        ax.bar(xs, ys, width=width, label=mode, color=colour(mode))
    ax.set_xticks(range(len(mixes)), mixes, rotation=20)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title + at_point(doc))
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend()
    return fig


def throughput_bars(doc: BenchResults) -> Chart | None:
    if not doc.cells:
        return None
    fig = _grouped_bars(doc, lambda c: c.summary.throughput.mean, "jobs/s (log scale)", "Throughput per mix", log=True)
    return Chart("throughput", "Throughput per mix and executor", png(fig))


def efficiency(doc: BenchResults) -> Chart | None:
    if not any(c.summary.efficiency is not None for c in doc.cells):
        return None
    from runner.report.noise import over_bound

    fig = _grouped_bars(
        doc,
        lambda c: None if over_bound(c) else c.summary.efficiency,  # not a figure: a calibration/bound problem
        "measured / bound",
        "Efficiency: how close each executor gets to its own limit\n(cells above 105 % of their bound left out)",
        log=False,
    )
    fig.axes[0].axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    return Chart("efficiency", "Efficiency vs bound", png(fig))


def _log_lines(ax: Any, series: dict[str, list[Cell]], value: Callable[[Cell], float]) -> None:
    """One line per executor of ``value(cell)`` against the CPU share, on a log scale."""
    for mode, cells in series.items():
        ax.plot(
            [100 * c.cpu_share for c in cells],
            [value(c) for c in cells],
            marker="o",
            label=mode,
            color=colour(mode),
        )
    ax.set_yscale("log")
    ax.set_xlabel("CPU-bound share of jobs (%)")
    ax.grid(True, which="both", alpha=0.3)


def latency(doc: BenchResults) -> Chart | None:
    series = cpu_series(main_slice(doc.cells))
    if not series:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, pct in zip(axes, ("p50", "p99"), strict=True):
        _log_lines(ax, series, _latency_at(pct))
        ax.set_title(f"latency {pct}{at_point(doc)}")
    axes[0].set_ylabel("ms from hand-off to result (log scale)")
    axes[0].legend()
    return Chart("latency", "Latency percentiles vs CPU share", png(fig))


def _latency_at(pct: str) -> Callable[[Cell], float]:
    def value(cell: Cell) -> float:
        figures = cell.summary.latency_ms
        return max(figures.p50 if pct == "p50" else figures.p99, 0.001)

    return value


def loop_lag(doc: BenchResults) -> Chart | None:
    series = cpu_series(main_slice(doc.cells))
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    _log_lines(ax, series, lambda c: max(c.summary.loop_lag_p99_ms.mean, 0.01))
    ax.set_ylabel("event-loop lag p99 (ms, log scale)")
    ax.set_title("How late the coordinator's event loop runs (in async mode: the jobs' loop)" + at_point(doc))
    ax.legend()
    return Chart("loop_lag", "Event-loop lag p99 vs CPU share", png(fig))


def charts(doc: BenchResults) -> list[Chart]:
    """Every chart the document has figures for: the sweep's, then one per preset."""
    from runner.report.curves import curve_charts

    made = (crossover(doc), throughput_bars(doc), latency(doc), efficiency(doc), loop_lag(doc))
    return [chart for chart in made if chart is not None] + curve_charts(doc) + preset_charts(doc)


# --- presets: our figures beside the article's ----------------------------------------------

_UNIT_LABELS = {
    "process": "process\n(fork)",
    "process-spawn": "process\n(spawn)",
    "coroutine": "coroutine\n(asyncio task)",
}


def _errs(ests: list[Interval], scale: float = 1.0) -> list[list[float]]:
    """Asymmetric error bars, the lower arm stopped short of zero (a bar cannot show a negative cost)."""
    highs = [e.half_width * scale if math.isfinite(e.half_width) else 0.0 for e in ests]
    lows = [min(h, 0.95 * e.mean * scale) for h, e in zip(highs, ests, strict=True)]
    return [lows, highs]


def requests_chart(fig: RequestsFigure) -> Chart:
    plt = pyplot()
    call_s = fig.plan.call_ms / 1000
    art = fig.article
    names = list(fig.variants)
    walls = [fig.variants[n].wall_s for n in names]
    ours = [w.mean / call_s for w in walls]
    art_values = {"sequential": art.sequential_s / art.call_s, "coroutines": art.asyncio_s / art.call_s}
    figure, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(names))
    bars = ax.bar(
        [x - 0.2 for x in xs],
        ours,
        0.4,
        yerr=_errs(walls, 1 / call_s),
        capsize=4,
        label=f"this machine ({call_s:g} s calls)",
    )
    ax.bar_label(bars, [f"{w.mean:.2f} s" for w in walls], padding=3, fontsize=8)
    art_names = [n for n in names if n in art_values]
    art_bars = ax.bar(
        [names.index(n) + 0.2 for n in art_names],
        [art_values[n] for n in art_names],
        0.4,
        label="the article (3 s calls; coroutines: aiohttp)",
    )
    ax.bar_label(art_bars, [f"{art_values[n] * art.call_s:.1f} s" for n in art_names], padding=3, fontsize=8)
    ax.set_ylim(0, max([*ours, *art_values.values()]) * 1.15)
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("wall time / one call's delay")
    ax.axhline(1, color="grey", linestyle=":", linewidth=1)
    ax.axhline(fig.plan.calls, color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"{fig.plan.calls} HTTP calls: one after another vs at once")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return Chart("preset_requests", "Preset requests: sequential vs concurrent HTTP calls", png(figure))


def spawn_chart(fig: SpawnFigure) -> Chart:
    plt = pyplot()
    kinds = list(fig.kinds)
    art_time = {k: a.time_s / a.n * 1e6 for k, a in fig.article.items()}
    art_mem = {k: a.memory_mib * 1024 / a.n for k, a in fig.article.items() if a.memory_mib}
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    labels = [_UNIT_LABELS.get(k, k) for k in kinds]
    for ax, ests, title, art_values in (
        (left, [fig.kinds[k].time_per_unit_us for k in kinds], "creation time per unit (µs, log)", art_time),
        (right, [fig.kinds[k].memory_per_unit_kib for k in kinds], "memory per unit (KiB, log)", art_mem),
    ):
        values = [e.mean for e in ests]
        ax.bar(range(len(kinds)), values, yerr=_errs(ests), capsize=4, color="#4c72b0", label="this machine")
        points = [(i, art_values[k]) for i, k in enumerate(kinds) if k in art_values]
        if points:
            ax.scatter(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="D",
                color="#dd8452",
                zorder=3,
                label="the article",
            )
        ax.set_yscale("log")
        ax.set_xticks(range(len(kinds)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    figure.suptitle("Creating coroutines, threads and processes: cost per unit")
    figure.tight_layout()
    return Chart("preset_spawn", "Preset spawn: creation cost per coroutine, thread and process", png(figure))


def blocking_chart(fig: BlockingFigure) -> Chart:
    plt = pyplot()
    modes = list(fig.modes)
    metrics: tuple[tuple[str, Callable[[BlockingMode], Interval]], ...] = (
        ("loop lag p99", lambda m: m.loop_lag_p99_ms),
        ("HTTP probe p99", lambda m: m.probe_p99_ms),
    )
    figure, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(modes)
    colors = {"inline": "#c44e52", "offloaded": "#55a868"}
    for i, mode in enumerate(modes):
        ests: list[Interval] = [pick(fig.modes[mode]) for _, pick in metrics]
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(metrics))]
        ax.bar(
            xs,
            [e.mean for e in ests],
            width,
            yerr=_errs(ests),
            capsize=4,
            label=f"CPU job {mode}",
            color=colors.get(mode),
        )
    ax.set_xticks(range(len(metrics)), [label for label, _ in metrics])
    ax.set_ylabel("ms")
    ax.set_title(f"{fig.plan.cpu_ms:g} ms CPU jobs: inline in the loop vs in a process pool")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return Chart("preset_blocking", "Preset blocking: event-loop lag with CPU work inline vs offloaded", png(figure))


def preset_charts(doc: BenchResults) -> list[Chart]:
    """One chart per preset in the document, in the order they ran."""
    p = doc.presets
    if p is None:
        return []
    made = (
        requests_chart(p.requests) if p.requests else None,
        spawn_chart(p.spawn) if p.spawn else None,
        blocking_chart(p.blocking) if p.blocking else None,
    )
    return [chart for chart in made if chart is not None]
