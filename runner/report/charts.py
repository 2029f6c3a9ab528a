"""Charts of a sweep, as PNG bytes (matplotlib, Agg backend: no display needed).

Each chart function takes the results document and returns ``Chart`` or None when the sweep has
nothing to show for it (e.g. no CPU-share series).
"""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any, NamedTuple

from runner.extras import needs_extra

_SERIES_KINDS = frozenset({"sleep", "cpu"})
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


def _pyplot() -> Any:
    with needs_extra("report"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _series(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_mode: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in doc.get("cells", []):
        if set(cell["mix"]) <= _SERIES_KINDS:
            by_mode[cell["mode"]].append(cell)
    return {m: sorted(cs, key=lambda c: c["cpu_share"]) for m, cs in by_mode.items() if len(cs) >= 2}


def _colour(mode: str) -> str:
    return _COLOURS.get(mode, "#7f7f7f")


def crossover(doc: dict[str, Any]) -> Chart | None:
    series = _series(doc)
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for mode, cells in series.items():
        x = [100 * c["cpu_share"] for c in cells]
        y = [c["summary"]["throughput"]["mean"] for c in cells]
        err = [min(c["summary"]["throughput"]["half_width"], y_i * 0.999) for c, y_i in zip(cells, y, strict=True)]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=mode, color=_colour(mode))
    ax.set_yscale("log")
    ax.set_xlabel("CPU-bound share of jobs (%)")
    ax.set_ylabel("throughput (jobs/s, log scale)")
    ax.set_title("Throughput vs CPU share: where the lines cross, the best strategy changes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return Chart("crossover", "Throughput vs CPU share (95 % CI)", _png(fig))


def _grouped_bars(doc: dict[str, Any], value: Any, ylabel: str, title: str, log: bool) -> Any:
    cells = doc.get("cells", [])
    mixes = list(dict.fromkeys(c["mix_name"] for c in cells))
    modes = list(dict.fromkeys(c["mode"] for c in cells))
    table = {(c["mode"], c["mix_name"]): c for c in cells}
    plt = _pyplot()
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
        ax.bar(xs, ys, width=width, label=mode, color=_colour(mode))
    ax.set_xticks(range(len(mixes)), mixes, rotation=20)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend()
    return fig


def throughput_bars(doc: dict[str, Any]) -> Chart | None:
    if not doc.get("cells"):
        return None
    fig = _grouped_bars(
        doc, lambda c: c["summary"]["throughput"]["mean"], "jobs/s (log scale)", "Throughput per mix", log=True
    )
    return Chart("throughput", "Throughput per mix and executor", _png(fig))


def efficiency(doc: dict[str, Any]) -> Chart | None:
    if not any(c["summary"]["efficiency"] is not None for c in doc.get("cells", [])):
        return None
    fig = _grouped_bars(
        doc,
        lambda c: c["summary"]["efficiency"],
        "measured / bound",
        "Efficiency: how close each executor gets to its own limit",
        log=False,
    )
    fig.axes[0].axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    return Chart("efficiency", "Efficiency vs bound", _png(fig))


def _log_lines(ax: Any, series: dict[str, list[dict[str, Any]]], value: Any) -> None:
    """One line per executor of ``value(cell)`` against the CPU share, on a log scale."""
    for mode, cells in series.items():
        ax.plot(
            [100 * c["cpu_share"] for c in cells],
            [value(c) for c in cells],
            marker="o",
            label=mode,
            color=_colour(mode),
        )
    ax.set_yscale("log")
    ax.set_xlabel("CPU-bound share of jobs (%)")
    ax.grid(True, which="both", alpha=0.3)


def latency(doc: dict[str, Any]) -> Chart | None:
    series = _series(doc)
    if not series:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, pct in zip(axes, ("p50", "p99"), strict=True):
        _log_lines(ax, series, lambda c, pct=pct: max(c["summary"]["latency_ms"][pct], 0.001))
        ax.set_title(f"latency {pct}")
    axes[0].set_ylabel("ms from hand-off to result (log scale)")
    axes[0].legend()
    return Chart("latency", "Latency percentiles vs CPU share", _png(fig))


def loop_lag(doc: dict[str, Any]) -> Chart | None:
    series = _series(doc)
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4))
    _log_lines(ax, series, lambda c: max(c["summary"]["loop_lag_p99_ms"]["mean"], 0.01))
    ax.set_ylabel("event-loop lag p99 (ms, log scale)")
    ax.set_title("How late the coordinator's event loop runs (in async mode: the jobs' loop)")
    ax.legend()
    return Chart("loop_lag", "Event-loop lag p99 vs CPU share", _png(fig))


def sweep_charts(doc: dict[str, Any]) -> list[Chart]:
    made = (crossover(doc), throughput_bars(doc), latency(doc), efficiency(doc), loop_lag(doc))
    return [chart for chart in made if chart is not None]
