"""``runner bench``, ``runner report`` and ``runner compare``: sweeps, their reports, and
regression checks between two results files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from runner.cli.params import real, whole
from runner.cli.run_flags import executor_flags, wait_flags
from runner.cli.user_flags import user_job_flags, user_job_values
from runner.experiments.plan import QUICK, Sweep
from workers.errors import InputError, RunStopped


def _default(name: str) -> str:
    """The sweep's default for a flag, and --quick's where it differs: help text that cannot drift."""
    value = Sweep.__dataclass_fields__[name].default
    quick = QUICK.get(name, value)
    return f"[default: {value:g}" + (f", --quick {quick:g}]" if quick != value else "]")


@click.command()
@click.option("--quick", is_flag=True, help="A small sweep that finishes in about 2 minutes on 2 cores.")
@click.option(
    "--modes",
    help="Executors to compare, comma-separated, or 'all' (adds hybrid and gevent). "
    "[default: async,thread,process,celery]",
)
@click.option(
    "--mix",
    "mixes",
    multiple=True,
    metavar="[NAME:]KIND=W,...",
    help="A workload mix (repeatable); replaces the default CPU-share series, hash and http.",
)
@click.option(
    "--repeats",
    type=whole(),
    help=f"Measured repeats per cell (at least 3 for a confidence interval). {_default('repeats')}",
)
@click.option("--io-ms", type=real(), help=f"I/O wait per job, ms. {_default('io_ms')}")
@click.option("--cpu-ms", type=real(), help=f"CPU work per job, ms on this machine. {_default('cpu_ms')}")
@click.option(
    "--concurrency",
    metavar="C[,C...]",
    help=f"Jobs in flight (threads in thread mode); a list (10,100,1000) is a sweep axis. {_default('concurrency')}",
)
@click.option(
    "--workers",
    metavar="W[,W...]",
    help="Process-pool workers (and local Celery nodes); a list (1,2,4,8) is a sweep axis, and 4+ counts get "
    "a fitted scaling model. [default: CPU count]",
)
@click.option(
    "--rate",
    metavar="R[,R...]",
    help="Open loop: jobs/s on a schedule, latency from each job's intended start; a list is a sweep axis, "
    "0 in it meaning closed loop. [default: 0, closed loop]",
)
@click.option(
    "--slo-p99-ms",
    type=real(),
    help="With a rate axis: each executor's highest rate whose p99 stays within this target becomes a verdict.",
)
@executor_flags
@click.option(
    "--batch",
    type=whole(),
    help="Small jobs per process-pool or Celery task in every cell: 0 sizes batches from each kind's measured "
    "cost, 1 sends every job on its own, N fixes the size. [default: Celery 1, the pools 0]",
)
@wait_flags
@click.option("--run-s", type=real(), help=f"Target length of one measured run, seconds. {_default('run_s')}")
@click.option("--seed", type=whole(), help=f"Seed of the shuffled run order. {_default('seed')}")
@click.option(
    "--sweep",
    "sweep_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML sweep file (modes, mixes, repeats, io_ms, ...); flags win.",
)
@click.option(
    "--preset",
    "presets",
    multiple=True,
    type=click.Choice(["requests", "spawn", "blocking", "race", "all"]),
    help='Measure a claim of "Asynchronous Programming" (Tai Le, 2023) instead of the sweep (repeatable).',
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where results.json, report.md, report.html and summary.csv go; runner's own files there are "
    "replaced, others left alone; one run per folder at a time. [default: reports/bench-TIME]",
)
@user_job_flags
@click.option(
    "--quiet", "-q", is_flag=True, help="Turn off the live view (a dashboard on a terminal, a line per run elsewhere)."
)
@click.option(
    "--metrics-port", type=whole(0, 65535), help="Serve Prometheus/OpenMetrics metrics of the runs on this port."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics server listens on.")
def bench(
    quick: bool,
    modes: str | None,
    mixes: tuple[str, ...],
    sweep_file: Path | None,
    presets: tuple[str, ...],
    out_dir: Path | None,
    quiet: bool,
    metrics_port: int | None,
    metrics_host: str,
    **flags: Any,
) -> None:
    """Sweep executors x workload mixes, repeat each cell, and write results and a report."""
    from runner.cli.live import LiveView, fan_out, live_metrics
    from runner.engine import codec
    from runner.engine.outputs import OutLock, prepare_out_dir, write_or_save
    from runner.experiments.sweep import build_sweep, parse_axis, run_sweep
    from runner.extras import require

    require("report")
    from runner.report.export import write_report
    from runner.report.noise import noise_warnings
    from runner.report.terminal import print_noise_warnings, stderr_console
    from runner.report.verdicts import with_verdicts

    overrides: dict[str, Any] = dict(flags)
    user_job_values(overrides, overrides)
    for name, kind in (("workers", int), ("concurrency", int), ("rate", float)):
        if overrides.get(name) is not None:
            overrides[name] = parse_axis(overrides[name], name, kind)
    if modes is not None:
        overrides["modes"] = tuple(m.strip() for m in modes.split(",") if m.strip())
        if not overrides["modes"]:
            raise InputError("--modes: name at least one executor")
    if mixes:
        overrides["mixes"] = tuple(mixes)  # parsed with the sweep's user kinds known
    console = stderr_console()
    stopped: RunStopped | None = None
    out_dir = out_dir or Path("reports") / datetime.now().strftime("bench-%Y%m%d-%H%M%S")
    sweep = None if presets else build_sweep(overrides, quick=quick, sweep_file=sweep_file)
    if presets:
        from runner.experiments.presets import expand, run_presets

        expand(presets)  # bad names fail before anything is created
    prepare_out_dir(out_dir)  # before the sweep: a sweep of minutes must not end in "cannot write"
    with OutLock(out_dir):
        if sweep is None:
            with LiveView(console, quiet=quiet) as live:
                doc = run_presets(presets, quick=quick, step=live.step)
        else:
            with LiveView(console, quiet=quiet) as live, live_metrics(metrics_port, metrics_host) as exporter:
                try:
                    doc = run_sweep(
                        sweep, step=live.step, progress=fan_out(live.update, exporter.update if exporter else None)
                    )
                except RunStopped as exc:  # Ctrl-C or SIGTERM: write what was measured, then exit 130/143
                    if exc.result is None:
                        raise
                    stopped, doc = exc, exc.result
        doc = with_verdicts(doc)
        results = write_or_save(out_dir / "results.json", codec.dumps(doc, indent=1) + "\n", "results")
        written = write_report(doc, out_dir)
    for verdict in doc.verdicts:
        console.print(f"- {verdict.text}", soft_wrap=True)
    print_noise_warnings(console, noise_warnings(doc))
    console.print(f"wrote {results}, " + ", ".join(str(p) for p in written))
    if stopped is not None:
        raise stopped


@click.command()
@click.argument("results", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write report.md, report.html and summary.csv. [default: beside RESULTS]",
)
def report(results: Path, out_dir: Path | None) -> None:
    """Render the Markdown, HTML (charts inside) and CSV reports of a results file."""
    from runner.engine.bench_results import load_results
    from runner.engine.outputs import OutLock, prepare_out_dir
    from runner.report.export import write_report

    doc = load_results(results)
    out = out_dir or results.parent
    prepare_out_dir(out)
    with OutLock(out):
        written = write_report(doc, out)
    click.echo("wrote " + ", ".join(str(p) for p in written), err=True)


@click.command()
@click.argument("base", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--fail-if",
    "rules",
    multiple=True,
    metavar="METRIC:+/-PCT",
    help="Exit 1 if METRIC (throughput, p50, p95, p99, vs_bare) moves past PCT with significance (Holm-adjusted "
    "p < 0.05), e.g. throughput:-5% or p99:+10%; repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON on stdout.")
def compare(base: Path, new: Path, rules: tuple[str, ...], as_json: bool) -> None:
    """Compare two results files cell by cell (change of each mean, Holm-adjusted p); exit 1 when a
    --fail-if rule is breached with significance. Without a rule it reports and exits 0."""
    from runner.engine import codec
    from runner.engine.bench_results import load_results
    from runner.report.compare import compare_results, parse_rule
    from runner.report.terminal import render_comparison, stderr_console

    parsed = [parse_rule(rule) for rule in rules]
    outcome = compare_results(load_results(base), load_results(new), parsed)
    if as_json:
        click.echo(codec.dumps(outcome))
    else:
        render_comparison(stderr_console(), outcome)
    if outcome.regressions:
        raise click.exceptions.Exit(1)
