"""The live view of ``submit`` and ``bench`` on stderr.

On a terminal: a dashboard redrawn a few times a second, one row per executor run so far --
progress, done / failed / timed out, jobs/s and p99 in the latest time-series bucket, jobs in
flight, event-loop lag, and a sparkline of the recent throughput; it goes when the runs end, as
the tables printed after each run are the record. Elsewhere (a pipe, a CI log): one plain line
per run every ``plain_every_s`` while it goes, so a long run shows it is alive without flooding
the log or adding to a short run's output. ``--quiet``: nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from runner.engine.timeline import RunStatus

if TYPE_CHECKING:
    from runner.engine.exporter import MetricsExporter

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[float, ...], width: int = 30) -> str:
    recent = values[-width:]
    top = max(recent, default=0.0)
    if top <= 0:
        return _BARS[0] * len(recent)
    return "".join(_BARS[min(len(_BARS) - 1, int(v / top * (len(_BARS) - 1) + 0.5))] for v in recent)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return text + unit


def plain_line(status: RunStatus) -> str:
    latest = status.latest or {}
    state = "finished" if status.finished else f"{status.elapsed_s:,.0f} s"
    return (
        f"{status.mode}: {status.done + status.failed + status.timed_out:,}/{status.total:,} jobs ({state}), "
        f"done {status.done:,}, failed {status.failed:,}, timed out {status.timed_out:,}, "
        f"{_num(latest.get('jobs_per_s'))} jobs/s, p99 {_num(latest.get('p99_ms'))} ms, "
        f"in flight {status.in_flight:,}"
    )


class LiveView:
    """Takes ``RunStatus`` updates (the coordinator's progress callback) and shows them."""

    def __init__(self, console: Console, quiet: bool = False, plain_every_s: float = 10.0) -> None:
        self._console = console
        self._quiet = quiet
        self._plain_every_s = plain_every_s
        self._rows: dict[str, RunStatus] = {}
        self._last_plain: dict[str, float] = {}
        self._caption = ""
        self._began = time.monotonic()
        self._live: Live | None = None
        if not quiet and console.is_terminal:
            self._live = Live(self._table(), console=console, refresh_per_second=4, transient=True)

    def __enter__(self) -> LiveView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()  # transient: the tables printed after each run are the record

    def update(self, status: RunStatus) -> None:
        if self._quiet:
            return
        self._rows[status.mode] = status
        if self._live is not None:
            self._live.update(self._table())
            return
        now = time.monotonic()
        last = self._last_plain.setdefault(status.mode, now)
        if now - last >= self._plain_every_s and not status.finished:
            self._last_plain[status.mode] = now
            self._console.print(plain_line(status), highlight=False, soft_wrap=True)

    def step(self, done: int, total: int, label: str) -> None:
        """A sweep's progress over its runs (``runner bench``): a caption under the table on a
        terminal, one line per run elsewhere."""
        if self._quiet:
            return
        elapsed = time.monotonic() - self._began
        left = f", about {elapsed / done * (total - done):,.0f} s left" if 0 < done < total else ""
        self._caption = f"run {min(done + 1, total)}/{total}: {label}{left}"
        if self._live is not None:
            self._live.update(self._table())
        elif done < total:
            self._console.print(f"[{done + 1}/{total}] {label}", highlight=False, soft_wrap=True)

    def _table(self) -> Table:
        table = Table(title="runner: live", title_justify="left", expand=False, caption=self._caption or None)
        for name in ("run", "progress", "done", "failed", "timed out", "jobs/s", "p99 ms", "in flight", "lag ms"):
            table.add_column(name, justify="left" if name == "run" else "right", no_wrap=True)
        table.add_column("jobs/s, recent", no_wrap=True)
        for status in self._rows.values():
            latest: dict[str, Any] = status.latest or {}
            ended = status.done + status.failed + status.timed_out
            table.add_row(
                status.mode,
                f"{ended / status.total:.0%}" if status.total else "-",
                f"{status.done:,}",
                f"{status.failed:,}",
                f"{status.timed_out:,}",
                _num(latest.get("jobs_per_s")),
                _num(latest.get("p99_ms")),
                f"{status.in_flight:,}",
                _num(latest.get("loop_lag_ms")),
                sparkline(status.rates),
            )
        return table


def fan_out(*listeners: Callable[[RunStatus], None] | None) -> Callable[[RunStatus], None]:
    """One progress callback that feeds every listener given (the live view, the metrics)."""
    chosen = [listener for listener in listeners if listener is not None]
    if len(chosen) == 1:
        return chosen[0]

    def feed(status: RunStatus) -> None:
        for listener in chosen:
            listener(status)

    return feed


@contextlib.contextmanager
def live_metrics(port: int | None, host: str) -> Iterator[MetricsExporter | None]:
    """The metrics server while the block runs, if a port was asked for."""
    if port is None:
        yield None
        return
    from runner.engine.exporter import MetricsExporter

    with MetricsExporter(port, host) as exporter:
        yield exporter
