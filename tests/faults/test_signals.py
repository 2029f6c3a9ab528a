"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM mid-run.
The run stops dispatching, gives in-flight jobs a moment, marks the rest failed ("interrupted"),
writes the partial result, leaves no process behind (pool processes, Celery nodes, the embedded
Redis) and exits 130 / 143."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.cli import spawn_cli


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize(
    ("mode", "sig", "whole_group"),
    [
        ("process", signal.SIGINT, True),
        ("async", signal.SIGINT, True),
        ("thread", signal.SIGTERM, False),
        ("celery", signal.SIGTERM, False),
        ("hybrid", signal.SIGINT, True),
        ("gevent", signal.SIGTERM, False),
    ],
)
def test_signal_mid_run_stops_cleanly(tmp_path: Path, mode: str, sig: signal.Signals, whole_group: bool) -> None:
    out = tmp_path / "out"
    # One job in 401 hangs (the first is job 200): it is in flight at the signal and stays so past the grace.
    args = ["submit", "--mode", mode, "--jobs", "1000000", "--mix", "sleep=400,hang=1"]
    args += ["--io-ms", "20", "--concurrency", "8", "--workers", "2", "--json", "--out", str(out)]
    # celery: the embedded Redis, which must be stopped too
    proc = spawn_cli(*args, env={"REDIS_URL": None})
    try:
        ledger = out / "ledger.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not ledger.exists() or ledger.stat().st_size < 20_000):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.05)  # jobs have been finishing for a while: mid-run
        started = _descendants(proc.pid)
        if mode in ("process", "celery", "hybrid", "gevent"):
            assert started, "the run should have started worker processes"
        if whole_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, stderr.decode()
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"runner: error: interrupted by {sig.name}"), lines
    assert "Traceback" not in stderr.decode()

    result = json.loads(stdout)
    print(f"{mode} {sig.name}: jobs={result['jobs']} stopped={result['stopped']}")
    assert json.loads((out / "result.json").read_text()) == result
    jobs = result["jobs"]
    assert jobs["submitted"] == jobs["done"] + jobs["failed"] + jobs["timed_out"]
    assert jobs["lost"] == 0 and jobs["timed_out"] == 0 and 0 < jobs["submitted"] < 1_000_000
    assert result["stopped"] == {"reason": sig.name, "not_submitted": 1_000_000 - jobs["submitted"]}
    records = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert len(records) == jobs["submitted"] and len({r["id"] for r in records}) == jobs["submitted"]
    # The sleep jobs in flight finished within the grace period; the hung ones were marked failed.
    hung = [r for r in records if r["kind"] == "hang"]
    assert hung and all(r["status"] == "done" for r in records if r["kind"] == "sleep")
    assert {r["reason"] for r in hung} == {f"interrupted by {sig.name} before it finished"}
    assert jobs["failed"] == len(hung) and jobs["done"] == jobs["submitted"] - len(hung)

    deadline = time.monotonic() + 5  # multiprocessing's resource tracker ends when it sees EOF
    while (left := [p for p in started if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [p.name() for p in left]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_while_celery_workers_start_stops_them(tmp_path: Path) -> None:
    proc = spawn_cli("submit", "--mode", "celery", "--jobs", "100", "--json", env={"REDIS_URL": None})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            "celery" in " ".join(_cmdline(p)) for p in _descendants(proc.pid)
        ):
            time.sleep(0.05)
        started = _descendants(proc.pid)  # embedded Redis and Celery nodes still booting
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143 and stdout == b""
    assert (
        stderr.decode().strip() == "runner: error: interrupted by SIGTERM while starting the executor; no job was sent"
    )
    deadline = time.monotonic() + 5
    while (left := [p for p in started if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [p.name() for p in left]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []
