"""The live view: a dashboard read back from a real pseudo-terminal while a run goes, plain
heartbeat lines elsewhere, nothing with --quiet."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import time

from rich.console import Console

from runner.cli.live import LiveView, plain_line, sparkline
from runner.engine.timeline import RunStatus
from tests.faults.helpers import ROOT

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _screen_while_running(args: list[str], seconds: float) -> tuple[str, int]:
    """Run ``runner`` with a pty as its terminal; return what it drew (escapes removed) and its exit code."""
    import fcntl
    import termios

    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS="160", LINES="40")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the runner, with the pty as stdin, stdout and stderr
        os.execvpe(sys.executable, [sys.executable, "-m", "runner", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    drawn, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return _ANSI.sub(b"", drawn).decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_the_dashboard_is_drawn_on_a_terminal_while_the_run_goes() -> None:
    args = ["submit", "--mode", "async", "--jobs", "4000", "--mix", "sleep=1", "--io-ms", "20", "--rate", "1000"]
    screen, code = _screen_while_running(args, 60)
    assert code == 0, screen[-2000:]
    live = screen[: screen.index("runner submit --mode async")]  # what was drawn before the final table
    assert "runner: live" in live and "jobs/s, recent" in live
    rows = [line for line in live.splitlines() if line.strip().startswith("│ async")]
    assert len(rows) >= 2, live[-2000:]  # redrawn as the run went
    row = rows[-1]
    cells = [c.strip() for c in row.strip().strip("│").split("│")]
    assert cells[0] == "async" and cells[1].endswith("%") and any(ch in cells[-1] for ch in "▁▂▃▄▅▆▇█")


def _status(**changes: object) -> RunStatus:
    values: dict[str, object] = {
        "mode": "thread",
        "total": 100,
        "submitted": 60,
        "done": 50,
        "failed": 2,
        "timed_out": 1,
        "in_flight": 7,
        "elapsed_s": 3.2,
        "latest": {"jobs_per_s": 123.4, "p99_ms": 45.6, "loop_lag_ms": 0.5},
        "rates": (1.0, 2.0, 4.0),
    }
    values.update(changes)
    return RunStatus(**values)  # type: ignore[arg-type]


def test_plain_heartbeat_lines_off_a_terminal() -> None:
    out = io.StringIO()
    with LiveView(Console(file=out, force_terminal=False), plain_every_s=0.0) as live:
        live.update(_status())
        live.update(_status(finished=True))
    assert out.getvalue().splitlines() == [plain_line(_status())]
    assert plain_line(_status()) == (
        "thread: 53/100 jobs (3 s), done 50, failed 2, timed out 1, 123 jobs/s, p99 45.6 ms, in flight 7"
    )
    assert sparkline((1.0, 2.0, 4.0)) == "▃▅█" and sparkline(()) == ""


def test_quiet_shows_nothing() -> None:
    out = io.StringIO()
    with LiveView(Console(file=out, force_terminal=True), quiet=True, plain_every_s=0.0) as live:
        live.update(_status())
    assert out.getvalue() == ""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "runner", "submit", "--jobs", "20", "--mix", "sleep=1", "--io-ms", "1", "-q"]
    done = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
