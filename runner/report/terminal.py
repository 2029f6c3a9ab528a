"""Terminal output (rich, on stderr): one run in detail, several side by side, and the table of
``runner compare``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from runner.engine import codec
from runner.engine.results import RunResult
from runner.report import format as fmt
from runner.report.calibration import terminal_rows
from runner.report.compare import METRICS, Comparison


def run_table(result: RunResult) -> Table:
    lat, res = result.latency_ms, result.resources
    table = Table(title=f"runner submit --mode {result.mode}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    ms = fmt.num
    table.add_row("jobs", ", ".join(f"{k} {fmt.count(v)}" for k, v in codec.encode(result.jobs).items()))
    table.add_row("mix", ", ".join(f"{k} {fmt.count(v)}" for k, v in result.kinds.items()))
    table.add_row("load", load_label(result))
    table.add_row("wall time", f"{fmt.fixed(result.wall_s)} s")
    table.add_row("throughput", f"{fmt.fixed(result.throughput_jobs_per_s, 1)} jobs/s")
    table.add_row("jobs per task", batching_label(result))
    table.add_row("latency ms", f"p50 {ms(lat.p50)}  p95 {ms(lat.p95)}  p99 {ms(lat.p99)}  max {ms(lat.max)}")
    wait = result.coordinator_wait_ms
    if result.load is not None and result.load.model == "open" and wait is not None:
        table.add_row("waited for a driver", f"p50 {ms(wait.p50)}  p99 {ms(wait.p99)} ms (inside the latency)")
    table.add_row("queue wait / service", f"p50 {ms(result.queue_wait_ms.p50)} / {ms(result.service_ms.p50)} ms")
    for outcome, other in (result.latency_by_outcome_ms or {}).items():
        if outcome != "done" and other.count:
            table.add_row(f"latency ms, {outcome.replace('_', ' ')}", f"p50 {ms(other.p50)}  p99 {ms(other.p99)}")
    table.add_row("event-loop lag p99", f"{ms(result.loop_lag_ms.p99)} ms")
    table.add_row(
        "peak RSS",
        f"{fmt.fixed(res.peak_rss_mb, 0)} MB (coordinator {fmt.fixed(res.coordinator_peak_rss_mb, 0)}, "
        f"workers {fmt.fixed(res.workers_peak_rss_mb, 0)} in {res.worker_processes} "
        f"{fmt.plural(res.worker_processes, 'process', 'processes')})",
    )
    table.add_row("CPU", f"{fmt.fixed(res.cpu_s)} s ({fmt.pct(res.cpu_utilisation)} of all cores)")
    for name, text in terminal_rows(result):
        table.add_row(name, text)
    machine = result.machine
    if machine is not None and machine.busy:
        load = (machine.load_avg or {}).get("1m", 0.0)
        table.add_row(
            "[yellow]warning",
            f"[yellow]the machine was busy when the run began (load {load:g} on "
            f"{machine.cpus} cores): figures may be noisy",
        )
    for reason, count in list(result.failures.items())[:5]:
        table.add_row("failure", f"{fmt.count(count)} x {reason}")
    return table


def load_label(result: RunResult) -> str:
    """How load was offered, which decides what the latency means."""
    load = result.load
    if load is not None and load.model == "open":
        rate = f"{load.rate_per_s or 0:,g}"
        return f"open loop, {rate} jobs/s ({load.arrivals}); latency from each job's intended start"
    drivers = load.concurrency if load is not None and load.concurrency is not None else "?"
    return f"closed loop, {drivers} drivers (peak in flight {result.peak_in_flight}); latency from hand-off"


def batching_label(result: RunResult) -> str:
    """Jobs per pool/Celery task, and whether batching shaped the figures."""
    batching = result.executor.batching()
    if batching is None:
        return "- (each job runs where it is sent; no tasks)"
    if batching.tasks_sent == 0:
        return "- (no job was sent as a task)"
    tasks = fmt.count(batching.tasks_sent)
    setting = f"{fmt.per_task(batching.jobs_per_task)} (--batch {batching.batch}, {tasks} tasks)"
    if batching.batched:
        return f"{setting}: batching changed these figures"
    return f"{setting}: one task per job"


def jobs_per_task(result: RunResult) -> str:
    batching = result.executor.batching()
    return "-" if batching is None else fmt.per_task(batching.jobs_per_task)


def comparison_table(results: list[RunResult]) -> Table:
    best = max((r.throughput_jobs_per_s for r in results), default=0.0) or 1.0
    table = Table(title="Executors compared on the same workload", title_justify="left")
    for name in (
        "mode",
        "done",
        "failed",
        "timeout",
        "jobs/s",
        "jobs/task",
        "x best",
        "p50 ms",
        "p99 ms",
        "lag p99",
        "RSS MB",
        "CPU s",
    ):
        table.add_column(name, justify="left" if name == "mode" else "right", no_wrap=True)
    for r in results:
        jobs, res = r.jobs, r.resources
        table.add_row(
            r.mode,
            fmt.count(jobs.done),
            fmt.count(jobs.failed),
            fmt.count(jobs.timed_out),
            fmt.fixed(r.throughput_jobs_per_s, 1),
            jobs_per_task(r),
            fmt.fixed(r.throughput_jobs_per_s / best),
            fmt.num(r.latency_ms.p50),
            fmt.num(r.latency_ms.p99),
            fmt.num(r.loop_lag_ms.p99),
            fmt.fixed(res.peak_rss_mb, 0),
            fmt.fixed(res.cpu_s),
        )
    return table


def stderr_console() -> Console:
    """Rich console on stderr; wide enough for the tables even when stderr is not a terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = max(console.width, 126)
    return console


def print_run(console: Console, result: RunResult) -> None:
    console.print(run_table(result))


def print_comparison(console: Console, results: list[RunResult]) -> None:
    console.print(comparison_table(results))


def render_comparison(console: Console, outcome: Comparison) -> None:
    """``runner compare``'s table: the change of each figure's mean, bold where it is significant."""
    title = "new vs base: change of the mean (Holm-adjusted p of Welch's test on log ratios)"
    table = Table(title=title, title_justify="left")
    shown = [m for m in METRICS if any(m in cell.metrics for cell in outcome.cells)]  # vs_bare where recorded
    for name in ("mode", "mix", *shown):
        table.add_column(name, justify="left" if name in ("mode", "mix") else "right", no_wrap=True)
    for cell in outcome.cells:
        row = []
        for metric in shown:
            f = cell.metrics.get(metric)
            if f is None:
                row.append("-")
                continue
            p = f.p_holm if f.p_holm is not None else f.p_value
            text = f"{fmt.change(f.change_pct)} (p={p:.2f})"
            row.append(f"[bold]{text}[/bold]" if f.significant else text)
        table.add_row(cell.mode, cell.mix, *row)
    console.print(table)
    for warning in outcome.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    for item in outcome.missing:
        console.print(f"only in one file: {item}")
    for reg in outcome.regressions:
        console.print(
            f"[red]REGRESSION[/red] {reg.mode} x {reg.mix}: {reg.rule} breached "
            f"({fmt.change(reg.change_pct)}, p={reg.p_value:.3f})"
        )
    if outcome.rules and not outcome.regressions:
        console.print(f"no significant regression ({', '.join(outcome.rules)})")


def print_noise_warnings(console: Console, warnings: list[str]) -> None:
    """A sweep's noisy, busy or over-bound cells, after its verdicts."""
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
