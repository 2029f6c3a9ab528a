"""The report sections of ``runner bench --preset``: Markdown and one chart per preset.

Each section says what was measured, shows our figures in a small table with the seed article's
figure beside them, and ends with the verdict. Works from the results document alone (see
``runner.experiments.presets``), so ``runner report`` can re-render it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

from runner.extras import needs_extra

_TITLES = {
    "requests": "Preset `requests`: three slow HTTP calls, one after another or at once",
    "spawn": "Preset `spawn`: what a coroutine, a thread and a process cost to create",
    "blocking": "Preset `blocking`: CPU work inside a coroutine blocks the event loop",
}
_UNIT_LABELS = {
    "coroutine": "coroutine (asyncio task)",
    "thread": "thread",
    "process": "process (fork)",
    "process-spawn": "process (spawn)",
}


def _pm(est: dict[str, Any], digits: int = 2, scale: float = 1.0) -> str:
    half = est.get("half_width")
    spread = "?" if half is None or not math.isfinite(half) else f"{half * scale:,.{digits}f}"
    return f"{est['mean'] * scale:,.{digits}f} ± {spread}"


def fmt_time_us(us: float) -> str:
    if us >= 1_000_000:
        return f"{us / 1e6:,.2f} s"
    return f"{us / 1000:,.2f} ms" if us >= 1000 else f"{us:,.2f} µs"


def fmt_kib(kib: float) -> str:
    if kib >= 1024**2:
        return f"{kib / 1024**2:,.2f} GiB"
    return f"{kib / 1024:,.2f} MiB" if kib >= 1024 else f"{kib:,.2f} KiB"


def fmt_mib(mib: float) -> str:
    if mib >= 1024**2:
        return f"{mib / 1024**2:,.1f} TiB"
    return f"{mib / 1024:,.1f} GiB" if mib >= 10 * 1024 else f"{mib:,.0f} MiB"


def _verdict(doc: dict[str, Any], name: str) -> str:
    for verdict in doc.get("verdicts", []):
        if verdict.get("kind") == "preset" and verdict.get("preset") == name:
            return str(verdict["text"])
    return ""


def _requests_md(fig: dict[str, Any]) -> list[str]:
    plan, art = fig["plan"], fig["article"]
    call_s = plan["call_ms"] / 1000
    lines = [
        f"{plan['calls']} GETs of `/delay/{plan['call_ms']:g}` ({call_s:g} s each) against the {fig['target']}, sent "
        f"through runner's own executors; {plan['repeats']} interleaved repeats after a warm-up kept apart. "
        "Times are the wall time for all calls (mean ± 95 % interval).",
        "",
        "| variant | how | wall s | ideal s | vs sequential |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, v in fig["variants"].items():
        rel = fig["ratios"].get(name)
        rel_text = f"{rel['vs_sequential']:.3f}x ± {rel['half_width']:.3f}" if rel else "1x"
        lines.append(f"| {name} | {v['what']} | {_pm(v['wall_s'], 3)} | {v['ideal_s']:g} | {rel_text} |")
    lines += [
        "",
        f"The article ({art['calls']} calls of {art['call_s']:g} s to {art['where']}): {art['sequential_s']:.1f} s one "
        f"after another with `requests`, {art['gevent_s']:.1f} s with gevent, {art['asyncio_s']:.1f} s with aiohttp "
        f"-- {art['sequential_s'] / art['call_s']:.1f}, {art['gevent_s'] / art['call_s']:.1f} and "
        f"{art['asyncio_s'] / art['call_s']:.1f} times one call's delay. Ours: "
        + ", ".join(f"{name} {v['wall_s']['mean'] / call_s:.2f}" for name, v in fig["variants"].items())
        + " times one call's delay; a local target adds almost no network time.",
    ]
    return lines


def _spawn_md(fig: dict[str, Any]) -> list[str]:
    art = fig["article"]
    lines = [
        "N units of each kind are created in a fresh interpreter and kept alive while memory is read (coroutines "
        "as pending tasks on uvloop, threads waiting on an event, processes until each child reports in). Memory "
        "is the growth of the process's RSS; for processes, the sum of the children's USS plus the parent's "
        f"growth. Per-unit figures are means ± 95 % interval over {fig['plan']['repeats']} repeats. The million "
        "columns are linear extrapolations from N, not measurements.",
        "",
        "| unit | N | time per unit | memory per unit | 1 M: time (extrapolated) | 1 M: memory (extrapolated) "
        "| article, 1 M |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for kind, k in fig["kinds"].items():
        t, m = k["time_per_unit_us"], k["memory_per_unit_kib"]
        a = art.get(kind)
        if a is None:
            article = "--"
        elif kind == "process":
            article = f"{a['time_s']} s for {a['n']:,}; {a['million_s']:.0f} s extrapolated; memory not measured"
        else:
            article = f"{a['time_s']:.1f} s, {a['memory_mib']:,.0f} MB"
        per_unit = f"{fmt_time_us(t['mean'])} ± {fmt_time_us(t['half_width'])} | {fmt_kib(m['mean'])} ± "
        per_unit += fmt_kib(m["half_width"])
        million = f"{k['million']['time_s']:,.1f} s | {fmt_mib(k['million']['memory_mib'])}"
        lines.append(f"| {_UNIT_LABELS.get(kind, kind)} | {k['n']:,} | {per_unit} | {million} | {article} |")
    order = fig["order_holds"]
    lines += [
        "",
        f"Order coroutine < thread < process (fork): time {'holds' if order['time'] else 'does NOT hold'}, "
        f"memory {'holds' if order['memory'] else 'does NOT hold'}. `process (spawn)` starts a fresh interpreter per "
        "process, as runner's process pool does; it is shown beside the order, not in it. The article's threads "
        "ended as soon as they started, so its thread memory counts mostly finished threads; ours are all alive.",
    ]
    return lines


def _blocking_md(fig: dict[str, Any]) -> list[str]:
    plan = fig["plan"]
    lines = [
        f"{plan['jobs']} pure-Python CPU jobs of {plan['cpu_ms']:g} ms each, {fig['in_flight']} in flight, on a uvloop "
        f"event loop, while {plan['probes']} HTTP probes ({fig['probe']}) run back to back and a 10 ms timer "
        "measures loop lag. Inline, the job runs in the "
        f"coroutine; offloaded, `run_in_executor` sends it to a {fig['workers']}-process pool (one core left to the "
        f"loop). Means ± 95 % interval over {plan['repeats']} repeats.",
        "",
        "| CPU job runs | loop lag p99 ms | probe p50 ms | probe p99 ms | CPU job p50 ms | CPU jobs/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode, m in fig["modes"].items():
        lines.append(
            f"| {mode} | {_pm(m['loop_lag_p99_ms'], 1)} | {_pm(m['probe_p50_ms'], 1)} "
            f"| {_pm(m['probe_p99_ms'], 1)} | {_pm(m['job_ms_p50'], 1)} | {_pm(m['jobs_per_s'], 1)} |"
        )
    lines += [
        "",
        "The article says so without a figure: a CPU-bound coroutine blocks the event loop, and CPU work belongs "
        f"in a process pool. A probe asks the target to wait {plan['probe_ms']:g} ms: that is its floor.",
    ]
    return lines


_SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "requests": _requests_md,
    "spawn": _spawn_md,
    "blocking": _blocking_md,
}


def markdown(doc: dict[str, Any]) -> str:
    """One ``## `` section per preset in the document, in the order they ran."""
    out: list[str] = []
    for name, fig in doc.get("presets", {}).items():
        if name not in _SECTIONS:
            continue
        out += [f"## {_TITLES[name]}", "", *_SECTIONS[name](fig), ""]
        verdict = _verdict(doc, name)
        if verdict:
            out += [f"**Verdict:** {verdict}", ""]
    return "\n".join(out)


