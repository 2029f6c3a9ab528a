"""Reports of a results file: ``report.md`` (charts as PNG files beside it), a self-contained
``report.html`` (the same text, charts embedded as data URIs, no network needed to view it) and
``summary.csv`` (one row per cell).

The Markdown is the single source: the HTML is rendered from it (python-markdown), so the two can
never say different things.
"""

from __future__ import annotations

import base64
import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from runner.extras import needs_extra
from runner.report.charts import Chart, sweep_charts
from workers.errors import InputError

SUPPORTED_SCHEMA = 1
_ARTICLE = (
    "The seed article measured: three 3 s HTTP calls took 11.4 s one after another, 4.1 s with gevent "
    "and 4.9 s with asyncio; creating a million coroutines took 6.8 s and 1,112 MB, a million threads "
    "43.6 s and 2,661 MB, and 1,000 processes 0.379 s (extrapolated: 379 s for a million)."
)


def load_results(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a results file (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "runner-bench":
        raise InputError(f'{path} is not a results file of `runner bench` (no "kind": "runner-bench")')
    if doc.get("schema_version") != SUPPORTED_SCHEMA:
        raise InputError(
            f"{path} has schema_version {doc.get('schema_version')!r}; this runner reads {SUPPORTED_SCHEMA}"
        )
    return doc


def write_report(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = sweep_charts(doc) + _preset_charts(doc)
    chart_dir = out_dir / "charts"
    if charts:
        chart_dir.mkdir(exist_ok=True)
        for chart in charts:
            (chart_dir / f"{chart.name}.png").write_bytes(chart.png)
    md = out_dir / "report.md"
    md.write_text(markdown_report(doc, {c.name: f"charts/{c.name}.png" for c in charts}, charts))
    html = out_dir / "report.html"
    html.write_text(html_report(doc, charts))
    written = [md, html]
    if doc.get("cells"):
        written.append(write_csv(doc, out_dir / "summary.csv"))
    return written


def _preset_charts(doc: dict[str, Any]) -> list[Chart]:
    if not doc.get("presets"):
        return []
    from runner.report.presets import charts

    return [Chart(f"preset_{i}", title, png) for i, (title, png) in enumerate(charts(doc))]


# --- Markdown ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _grid(doc: dict[str, Any], value: Any) -> str:
    """A mixes x modes table of one figure per cell."""
    cells = doc["cells"]
    modes = list(dict.fromkeys(c["mode"] for c in cells))
    by = {(c["mix_name"], c["mode"]): c for c in cells}
    rows = []
    for mix in dict.fromkeys(c["mix_name"] for c in cells):
        rows.append([mix] + [value(by[(mix, m)]) if (mix, m) in by else "-" for m in modes])
    return _table(["mix", *modes], rows)


def _machine_line(doc: dict[str, Any]) -> str:
    m = doc.get("machine", {})
    return (
        f"{m.get('cpus', '?')} cores ({m.get('cpu_model', '?')}), {m.get('memory_gb', '?')} GB, {m.get('os', '?')}, "
        f"Python {m.get('python', '?')}, runner {doc.get('runner_version', '?')}"
        + (f" at {m['git_commit']}" if m.get("git_commit") else "")
    )


def _sweep_sections(doc: dict[str, Any], images: dict[str, str]) -> list[str]:
    sweep = doc["sweep"]
    out = [
        "## Sweep\n",
        f"{len(sweep['modes'])} executors x {len(sweep['mixes'])} mixes, {sweep['repeats']} measured repeats per cell "
        f"in shuffled order after one warm-up run per executor (kept apart). Jobs wait {sweep['io_ms']:g} ms of I/O "
        f"and/or burn {sweep['cpu_ms']:g} ms of CPU; {sweep['concurrency']} in flight; {sweep['workers']} process-pool "
        f"workers; each run sized to about {sweep['run_s']:g} s at the executor's bound "
        f"({sweep['min_jobs']}..{sweep['max_jobs']} jobs). Intervals are 95 % confidence intervals of the mean.\n",
    ]
    if "crossover" in images:
        out.append(f"![Throughput vs CPU share]({images['crossover']})\n")
    out += [
        "## Throughput (jobs/s, mean +/- 95 % CI)\n",
        _grid(
            doc,
            lambda c: (
                f"{_fmt(c['summary']['throughput']['mean'])} +/- {_fmt(c['summary']['throughput']['half_width'])}"
            ),
        ),
    ]
    if "throughput" in images:
        out.append(f"![Throughput per mix]({images['throughput']})\n")
    out += [
        "## Latency (ms, p50 / p95 / p99 / max, all repeats)\n",
        "From hand-off by the coordinator to the result; queue wait and service time apart below.\n",
        _grid(doc, lambda c: " / ".join(_fmt(c["summary"]["latency_ms"][k]) for k in ("p50", "p95", "p99", "max"))),
        "Queue wait p50 / service time p50 (ms):\n",
        _grid(
            doc, lambda c: f"{_fmt(c['summary']['queue_wait_ms']['p50'])} / {_fmt(c['summary']['service_ms']['p50'])}"
        ),
    ]
    if "latency" in images:
        out.append(f"![Latency percentiles]({images['latency']})\n")
    out += [
        "## Efficiency: measured / bound\n",
        "The bound is what the executor could do at best on the mix, from the calibrated job costs: I/O is "
        "limited by slots / time per job (slots: coroutines or threads in flight, processes, Celery worker "
        "processes), GIL-bound CPU by the cores that may run Python at once (1 for async and threads), "
        "GIL-free CPU by the cores the executor may use, all CPU by the machine's cores.\n",
        _grid(
            doc,
            lambda c: (
                "-"
                if c["summary"]["efficiency"] is None
                else f"{c['summary']['efficiency']:.0%} of {_fmt(c['summary']['bound']['jobs_per_s'])} "
                f"({c['summary']['bound']['limited_by']})"
            ),
        ),
    ]
    if "efficiency" in images:
        out.append(f"![Efficiency]({images['efficiency']})\n")
    out += [
        "## Event-loop lag p99 (ms)\n",
        "How late the coordinator's event loop wakes a 10 ms timer. In async mode the jobs run on that loop, "
        "so inline CPU work shows here; other executors leave it idle.\n",
        _grid(doc, lambda c: f"{_fmt(c['summary']['loop_lag_p99_ms']['mean'])}"),
    ]
    if "loop_lag" in images:
        out.append(f"![Loop lag]({images['loop_lag']})\n")
    out += [
        "## Resources\n",
        "CPU utilisation of all cores / peak RSS in MB (coordinator + worker processes):\n",
        _grid(doc, lambda c: f"{c['summary']['cpu_utilisation']:.0%} / {_fmt(c['summary']['peak_rss_mb'], 0)}"),
    ]
    out += _accounting(doc)
    out += _workers(doc)
    return out


def _accounting(doc: dict[str, Any]) -> list[str]:
    totals: Counter[str] = Counter()
    for cell in doc["cells"]:
        totals.update(cell["summary"]["jobs"])
    adds_up = totals["submitted"] == totals["done"] + totals["failed"] + totals["timed_out"]
    line = ", ".join(f"{k} {totals[k]:,}" for k in ("submitted", "done", "failed", "timed_out", "lost", "duplicates"))
    verdict = "every job is accounted for" if adds_up and totals["lost"] == 0 else "JOBS ARE MISSING"
    return ["## Accounting\n", f"All measured runs: {line} -- {verdict}.\n"]


def _workers(doc: dict[str, Any]) -> list[str]:
    """Jobs per worker, for executors whose workers have names worth showing (processes, nodes)."""
    out: list[str] = []
    per_mode: dict[str, Counter[str]] = {}
    for cell in doc["cells"]:
        for run in cell["repeats"]:
            per_mode.setdefault(cell["mode"], Counter()).update(run.get("by_worker", {}))
    for mode, counts in per_mode.items():
        if not 1 < len(counts) <= 16:  # processes and Celery nodes, not one loop or hundreds of threads
            continue
        out += [
            f"## Jobs per {mode} worker (all measured runs)\n",
            _table(["worker", "jobs"], [[name, f"{n:,}"] for name, n in sorted(counts.items())]),
        ]
    containers = doc.get("containers")
    if containers:
        out += [
            "## Containers\n",
            "CPU in % of one core, sampled about once a second; a Celery node is named after its container's "
            "hostname.\n",
            _table(
                ["container", "service", "hostname", "CPU % mean", "CPU % max", "memory peak MB", "samples"],
                [
                    [
                        c["name"],
                        c["service"],
                        c.get("hostname", "-"),
                        _fmt(c["cpu_percent_mean"]),
                        _fmt(c["cpu_percent_max"]),
                        _fmt(c["mem_peak_mb"]),
                        str(c["samples"]),
                    ]
                    for c in containers
                ],
            ),
        ]
    return out


def markdown_report(doc: dict[str, Any], images: dict[str, str], charts: list[Chart] | None = None) -> str:
    out = [
        "# runner bench report\n",
        f"{doc.get('started_at', '')}, {doc.get('wall_s', 0):g} s in all, on {_machine_line(doc)}.\n",
    ]
    if doc.get("verdicts"):
        out += ["## Verdicts\n", "\n".join(f"- {v['text']}" for v in doc["verdicts"]) + "\n"]
    if doc.get("cells"):
        out += _sweep_sections(doc, images)
    if doc.get("presets"):
        from runner.report.presets import markdown

        out.append(markdown(doc))
        preset_images = [(c.title, images[c.name]) for c in (charts or []) if c.name.startswith("preset_")]
        out += [f"![{title}]({src})\n" for title, src in preset_images]
    out += ["## The article behind this\n", _ARTICLE + "\n"]
    calibration = doc.get("calibration")
    if calibration:
        out.append(f"Calibration on this machine: {json.dumps(calibration)}.\n")
    return "\n".join(out)


# --- HTML and CSV -----------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
"""


def html_report(doc: dict[str, Any], charts: list[Chart]) -> str:
    with needs_extra("report"):
        import markdown

    images = {c.name: "data:image/png;base64," + base64.b64encode(c.png).decode("ascii") for c in charts}
    body = markdown.markdown(markdown_report(doc, images, charts), extensions=["tables"])
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>runner bench report</title>"
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


CSV_FIELDS = [
    "mode",
    "mix",
    "cpu_share",
    "jobs_per_run",
    "repeats",
    "throughput_mean",
    "throughput_ci_low",
    "throughput_ci_high",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "queue_wait_p50_ms",
    "service_p50_ms",
    "loop_lag_p99_ms",
    "cpu_utilisation",
    "peak_rss_mb",
    "bound_jobs_per_s",
    "limited_by",
    "efficiency",
    "submitted",
    "done",
    "failed",
    "timed_out",
    "lost",
    "duplicates",
]


def write_csv(doc: dict[str, Any], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for c in doc["cells"]:
            s = c["summary"]
            t = s["throughput"]
            writer.writerow(
                [
                    c["mode"],
                    c["mix_name"],
                    c["cpu_share"],
                    c["jobs_per_run"],
                    t["n"],
                    t["mean"],
                    t["ci95"][0],
                    t["ci95"][1],
                    *(s["latency_ms"][k] for k in ("p50", "p95", "p99", "max")),
                    s["queue_wait_ms"]["p50"],
                    s["service_ms"]["p50"],
                    s["loop_lag_p99_ms"]["mean"],
                    s["cpu_utilisation"],
                    s["peak_rss_mb"],
                    s["bound"]["jobs_per_s"],
                    s["bound"]["limited_by"],
                    s["efficiency"],
                    *(s["jobs"][k] for k in ("submitted", "done", "failed", "timed_out", "lost", "duplicates")),
                ]
            )
    return path
