"""The ``runner`` command line. Every option can also be set from the environment as
``RUNNER_<COMMAND>_<OPTION>`` (e.g. ``RUNNER_SUBMIT_JOBS=500``).

Errors reach the user as one line on stderr: bad input exits 2, a missing service exits 1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from runner.cli.params import name_envvars, real, whole
from runner.cli.run_flags import executor_flags, wait_flags
from runner.cli.user_flags import user_job_flags, user_job_values
from runner.engine.spec import (
    ARRIVALS,
    DEFAULTS,
    EXECUTOR_OPTIONS,
    SPEC_KEYS,
    WorkloadSpec,
    load_spec_file,
    parse_modes,
)
from workers.errors import InputError, RunnerError, RunStopped
from workers.jobs import KINDS
from workers.registry import MODES

_SPEC_OPTIONS = (
    "jobs",
    "mix",
    "io_ms",
    "cpu_ms",
    "concurrency",
    "workers",
    "timeout",
    "batch",
    "rate",
    "arrivals",
    "expect_workers",
    "wait_s",
    *EXECUTOR_OPTIONS,
)


class OneLineErrors(click.Group):
    """A click group whose errors are one line on stderr, never a usage dump or traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # `runner`, `runner cluster`
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            _fail(exc.format_message(), 2)
        except click.Abort:
            _fail("aborted", 130)
        except InputError as exc:
            _fail(str(exc), 2)
        except RunStopped as exc:
            _fail(str(exc), exc.exit_code)
        except RunnerError as exc:
            _fail(str(exc), 1)
        except BrokenPipeError:
            _quiet_stdout()
            sys.exit(1)
        except OSError as exc:  # the system refused (stdout on a full disk, EIO): not the user's input
            _quiet_stdout()
            where = f" ({exc.filename})" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}", 1)
        sys.exit(code if isinstance(code, int) else 0)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's flush at exit cannot fail a second time and
    print its own message."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _standard_fds() -> None:
    """Open /dev/null on any of stdin, stdout, stderr that the caller closed (``runner ... >&-``):
    otherwise the next file or socket opened takes fd 1 or 2, output lands in it, and uvloop
    aborts the process when it closes it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free descriptor: this one


def _fail(message: str, code: int) -> None:
    from workers.urls import scrub

    click.echo(f"runner: error: {' '.join(scrub(message).split())}", err=True)
    sys.exit(code)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runner", message="runner %(version)s")
def cli() -> None:
    """Send one workload of I/O- and CPU-bound jobs through async, threads, processes or Celery,
    and measure throughput, latency and resource use for each."""


def _default(name: str) -> str:
    value = DEFAULTS[name]
    return "CPU count" if value is None else str(value)


@cli.command()
@click.option(
    "--mode",
    "-m",
    default="async",
    show_default=True,
    metavar="MODE[,MODE...]",
    help=f"{', '.join(MODES)} -- several separated by commas, or 'all'.",
)
@click.option("--jobs", "-n", type=whole(), help=f"Number of jobs. [default: {_default('jobs')}]")
@click.option(
    "--mix",
    help=f"Job kinds and weights, e.g. sleep=0.5,cpu=0.5. Kinds: {', '.join(KINDS)}. [default: {_default('mix')}]",
)
@click.option("--io-ms", type=real(), help=f"I/O wait per job, ms. [default: {_default('io_ms')}]")
@click.option("--cpu-ms", type=real(), help=f"CPU work per job, ms on this machine. [default: {_default('cpu_ms')}]")
@click.option(
    "--concurrency",
    "-c",
    type=whole(),
    help=f"Jobs in flight at once (threads in thread mode). [default: {_default('concurrency')}]",
)
@click.option(
    "--workers",
    "-w",
    type=whole(),
    help=f"Worker processes of the process and hybrid pools, and the default number of local Celery nodes. "
    f"[default: {_default('workers')}]",
)
@executor_flags
@click.option(
    "--batch",
    type=whole(),
    help="Small jobs per process-pool or Celery task: 0 sizes batches from each kind's measured cost, "
    "1 sends every job on its own (as a plain apply_async loop does), N fixes the size. "
    "[default: Celery 1, the process and hybrid pools 0]",
)
@wait_flags
@click.option(
    "--rate",
    type=real(),
    help="Open loop: start jobs on a schedule at this many per second, whether or not the executor keeps up, "
    "and measure latency from each job's intended start. 0 = closed loop: a new job when one ends. [default: 0]",
)
@click.option(
    "--arrivals",
    type=click.Choice(ARRIVALS),
    help="Open loop: evenly spaced starts, or a Poisson process (seeded). [default: constant]",
)
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"TOML file with any of: {', '.join(SPEC_KEYS)}; flags win.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write result.json and ledger.jsonl here (one folder per mode when several); replaces runner's own "
    "files there, leaves other files alone; one run per folder at a time.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (one line per mode).")
@user_job_flags
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Turn off the live view (a dashboard on a terminal, a line every 10 s elsewhere); the summary stays.",
)
@click.option(
    "--metrics-port",
    type=whole(0, 65535),
    help="Serve Prometheus/OpenMetrics metrics of the run on this port while it goes (jobs by outcome, in "
    "flight, latency histogram, loop lag).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address the metrics server listens on.")
@click.pass_context
def submit(
    ctx: click.Context,
    /,
    mode: str,
    spec_file: Path | None,
    out_dir: Path | None,
    as_json: bool,
    quiet: bool,
    metrics_port: int | None,
    metrics_host: str,
    **flags: Any,
) -> None:
    """Run a workload through one or more executors and report how each did."""
    from runner.cli.live import LiveView, fan_out, live_metrics
    from runner.engine import codec
    from runner.engine.coordinator import check_modes, run_mode
    from runner.engine.outputs import OutLock, OutputError, prepare_out_dir, write_or_save
    from runner.engine.results import RunResult
    from runner.report.terminal import print_comparison, print_run, stderr_console
    from workers.calibration import for_coordinator

    values: dict[str, Any] = load_spec_file(spec_file) if spec_file else {}
    if spec_file and "mode" in values and not _given(ctx, "mode"):
        mode = values["mode"]
    values.pop("mode", None)
    user_job_values(flags, values)
    values.update({k: v for k, v in flags.items() if k in _SPEC_OPTIONS and _given(ctx, k)})
    modes = parse_modes(mode)
    spec = WorkloadSpec.build(values, modes)
    check_modes(spec)
    if out_dir is not None:
        prepare_out_dir(out_dir)  # before the run, not after it
    console = stderr_console()
    calibration = for_coordinator()
    results: list[RunResult] = []
    with (
        OutLock(out_dir) if out_dir is not None else contextlib.nullcontext(),
        LiveView(console, quiet=quiet) as live,
        live_metrics(metrics_port, metrics_host) as exporter,
    ):
        progress = fan_out(live.update, exporter.update if exporter else None)
        for name in modes:
            target = out_dir / name if out_dir and len(modes) > 1 else out_dir
            stopped: RunStopped | None = None
            problems: list[str] = []  # outputs that failed; the result itself is never dropped
            try:
                result = run_mode(spec, name, out_dir=target, progress=progress, calibration=calibration)
            except RunStopped as exc:  # Ctrl-C, SIGTERM, a lost broker: keep what was measured
                if exc.result is None:
                    raise
                stopped, result = exc, exc.result
            except OutputError as exc:  # the ledger could not be written: the result stands
                if exc.result is None:
                    raise
                problems.append(str(exc))
                result = exc.result
            results.append(result)
            if target is not None:
                try:
                    write_or_save(target / "result.json", codec.dumps(result, indent=2) + "\n", "result", as_json)
                except OutputError as exc:
                    problems.append(str(exc))
            if as_json:
                click.echo(codec.dumps(result))
            else:
                print_run(console, result)
            if stopped is not None:
                if problems:
                    raise RunStopped("; ".join([str(stopped), *problems]), stopped.exit_code)
                raise stopped
            if problems:
                raise OutputError("; ".join(problems))
    if len(results) > 1 and not as_json:
        print_comparison(console, results)
    if any(r.jobs.lost for r in results):
        raise click.exceptions.Exit(1)


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=whole(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--max-concurrent",
    default=4096,
    show_default=True,
    type=whole(1, 1_000_000),
    help="Requests in service at once; more get 503 at once (delay and body size are capped too).",
)
def target(host: str, port: int, max_concurrent: int) -> None:
    """Serve the HTTP target that http jobs call: GET /delay/{ms}, GET /orders (a page of made-up
    orders, for examples/), GET /health."""
    import asyncio

    import uvloop

    from runner.target import serve

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
            loop.run(serve(host, port, max_concurrent))
    except OSError as exc:
        raise RunnerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _register() -> None:
    from runner.cli.bench import bench, compare, report

    for command in (bench, report, compare):
        cli.add_command(command)


_register()


def _register_cluster() -> None:
    from runner.cli.cluster import cluster  # the docker SDK is imported only when a subcommand runs

    cli.add_command(cluster)


_register_cluster()
name_envvars(cli)  # after every command is added: RUNNER_<COMMAND>_<OPTION> for each option


def main() -> None:
    _standard_fds()
    cli(prog_name="runner")


if __name__ == "__main__":
    main()
