"""Point 5 (command-line and input part): what used to end in a traceback or a hang ends in one
line. Malformed REDIS_URL forms, Celery settings read from the environment at import time (in
``runner`` and in ``celery -A workers.celery_app worker``), spec and sweep files that are FIFOs,
devices, huge or deeply nested, thread mode beyond the OS's thread limit, and a gevent worker that
fails at start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli.main import cli
from runner.engine.inputs import MAX_INPUT_BYTES
from tests.faults.helpers import ROOT
from workers.thread_pool import thread_limit

SECRET = "s3cretpw"
_SAFE = ["--jobs=2", "--io-ms=0", "--cpu-ms=0"]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runner: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k not in ("REDIS_URL", "TARGET_URL")}
    full.update(env or {})
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [full.get("PYTHONPATH"), str(ROOT)]))
    cmd = args if args[0] == sys.executable else [sys.executable, "-m", "runner", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://[::1", "not a valid URL"),
        (f"redis://:{SECRET}@[::1", "not a valid URL"),
        (f"redis://user:{SECRET}@[::1/0?password={SECRET}", "not a valid URL"),
        ("redis://localhost:99999", "out of range"),
        ("redis://localhost:port", "not a valid URL"),
        ("redis://localhost/abc", "database number"),
        (f"redis://localhost/0?db=x&password={SECRET}", "db must be"),
        ("http://localhost:6379", "must start with redis://"),
        ("redis://local host", "spaces"),
    ],
)
@pytest.mark.parametrize("mode_and_mix", [["--mode", "celery"], ["--mix", "redis=1"]], ids=["celery", "redis-jobs"])
def test_malformed_redis_url_is_one_line_exit_2(url: str, says: str, mode_and_mix: list[str]) -> None:
    result = CliRunner().invoke(cli, ["submit", *_SAFE, *mode_and_mix], env={"REDIS_URL": url})
    assert result.exit_code == 2, (result.exception, result.stderr)
    line = _one_line(result.stderr)
    assert "REDIS_URL" in line and says in line and SECRET not in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RUNNER_CELERY_PREFETCH", "abc"),
        ("RUNNER_CELERY_PREFETCH", "0"),
        ("RUNNER_CELERY_PREFETCH", "1_0"),
        ("RUNNER_VISIBILITY_TIMEOUT", "x"),
        ("RUNNER_VISIBILITY_TIMEOUT", "nan"),
        ("RUNNER_VISIBILITY_TIMEOUT", "-1"),
        ("RUNNER_QUEUE", "a queue"),
    ],
)
def test_celery_settings_from_the_environment(variable: str, value: str) -> None:
    """Read when workers.celery_app is imported -- by `runner` and by a cluster's worker alike."""
    submit = _run(["submit", *_SAFE, "--mode", "celery"], {variable: value})
    assert submit.returncode == 2 and variable in _one_line(submit.stderr)
    worker = _run([sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"], {variable: value})
    assert worker.returncode == 2 and variable in _one_line(worker.stderr)


def test_a_worker_with_a_malformed_redis_url_hides_the_password() -> None:
    worker = _run(
        [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"], {"REDIS_URL": f"redis://:{SECRET}@[::1"}
    )
    assert worker.returncode == 2
    assert SECRET not in _one_line(worker.stderr) + worker.stdout


def _huge(path: Path) -> Path:
    path.write_text("# " + "x" * MAX_INPUT_BYTES + "\n")
    return path


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: (os.mkfifo(p / "fifo.toml"), p / "fifo.toml")[1], "not a regular file"),
        (lambda p: Path("/dev/zero"), "not a regular file"),
        (lambda p: Path("/dev/null"), "not a regular file"),
        (lambda p: _huge(p / "huge.toml"), "at most"),
        (lambda p: (p / "deep.toml").write_text("x = " + "[" * 50_000 + "]" * 50_000) and p / "deep.toml", "deeply"),
        (lambda p: (p / "bin.toml").write_bytes(b"\xff\xfe\x00") and p / "bin.toml", "not UTF-8"),
    ],
    ids=["fifo", "dev-zero", "dev-null", "huge", "deep", "binary"],
)
@pytest.mark.parametrize("command", ["submit", "bench"])
def test_spec_and_sweep_files_that_are_not_small_regular_files(
    make: Callable[[Path], Path], says: str, command: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    flag = "--spec" if command == "submit" else "--sweep"
    proc = _run([command, flag, str(path)], timeout=30)  # a FIFO opened for reading would block: the timeout catches it
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert flag in line and says in line


def test_thread_mode_beyond_the_os_thread_limit() -> None:
    room, why = thread_limit()
    # well past the limit: other work on the machine moves it by a few hundred between two readings
    too_many = min(2 * room + 1000, 1_000_000)
    if too_many <= room:  # pragma: no cover -- a machine whose limit is above the flag's own bound
        pytest.skip(f"this machine allows {room} threads")
    result = CliRunner().invoke(cli, ["submit", "--jobs=1", "--mode", "thread", "--concurrency", str(too_many)])
    assert result.exit_code == 2, result.stderr
    line = _one_line(result.stderr)
    assert f"--concurrency {too_many}" in line and "this machine allows about" in line
    assert any(name in line for name in ("RLIMIT_NPROC", "kernel", "cgroup", "vm.max_map_count")), why


def test_the_limit_comes_from_the_machine() -> None:
    room, why = thread_limit()
    assert 0 < room < 1 << 30, (room, why)
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert room < pid_max


def test_gevent_worker_failing_at_start(tmp_path: Path) -> None:
    """A gevent that cannot be imported (shadowed here) stops the worker at start: one line, exit 1,
    nothing left behind."""
    shadow = tmp_path / "gevent"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('gevent is broken on purpose')\n")
    proc = _run(["submit", *_SAFE, "--mode", "gevent"], {"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1
    line = _one_line(proc.stderr)
    assert "gevent worker did not start" in line and "broken on purpose" in line


def test_an_open_loop_schedule_of_weeks_is_refused() -> None:
    """--rate 0.000001 with two jobs would wait 11 days for the second: a typo, not a run."""
    result = CliRunner().invoke(cli, ["submit", "--jobs", "2", "--rate", "0.000001"])
    assert result.exit_code == 2
    assert "--rate" in _one_line(result.stderr) and "days" in result.stderr


@pytest.mark.parametrize("argv", [[], ["cluster"]])
def test_a_bare_command_shows_its_help(argv: list[str]) -> None:
    """Not a usage error squashed onto one line: the help, as with --help."""
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: ") and "Commands:" in result.stdout
