"""Issue 12, point 6: every mistake in a user job's reference, inputs or setup ends before any job
runs with one line on stderr and exit 2, never a traceback; during a run, a function that raises
fails with its type and message, one that hangs times out, one that kills its process goes
through the executor's crash handling."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.cli import run_cli

MODULE = """
import os
import signal
import time

NOT_A_FUNCTION = 5


def one(x):
    return x


def two(a, b):
    return a + b


async def a1(x):
    return x


async def a2(x):
    return x


def raw_bytes():
    yield b"raw"


def failing_setup():
    raise OSError("no database here")


def hang(x):
    time.sleep(3600)


def die(x):
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("badjobs")
    (root / "badmod.py").write_text(textwrap.dedent(MODULE))
    (root / "broken.py").write_text("raise RuntimeError('import-time failure')\n")
    (root / "notjson.jsonl").write_text("[1]\nnot json\n")
    (root / "word.jsonl").write_text('"a"\n')
    (root / "empty.jsonl").write_text("\n")
    return root


CASES = {
    "module not found": (["--job", "r=nomodule:f"], "module 'nomodule' not found"),
    "module raises on import": (["--job", "r=broken:f"], "importing 'broken' raised RuntimeError"),
    "attribute missing": (["--job", "r=badmod:missing"], "has no attribute 'missing'"),
    "not callable": (["--job", "r=badmod:NOT_A_FUNCTION"], "is not callable"),
    "no :FUNCTION": (["--job", "r=badmod"], "names no function"),
    "no = at all": (["--job", "badmod:one"], "expected KIND=MODULE:FUNCTION"),
    "empty kind": (["--job", "=badmod:one"], "a job kind needs a name"),
    "kind clashes with a built-in": (["--job", "cpu=badmod:one"], "is a built-in kind"),
    "two async functions as a pair": (["--job", "r=badmod:a1,a2"], "a pair is one def and one async def"),
    "inputs file missing": (["--job", "r=badmod:one", "--inputs", "missing.jsonl"], "no such file"),
    "inputs not JSON lines": (["--job", "r=badmod:one", "--inputs", "notjson.jsonl"], "line 2 is not JSON"),
    "inputs empty": (["--job", "r=badmod:one", "--inputs", "empty.jsonl"], "gives no inputs"),
    "first input the signature rejects": (
        ["--job", "r=badmod:two", "--inputs", "word.jsonl"],
        "rejects the first input 'a'",
    ),
    "first input celery cannot send": (
        ["--mode", "celery", "--job", "r=badmod:one", "--inputs", "badmod:raw_bytes", "--jobs", "2"],
        "celery sends inputs as JSON",
    ),
    "first input gevent cannot send": (
        ["--mode", "gevent", "--job", "r=badmod:one", "--inputs", "badmod:raw_bytes", "--jobs", "2"],
        "gevent sends inputs as JSON",
    ),
    "generator module missing": (["--job", "r=badmod:one", "--inputs", "nomodule:gen"], "module 'nomodule' not found"),
    "setup without :FUNCTION": (["--job", "r=badmod:one", "--setup", "badmod"], "names no function"),
    "setup that raises": (["--job", "r=badmod:one", "--setup", "badmod:failing_setup"], "raised OSError"),
    "setup that raises in pool processes": (
        ["--mode", "process", "--job", "r=badmod:one", "--setup", "badmod:failing_setup"],
        "raised OSError: no database here",
    ),
    "setup that raises in the gevent worker": (
        ["--mode", "gevent", "--job", "r=badmod:one", "--setup", "badmod:failing_setup"],
        "raised OSError: no database here",
    ),
    "setup that raises in Celery's prefork children": (
        ["--mode", "celery", "--job", "r=badmod:one", "--setup", "badmod:failing_setup"],
        "raised OSError: no database here",
    ),
    "setup that raises in a Celery gevent node": (
        ["--mode", "celery", "--celery-pool", "gevent", "--job", "r=badmod:one", "--setup", "badmod:failing_setup"],
        "raised OSError: no database here",
    ),
    "setup that raises in a Celery threads node": (
        ["--mode", "celery", "--celery-pool", "threads", "--job", "r=badmod:one", "--setup", "badmod:failing_setup"],
        "raised OSError: no database here",
    ),
    "inputs without a user job": (["--inputs", "word.jsonl"], "there is no user job"),
    "mix naming an unknown kind": (["--job", "r=badmod:one", "--mix", "r=1,zz=1"], "unknown job kind 'zz'"),
    "path that is not a directory": (["--job", "r=badmod:one", "--path", "word.jsonl"], "--path"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_user_job_input_is_one_line_and_exit_2(case: str, where: Path) -> None:
    args, expected = CASES[case]
    args = [str(where / a) if a.endswith(".jsonl") else a for a in args]
    if "--path" not in args:
        args += ["--path", str(where)]
    proc = run_cli("submit", "-q", "--jobs", "3", *args, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runner: error:"), proc.stderr
    assert expected in lines[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""  # no run began


def _run(where: Path, *args: str) -> dict[str, object]:
    proc = run_cli("submit", "-q", "--json", "--path", str(where), "--workers", "1", *args, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_hanging_function_times_out(mode: str, where: Path) -> None:
    result = _run(
        where, "--mode", mode, "--job", "h=badmod:hang", "--jobs", "2", "--timeout", "1", "--concurrency", "2"
    )
    assert result["jobs"] == {"submitted": 2, "done": 0, "failed": 0, "timed_out": 2, "lost": 0, "duplicates": 0}


@pytest.mark.parametrize("mode", ["process", "celery", "gevent"])
def test_a_function_that_kills_its_process_goes_through_crash_handling(mode: str, where: Path) -> None:
    result = _run(
        where,
        "--mode",
        mode,
        "--job",
        "d=badmod:die",
        "--mix",
        "d=1,sleep=3",
        "--io-ms",
        "1",
        "--jobs",
        "8",
        "--concurrency",
        "1",
    )
    jobs = result["jobs"]
    assert isinstance(jobs, dict) and jobs["submitted"] == 8 and jobs["lost"] == 0
    assert jobs["failed"] == 2 and jobs["done"] == 6  # the killers fail ("worker died"); the rest run
    assert result["failures"] == {"worker died: the process running it exited abruptly": 2}