# --- charts ------------------------------------------------------------------------------------


def _err(est: dict[str, Any], scale: float = 1.0) -> float:
    half = est.get("half_width")
    return 0.0 if half is None or not math.isfinite(half) else half * scale


def _errs(ests: list[dict[str, Any]], scale: float = 1.0) -> list[list[float]]:
    """Asymmetric error bars, the lower arm stopped short of zero (a bar cannot show a negative cost)."""
    highs = [_err(e, scale) for e in ests]
    lows = [min(h, 0.95 * e["mean"] * scale) for h, e in zip(highs, ests, strict=True)]
    return [lows, highs]


def _requests_chart(plt: Any, fig: dict[str, Any]) -> Any:
    call_s = fig["plan"]["call_ms"] / 1000
    art = fig["article"]
    names = list(fig["variants"])
    ours = [fig["variants"][n]["wall_s"]["mean"] / call_s for n in names]
    errs = _errs([fig["variants"][n]["wall_s"] for n in names], 1 / call_s)
    art_values = {"sequential": art["sequential_s"] / art["call_s"], "coroutines": art["asyncio_s"] / art["call_s"]}
    figure, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(names))
    bars = ax.bar([x - 0.2 for x in xs], ours, 0.4, yerr=errs, capsize=4, label=f"this machine ({call_s:g} s calls)")
    seconds = [f"{fig['variants'][n]['wall_s']['mean']:.2f} s" for n in names]
    ax.bar_label(bars, seconds, padding=3, fontsize=8)
    art_names = [n for n in names if n in art_values]
    art_bars = ax.bar(
        [names.index(n) + 0.2 for n in art_names],
        [art_values[n] for n in art_names],
        0.4,
        label="the article (3 s calls; coroutines: aiohttp)",
    )
    ax.bar_label(art_bars, [f"{art_values[n] * art['call_s']:.1f} s" for n in art_names], padding=3, fontsize=8)
    ax.set_ylim(0, max([*ours, *art_values.values()]) * 1.15)
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("wall time / one call's delay")
    ax.axhline(1, color="grey", linestyle=":", linewidth=1)
    ax.axhline(fig["plan"]["calls"], color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"{fig['plan']['calls']} HTTP calls: one after another vs at once")
    ax.legend(fontsize=8)
    return figure


