"""Charts of curves: throughput vs workers per executor (with the ideal line, the bound and the
fitted scalability model), throughput and p99 vs concurrency (with the knee), and each executor's
runs over time. Titles and the words beside them come from ``runner.report.scaling``."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from runner.engine.results import BenchResults, Cell, Scaling
from runner.report import scaling as sc
from runner.report.charts import Chart, colour, png, pyplot
from runner.report.verdicts import axes_label

_MAX_LINES = 8  # per time-series panel: more lines than this are unreadable


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def fits(doc: BenchResults) -> list[Scaling]:
    """The document's scaling fits (computed for files written before they were kept)."""
    return doc.scaling if doc.scaling is not None else sc.scaling(doc.cells)


def scaling_charts(doc: BenchResults) -> list[Chart]:
    """Per mix (and concurrency, rate): one panel per executor with the measured points, the ideal
    linear line from the fewest workers, the bound and the fitted USL curve where it fits."""
    groups: dict[tuple[str, int | None, float], list[Scaling]] = defaultdict(list)
    for s in fits(doc):
        groups[(s.mix_name, s.concurrency, s.rate_per_s)].append(s)
    out = []
    for (mix, concurrency, rate), series in groups.items():
        plt = pyplot()
        cols = min(3, len(series))
        rows = (len(series) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        for ax in axes.flat[len(series) :]:
            ax.set_visible(False)
        for ax, s in zip(axes.flat, series, strict=False):
            _scaling_panel(ax, s)
        where = f", concurrency {concurrency}" if concurrency else ""
        where += f", {rate:g} jobs/s offered" if rate else ""
        fig.suptitle(f"Throughput vs workers on {mix}{where}")
        fig.tight_layout()
        name = f"scaling_{slug(mix)}" + (f"_c{concurrency}" if concurrency else "") + (f"_r{rate:g}" if rate else "")
        out.append(Chart(name, f"Throughput vs workers on {mix}{where}", png(fig)))
    return out


def _scaling_panel(ax: Any, s: Scaling) -> None:
    import numpy as np

    n = [p.workers for p in s.points]
    x = [p.jobs_per_s for p in s.points]
    err = [min(p.half_width, 0.999 * p.jobs_per_s) if p.half_width < float("inf") else 0.0 for p in s.points]
    grid = np.linspace(min(n), max(n) * 1.25, 100)
    ax.errorbar(n, x, yerr=err, fmt="o", capsize=3, color=colour(s.mode), label="measured")
    per_worker = x[0] / n[0] if n[0] else 0.0
    ax.plot(grid, per_worker * grid, linestyle=":", color="grey", label="ideal (linear)")
    bounds = [(p.workers, p.bound) for p in s.points if p.bound is not None]
    if bounds:
        xs, ys = [b[0] for b in bounds], [b[1] for b in bounds]
        ax.plot(xs, ys, linestyle="--", color="black", linewidth=0.8, label="bound")
    if sc.good_fit(s) and s.usl is not None:
        u = s.usl
        curve = [sc.usl_model(v, u.lambda_, u.sigma, u.kappa) for v in grid]
        ax.plot(grid, curve, color=colour(s.mode), label=f"USL fit (R² {u.r2:.2f})")
    ax.set_title(s.mode, fontsize=10)
    ax.set_xlabel("workers")
    ax.set_ylabel("jobs/s")
    top = max(x) * 1.3
    if bounds:  # the bound when it is near enough to the points to share their scale
        top = max(top, min(max(b[1] for b in bounds), 3 * max(x)) * 1.1)
    ax.set_ylim(bottom=0, top=top)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def concurrency_charts(doc: BenchResults) -> list[Chart]:
    """Per mix (and workers): throughput (left) and p99 (right) vs concurrency per executor; the
    knee of each executor is named in the Markdown beside it."""
    out = []
    for (mix, workers, _rate), modes in sc.concurrency_series(doc.cells).items():
        plt = pyplot()
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        for mode, cells in modes.items():
            c = [cell.concurrency for cell in cells]
            left.plot(c, [cell.summary.throughput.mean for cell in cells], marker="o", color=colour(mode), label=mode)
            right.plot(c, [max(cell.summary.latency_ms.p99, 0.001) for cell in cells], marker="o", color=colour(mode))
            found = sc.knee_step(cells)
            if found is not None:  # the knee, where the words beside the chart put it
                for ax in (left, right):
                    ax.axvline(found[0].concurrency or 1, color=colour(mode), linestyle=":", linewidth=1)
        ticks = sorted({cell.concurrency or 1 for cells in modes.values() for cell in cells})
        for ax, label in ((left, "throughput (jobs/s)"), (right, "latency p99 (ms, log)")):
            ax.set_xscale("log")
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("jobs in flight (concurrency, log)")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
        right.set_yscale("log")
        left.legend(fontsize=8)
        where = f", {workers} workers" if workers else ""
        fig.suptitle(f"Throughput and p99 vs concurrency on {mix}{where} (closed loop)")
        fig.tight_layout()
        name = f"concurrency_{slug(mix)}" + (f"_w{workers}" if workers else "")
        out.append(Chart(name, f"Throughput and p99 vs concurrency on {mix}{where}", png(fig)))
    return out


def timeseries_charts(doc: BenchResults) -> list[Chart]:
    """Per executor: jobs/s and p99 over the run, one line per cell (its first repeat), so a
    warm-up transient or a stall shows."""
    by_mode: dict[str, list[Cell]] = defaultdict(list)
    for cell in doc.cells:
        if cell.repeats and cell.repeats[0].timeseries:
            by_mode[cell.mode].append(cell)
    out = []
    for mode, cells in by_mode.items():
        plt = pyplot()
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
        for cell in cells[:_MAX_LINES]:
            series = cell.repeats[0].timeseries or []
            where = axes_label(cell, doc.cells)
            label = cell.mix_name + (f" ({where})" if where else "")
            t = [b.t_s for b in series]
            top.plot(t, [b.jobs_per_s for b in series], marker=".", label=label)
            p99 = [(b.t_s, b.p99_ms) for b in series if b.p99_ms is not None]
            bottom.plot([p[0] for p in p99], [max(p[1], 0.001) for p in p99], marker=".")
        top.set_ylabel("jobs/s")
        bottom.set_ylabel("p99 (ms, log)")
        bottom.set_yscale("log")
        bottom.set_xlabel("seconds into the run (first repeat of each cell)")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
        top.legend(fontsize=7, ncol=2)
        more = f" (first {_MAX_LINES} of {len(cells)} cells)" if len(cells) > _MAX_LINES else ""
        fig.suptitle(f"{mode}: throughput and p99 over each run{more}")
        fig.tight_layout()
        out.append(Chart(f"timeseries_{slug(mode)}", f"{mode}: runs over time", png(fig)))
    return out


def rate_charts(doc: BenchResults) -> list[Chart]:
    """Per mix (and workers, concurrency) of an open-loop sweep: p99 from intended start against
    the offered rate per executor, with the p99 target when one was set."""
    groups: dict[tuple[str, int | None, int | None], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for cell in doc.cells:
        if cell.open_loop:
            groups[(cell.mix_name, cell.workers, cell.concurrency)][cell.mode].append(cell)
    slo = doc.sweep.slo_p99_ms if doc.sweep is not None else None
    out = []
    for (mix, workers, concurrency), modes in groups.items():
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7.5, 4))
        for mode, cells in modes.items():
            cells.sort(key=lambda c: c.rate_per_s or 0.0)
            rates = [c.rate_per_s or 0.0 for c in cells]
            p99 = [max(c.summary.latency_ms.p99, 0.001) for c in cells]
            ax.plot(rates, p99, marker="o", color=colour(mode), label=mode)
        if slo is not None:
            ax.axhline(slo, color="black", linestyle="--", linewidth=0.8, label=f"p99 target {slo:g} ms")
        ax.set_yscale("log")
        ax.set_xlabel("offered rate (jobs/s, open loop)")
        ax.set_ylabel("p99 from intended start (ms, log)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Latency vs offered load on {mix}")
        name = f"rate_{slug(mix)}" + (f"_w{workers}" if workers else "") + (f"_c{concurrency}" if concurrency else "")
        out.append(Chart(name, f"p99 vs offered rate on {mix}", png(fig)))
    return out


def curve_charts(doc: BenchResults) -> list[Chart]:
    if not doc.cells:
        return []
    return scaling_charts(doc) + concurrency_charts(doc) + rate_charts(doc) + timeseries_charts(doc)
