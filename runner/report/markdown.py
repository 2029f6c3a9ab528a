"""``report.md``: the report's single source (the HTML is rendered from it), charts as PNG files
beside it in ``charts/``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from runner.engine import codec
from runner.engine.bench_results import BenchResults, Cell, SweepPlan
from runner.engine.results import Jobs, Node
from runner.report import format as fmt
from runner.report.calibration import markdown_section as calibration_section
from runner.report.charts import Chart
from runner.report.noise import noise_warnings, over_bound
from runner.report.sections import article_table, curve_sections
from runner.report.verdicts import axes_label

_ARTICLE = (
    '"Asynchronous Programming" (Tai Le, 2023) measured: three 3 s HTTP calls took 11.4 s one after another, '
    "4.1 s with gevent "
    "and 4.9 s with asyncio; creating a million coroutines took 6.8 s and 1,112 MB, a million threads "
    "43.6 s and 2,661 MB, and 1,000 processes 0.379 s (extrapolated: 379 s for a million)."
)


class MarkdownExporter:
    filename = "report.md"

    def wanted(self, doc: BenchResults) -> bool:
        return True

    def render(self, doc: BenchResults, charts: list[Chart]) -> str:
        return markdown_report(doc, {c.name: f"charts/{c.name}.png" for c in charts}, charts)


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _row(cell: Cell, cells: list[Cell]) -> str:
    where = axes_label(cell, cells)
    return cell.mix_name + (f" ({where})" if where else "")


def _grid(cells: list[Cell], value: Callable[[Cell], str]) -> str:
    """A mixes (x points of the sweep axes) x modes table of one figure per cell."""
    modes = list(dict.fromkeys(c.mode for c in cells))
    by = {(_row(c, cells), c.mode): c for c in cells}
    rows = []
    for label in dict.fromkeys(_row(c, cells) for c in cells):
        rows.append([label] + [value(by[(label, m)]) if (label, m) in by else "-" for m in modes])
    return table(["mix", *modes], rows)


def _machine_line(doc: BenchResults) -> str:
    m = doc.machine
    return (
        f"{m.cpus} cores ({m.cpu_model}), {m.memory_gb} GB, {m.os}, Python {m.python}, runner {doc.runner_version}"
        + (f" at {m.git_commit}" if m.git_commit else "")
    )


def _efficiency(c: Cell) -> str:
    s = c.summary
    if s.efficiency is None:
        return "-"
    if over_bound(c):  # not an upper bound, so not a figure to print as one
        return f"above the bound of {fmt.num(s.bound.jobs_per_s)} ({s.bound.limited_by}): calibration/bound problem"
    return f"{fmt.pct(s.efficiency)} of {fmt.num(s.bound.jobs_per_s)} ({s.bound.limited_by})"


def _batched(c: Cell) -> str:
    """Beside a figure that batching changed: how many jobs went per task."""
    return f" (batched: {fmt.per_task(c.summary.jobs_per_task or 1)} jobs/task)" if c.summary.batched else ""


def _throughput(c: Cell) -> str:
    t = c.summary.throughput
    return f"{fmt.num(t.mean)} +/- {fmt.num(t.half_width)}{_batched(c)}"


def _per_task(c: Cell) -> str:
    s = c.summary
    if s.jobs_per_task is None:
        return "-"
    return f"{fmt.per_task(s.jobs_per_task)} (batch {s.batch})"


def _batch_setting(sweep: SweepPlan | None) -> str:
    if sweep is None or sweep.batch is None:
        return "This sweep left `--batch` at each executor's default (Celery 1, the pools sized from cost)."
    return f"This sweep set `--batch {sweep.batch}` for every executor."


def _load(c: Cell) -> str:
    if c.open_loop:
        return f"open loop, {fmt.num(c.rate_per_s)} jobs/s offered"
    peak = c.summary.peak_in_flight
    return "closed loop" + (f", peak in flight {fmt.count(peak)}" if peak is not None else "")


def _sweep_sections(doc: BenchResults, images: dict[str, str]) -> list[str]:
    cells, sweep = doc.cells, doc.sweep
    out = ["## Sweep\n"]
    warnings = noise_warnings(doc)
    if warnings:
        out += ["### Noise and bounds: read these cells with care\n", "\n".join(f"- {w}" for w in warnings) + "\n"]
    if sweep is not None:
        out.append(
            f"{len(sweep.modes)} executors x {len(sweep.mixes)} mixes, {sweep.repeats} measured repeats per cell "
            f"in shuffled order after one warm-up run per executor (kept apart). Jobs wait {sweep.io_ms:g} ms of I/O "
            f"and/or burn {sweep.cpu_ms:g} ms of CPU; {_setting(sweep.concurrency, sweep.concurrency_axis)} in flight; "
            f"{_setting(sweep.workers, sweep.workers_axis)} process-pool workers; each run sized to about "
            f"{sweep.run_s:g} s at the executor's bound "
            f"({sweep.min_jobs}..{sweep.max_jobs} jobs). Intervals are 95 % confidence intervals of the mean.\n"
        )
        out.append(_axes_line(sweep))
    if "crossover" in images:
        out.append(f"![Throughput vs CPU share]({images['crossover']})\n")
    out += [
        "## Load\n",
        "Closed loop: a job starts when one ends, at most `concurrency` in flight, latency from hand-off; "
        "open loop: jobs start on a schedule at the offered rate, latency from each job's intended start.\n",
        _grid(cells, _load),
        "## Throughput (jobs/s, mean +/- 95 % CI)\n",
        _grid(cells, _throughput),
        "## Jobs per task\n",
        "Jobs sent to a pool process or Celery worker per task (mean over the repeats; `-`: the executor runs "
        "each job where it is, no tasks). Above 1, jobs shared tasks and the figures measure runner's "
        f"batching as much as the executor: `--batch 1` sends one task per job. {_batch_setting(sweep)}\n",
        _grid(cells, _per_task),
    ]
    if "throughput" in images:
        out.append(f"![Throughput per mix]({images['throughput']})\n")
    out += [
        "## Latency (ms, p50 / p95 / p99 / max, all repeats)\n",
        "From hand-off by the coordinator to the result; queue wait and service time apart below.\n",
        _grid(cells, lambda c: " / ".join(fmt.num(v) for v in _percentiles(c)) + _batched(c)),
        "Queue wait p50 / service time p50 (ms):\n",
        _grid(cells, lambda c: f"{fmt.num(c.summary.queue_wait_ms.p50)} / {fmt.num(c.summary.service_ms.p50)}"),
    ]
    if "latency" in images:
        out.append(f"![Latency percentiles]({images['latency']})\n")
    out += [
        "## Efficiency: measured / bound\n",
        "The bound is what the executor could do at best on the mix, from the calibrated job costs: I/O is "
        "limited by slots / time per job (slots: coroutines or threads in flight, processes, Celery worker "
        "processes), GIL-bound CPU by the cores that may run Python at once (1 for async and threads), "
        "GIL-free CPU by the cores the executor may use, all CPU by the machine's cores.\n",
        _grid(cells, _efficiency),
    ]
    if "efficiency" in images:
        out.append(f"![Efficiency]({images['efficiency']})\n")
    out += [
        "## Event-loop lag p99 (ms)\n",
        "How late the coordinator's event loop wakes a 10 ms timer. In async mode the jobs run on that loop, "
        "so inline CPU work shows here; other executors leave it idle.\n",
        _grid(cells, lambda c: fmt.num(c.summary.loop_lag_p99_ms.mean)),
    ]
    if "loop_lag" in images:
        out.append(f"![Loop lag]({images['loop_lag']})\n")
    out += [
        "## Resources\n",
        "CPU utilisation of all cores / peak RSS in MB (coordinator + worker processes):\n",
        _grid(cells, lambda c: f"{fmt.pct(c.summary.cpu_utilisation)} / {fmt.num(c.summary.peak_rss_mb, 0)}"),
    ]
    out += curve_sections(doc, images)
    out += _accounting(cells)
    out += _workers(doc)
    return out


def _setting(value: int, axis: list[int] | None) -> str:
    return "per the axis below" if axis else str(value)


def _axes_line(sweep: SweepPlan) -> str:
    axes = [
        f"workers {', '.join(map(str, sweep.workers_axis))}" if sweep.workers_axis else "",
        f"concurrency {', '.join(map(str, sweep.concurrency_axis))}" if sweep.concurrency_axis else "",
        f"offered rate {', '.join(fmt.num(r) for r in sweep.rates)} jobs/s (0: closed loop)" if sweep.rates else "",
    ]
    named = [a for a in axes if a]
    if not named:
        return ""
    return (
        f"Sweep axes: {'; '.join(named)}. Each (workers, concurrency) combination had its own executors, "
        "started, warmed up and stopped around its shuffled runs.\n"
    )


def _percentiles(c: Cell) -> tuple[float, float, float, float]:
    lat = c.summary.latency_ms
    return lat.p50, lat.p95, lat.p99, lat.max


def _accounting(cells: list[Cell]) -> list[str]:
    totals: Counter[str] = Counter()
    for cell in cells:
        totals.update(codec.encode(cell.summary.jobs))
    total = Jobs(**totals) if cells else Jobs(submitted=0, done=0, failed=0, timed_out=0, lost=0, duplicates=0)
    line = ", ".join(f"{k} {fmt.count(v)}" for k, v in codec.encode(total).items())
    verdict = "every job is accounted for" if total.adds_up() else "JOBS ARE MISSING"
    return ["## Accounting\n", f"All measured runs: {line} -- {verdict}.\n"]


def _workers(doc: BenchResults) -> list[str]:
    """Jobs per worker, for executors whose workers have names worth showing (processes, nodes)."""
    out: list[str] = []
    per_mode: dict[str, Counter[str]] = {}
    for cell in doc.cells:
        for run in cell.repeats:
            per_mode.setdefault(cell.mode, Counter()).update(run.by_worker)
    for mode, counts in per_mode.items():
        if not 1 < len(counts) <= 16:  # processes and Celery nodes, not one loop or hundreds of threads
            continue
        out += [
            f"## Jobs per {mode} worker (all measured runs)\n",
            table(["worker", "jobs"], [[name, fmt.count(n)] for name, n in sorted(counts.items())]),
        ]
    out += _nodes(doc)
    if doc.containers:
        out += [
            "## Containers\n",
            "CPU in % of one core, sampled about once a second; a Celery node is named after its container's "
            "hostname.\n",
            table(
                ["container", "service", "hostname", "CPU % mean", "CPU % max", "memory peak MB", "samples"],
                [
                    [
                        c.name,
                        c.service,
                        c.hostname or "-",
                        fmt.num(c.cpu_percent_mean),
                        fmt.num(c.cpu_percent_max),
                        fmt.num(c.mem_peak_mb),
                        str(c.samples),
                    ]
                    for c in doc.containers
                ],
            ),
        ]
    return out


def _nodes(doc: BenchResults) -> list[str]:
    """The Celery nodes that took part, as each described and measured itself, over all measured runs."""
    totals: dict[str, tuple[Node, int, float, float]] = {}
    for cell in doc.cells:
        for run in cell.repeats:
            for n in run.nodes or []:
                _, jobs, cpu_s, rss = totals.get(n.name, (n, 0, 0.0, 0.0))
                totals[n.name] = (n, jobs + n.jobs, cpu_s + n.cpu_s, max(rss, n.peak_rss_mb))
    if not totals:
        return []
    rows = [
        [
            *(name, n.hostname, fmt.num(n.cpus), f"{n.pool} x {n.concurrency}", n.python, n.cpu_model),
            *(fmt.count(jobs), fmt.num(cpu_s), fmt.num(rss)),
            fmt.num(n.calibration.spin_iterations_per_ms) if n.calibration else "-",
        ]
        for name, (n, jobs, cpu_s, rss) in sorted(totals.items())
    ]
    heads = ["node", "host", "cores", "pool", "Python", "CPU", "jobs", "CPU s", "peak RSS MB", "own spin/ms"]
    return [
        "## Celery nodes (all measured runs)\n",
        "As each node described and measured itself: cores it may use (a container's CPU limit), CPU seconds "
        "and peak RSS of its main process and pool children, and its own calibration as it started (spin "
        "iterations per ms of CPU). The Celery bound is summed over these nodes.\n",
        table(heads, rows),
    ]


def markdown_report(doc: BenchResults, images: dict[str, str], charts: list[Chart] | None = None) -> str:
    out = [
        "# runner bench report\n",
        f"{doc.started_at}, {doc.wall_s:g} s in all, on {_machine_line(doc)}.\n",
    ]
    if doc.verdicts:
        out += ["## Verdicts\n", "\n".join(f"- {v.text}" for v in doc.verdicts) + "\n"]
    if doc.cells:
        out += _sweep_sections(doc, images)
        out += calibration_section(doc)
    if doc.presets is not None:
        from runner.report.presets import markdown

        out.append(markdown(doc))
        out += [f"![{c.title}]({images[c.name]})\n" for c in (charts or []) if c.name.startswith("preset_")]
    out += ["## The article behind this\n", _ARTICLE + "\n", article_table(doc)]
    if doc.calibration is not None:
        out.append(f"Calibration on this machine: {codec.dumps(doc.calibration)}.\n")
    return "\n".join(out)
