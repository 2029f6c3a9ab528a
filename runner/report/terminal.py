"""Terminal output for run results: one run in detail, or several side by side (rich, on stderr)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def run_table(result: dict[str, Any]) -> Table:
    jobs, lat, res = result["jobs"], result["latency_ms"], result["resources"]
    table = Table(title=f"runner submit --mode {result['mode']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    counts = ", ".join(f"{k} {v:,}" for k, v in jobs.items())
    table.add_row("jobs", counts)
    table.add_row("mix", ", ".join(f"{k} {v:,}" for k, v in result["kinds"].items()))
    table.add_row("load", load_label(result))
    table.add_row("wall time", f"{result['wall_s']:.2f} s")
    table.add_row("throughput", f"{result['throughput_jobs_per_s']:,.1f} jobs/s")
    table.add_row(
        "latency ms", f"p50 {_ms(lat['p50'])}  p95 {_ms(lat['p95'])}  p99 {_ms(lat['p99'])}  max {_ms(lat['max'])}"
    )
    if result.get("load", {}).get("model") == "open":
        wait = result["coordinator_wait_ms"]
        table.add_row("waited for a driver", f"p50 {_ms(wait['p50'])}  p99 {_ms(wait['p99'])} ms (inside the latency)")
    table.add_row(
        "queue wait / service", f"p50 {_ms(result['queue_wait_ms']['p50'])} / {_ms(result['service_ms']['p50'])} ms"
    )
    for outcome in ("failed", "timed_out"):
        other = result.get("latency_by_outcome_ms", {}).get(outcome, {})
        if other.get("count"):
            table.add_row(
                f"latency ms, {outcome.replace('_', ' ')}", f"p50 {_ms(other['p50'])}  p99 {_ms(other['p99'])}"
            )
    table.add_row("event-loop lag p99", f"{_ms(result['loop_lag_ms']['p99'])} ms")
    table.add_row(
        "peak RSS",
        f"{res['peak_rss_mb']:,.0f} MB (coordinator {res['coordinator_peak_rss_mb']:,.0f}, "
        f"workers {res['workers_peak_rss_mb']:,.0f} in {res['worker_processes']} processes)",
    )
    table.add_row("CPU", f"{res['cpu_s']:.2f} s ({res['cpu_utilisation']:.0%} of all cores)")
    machine = result.get("machine", {})
    if machine.get("busy"):
        load = machine["load_avg"]["1m"]
        table.add_row(
            "[yellow]warning",
            f"[yellow]the machine was busy when the run began (load {load:g} on "
            f"{machine['cpus']} cores): figures may be noisy",
        )
    for reason, count in list(result["failures"].items())[:5]:
        table.add_row("failure", f"{count:,} x {reason}")
    return table


def load_label(result: dict[str, Any]) -> str:
    """How load was offered, which decides what the latency means."""
    load = result.get("load") or {"model": "closed"}
    if load["model"] == "open":
        return f"open loop, {load['rate_per_s']:,g} jobs/s ({load['arrivals']}); latency from each job's intended start"
    peak = result.get("peak_in_flight")
    return f"closed loop, {load.get('concurrency', '?')} drivers (peak in flight {peak}); latency from hand-off"


def comparison_table(results: list[dict[str, Any]]) -> Table:
    best = max((r["throughput_jobs_per_s"] for r in results), default=0.0) or 1.0
    table = Table(title="Executors compared on the same workload", title_justify="left")
    for name in (
        "mode",
        "done",
        "failed",
        "timeout",
        "jobs/s",
        "x best",
        "p50 ms",
        "p99 ms",
        "lag p99",
        "RSS MB",
        "CPU s",
    ):
        table.add_column(name, justify="left" if name == "mode" else "right", no_wrap=True)
    for r in results:
        jobs, lat, res = r["jobs"], r["latency_ms"], r["resources"]
        table.add_row(
            r["mode"],
            f"{jobs['done']:,}",
            f"{jobs['failed']:,}",
            f"{jobs['timed_out']:,}",
            f"{r['throughput_jobs_per_s']:,.1f}",
            f"{r['throughput_jobs_per_s'] / best:.2f}",
            _ms(lat["p50"]),
            _ms(lat["p99"]),
            _ms(r["loop_lag_ms"]["p99"]),
            f"{res['peak_rss_mb']:,.0f}",
            f"{res['cpu_s']:.2f}",
        )
    return table


def stderr_console() -> Console:
    """Rich console on stderr; wide enough for the tables even when stderr is not a terminal."""
    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = max(console.width, 110)
    return console


def print_run(console: Console, result: dict[str, Any]) -> None:
    console.print(run_table(result))


def print_comparison(console: Console, results: list[dict[str, Any]]) -> None:
    console.print(comparison_table(results))
