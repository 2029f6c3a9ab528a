"""Nothing outlives the coordinator: a closed terminal (SIGHUP) or SIGQUIT is a stop like SIGTERM;
after a SIGKILL, which nothing can catch, the services it started (embedded Redis, the HTTP target)
die within 5 s through their parent-death signal; and the scratch folders of such a run are removed
at the next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.faults.helpers import ROOT
from workers.scratch import remove_stale

_SUBMIT = [sys.executable, "-m", "runner", "submit"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TARGET_URL")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _wait_for_ledger(proc: subprocess.Popen[bytes], ledger: Path, size: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not ledger.exists() or ledger.stat().st_size < size):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    assert ledger.exists() and ledger.stat().st_size >= size, "the run did not get going"


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_hangup_and_quit_stop_the_run_like_sigterm(tmp_path: Path, sig: signal.Signals) -> None:
    cmd = [*_SUBMIT, "--mode", "thread", "--jobs", "1000000", "--mix", "sleep=1", "--io-ms", "5"]
    cmd += ["--concurrency", "8", "--json", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    try:
        _wait_for_ledger(proc, tmp_path / "ledger.jsonl", 5_000)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, stderr.decode()
    assert stderr.decode().strip().splitlines() == [stderr.decode().strip()]
    assert stderr.decode().startswith(f"runner: error: interrupted by {sig.name}")
    result = json.loads(stdout)
    jobs = result["jobs"]
    assert result["stopped"]["reason"] == sig.name and jobs["lost"] == 0
    assert jobs["submitted"] == jobs["done"] + jobs["failed"] + jobs["timed_out"] > 0


def test_services_die_within_5_s_of_a_sigkilled_coordinator(tmp_path: Path) -> None:
    cmd = [*_SUBMIT, "--mode", "thread", "--jobs", "1000000", "--mix", "http=1,redis=1", "--io-ms", "5"]
    cmd += ["--concurrency", "8", "--json", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    try:
        _wait_for_ledger(proc, tmp_path / "ledger.jsonl", 5_000)
        started = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "redis-server" in names and "runner target" in names, names
        proc.kill()  # only the coordinator: its children get no signal from us
        proc.wait()
        deadline = time.monotonic() + 5
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _alive(started)
        assert not left, [" ".join(p.cmdline()) for p in left]
    finally:
        for child in psutil.Process().children(recursive=True):
            if child.pid != os.getpid() and "runner" in " ".join(child.cmdline()):
                child.kill()


def test_scratch_of_dead_runs_is_removed_at_the_next_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    stale_dir = tmp_path / f"runner-redis-{gone.pid}-abc123"
    stale_dir.mkdir()
    (stale_dir / "redis.conf").write_text("requirepass x\n")
    stale_file = tmp_path / f"runner-gevent-{gone.pid}-abc123.log"
    stale_file.write_text("log")
    ours = tmp_path / f"runner-celery-{os.getpid()}-abc123"  # a live run's: kept
    ours.mkdir()
    unrelated = tmp_path / "runner-notes.txt"
    unrelated.write_text("kept")

    removed = remove_stale(str(tmp_path))

    assert sorted(removed) == sorted([stale_dir, stale_file])
    assert not stale_dir.exists() and not stale_file.exists() and ours.exists() and unrelated.exists()


def test_scratch_named_before_pids_goes_once_a_day_old(tmp_path: Path) -> None:
    # Earlier versions named scratch runner-<what>-<random>: no pid to ask, so age decides.
    day_old = time.time() - 86_500
    old_dir, old_log = tmp_path / "runner-celery-3g_q0f19", tmp_path / "runner-gevent-4crjfqsx.log"
    old_dir.mkdir()
    old_log.write_text("log")
    fresh = tmp_path / "runner-redis-0i8er6jp"  # may belong to an older runner still running
    fresh.mkdir()
    lookalike = tmp_path / "runner-notes-abcdefgh"  # not a kind runner ever made
    lookalike.mkdir()
    for path in (old_dir, old_log, lookalike):
        os.utime(path, (day_old, day_old))

    assert sorted(remove_stale(str(tmp_path))) == sorted([old_dir, old_log])
    assert fresh.exists() and lookalike.exists()


def test_a_run_removes_stale_scratch_in_the_temp_dir(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"runner-redis-{gone.pid}-zz9"
    stale.mkdir()
    env = dict(_env(), TMPDIR=str(tmp_path))
    done = subprocess.run(
        [*_SUBMIT, "--mode", "async", "--jobs", "10", "--mix", "sleep=1", "--io-ms", "1", "--json"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert not stale.exists()