def _spawn_chart(plt: Any, fig: dict[str, Any]) -> Any:
    kinds = list(fig["kinds"])
    art = fig["article"]
    art_time = {k: a["time_s"] / a["n"] * 1e6 for k, a in art.items()}
    art_mem = {k: a["memory_mib"] * 1024 / a["n"] for k, a in art.items() if a.get("memory_mib")}
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    labels = [_UNIT_LABELS.get(k, k).replace(" (", "\n(") for k in kinds]
    for ax, key, title, art_values in (
        (left, "time_per_unit_us", "creation time per unit (µs, log)", art_time),
        (right, "memory_per_unit_kib", "memory per unit (KiB, log)", art_mem),
    ):
        values = [fig["kinds"][k][key]["mean"] for k in kinds]
        errs = _errs([fig["kinds"][k][key] for k in kinds])
        ax.bar(range(len(kinds)), values, yerr=errs, capsize=4, color="#4c72b0", label="this machine")
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
    return figure


def _blocking_chart(plt: Any, fig: dict[str, Any]) -> Any:
    modes = list(fig["modes"])
    metrics = (("loop_lag_p99_ms", "loop lag p99"), ("probe_p99_ms", "HTTP probe p99"))
    figure, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(modes)
    colors = {"inline": "#c44e52", "offloaded": "#55a868"}
    for i, mode in enumerate(modes):
        m = fig["modes"][mode]
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(metrics))]
        ax.bar(
            xs,
            [m[k]["mean"] for k, _ in metrics],
            width,
            yerr=_errs([m[k] for k, _ in metrics]),
            capsize=4,
            label=f"CPU job {mode}",
            color=colors.get(mode),
        )
    ax.set_xticks(range(len(metrics)), [label for _, label in metrics])
    ax.set_ylabel("ms")
    ax.set_title(f"{fig['plan']['cpu_ms']:g} ms CPU jobs: inline in the loop vs in a process pool")
    ax.legend(fontsize=8)
    return figure


_CHARTS: dict[str, tuple[str, Callable[[Any, dict[str, Any]], Any]]] = {
    "requests": ("Preset requests: sequential vs concurrent HTTP calls", _requests_chart),
    "spawn": ("Preset spawn: creation cost per coroutine, thread and process", _spawn_chart),
    "blocking": ("Preset blocking: event-loop lag with CPU work inline vs offloaded", _blocking_chart),
}


def charts(doc: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(title, PNG bytes), one chart per preset in the document."""
    with needs_extra("report"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    out: list[tuple[str, bytes]] = []
    for name, fig in doc.get("presets", {}).items():
        if name not in _CHARTS:
            continue
        title, draw = _CHARTS[name]
        figure = draw(plt, fig)
        try:
            figure.tight_layout()
            buf = io.BytesIO()
            figure.savefig(buf, format="png", dpi=110)
        finally:
            plt.close(figure)
        out.append((title, buf.getvalue()))
    return out
