"""Issue 10.2: a coordinator killed without cleaning up (SIGKILL) leaves no process behind. Every
process it started -- pool processes and multiprocessing's resource tracker, Celery nodes and their
prefork children, the gevent worker -- dies within 5 s of it (``workers.lifeline``), and what they
leave in the temp dir is the next run's to remove. (The services it starts, and its scratch
folders: ``test_orphans.py``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.faults.helpers import ROOT, RestartableRedis
from workers.scratch import remove_stale


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("process", []), ("celery", []), ("celery", ["--celery-pool", "gevent"]), ("gevent", []), ("hybrid", [])],
    ids=["process", "celery-prefork", "celery-gevent-pool", "gevent", "hybrid"],
)
def test_children_die_with_a_killed_coordinator(
    tmp_path: Path, mode: str, extra: list[str], restartable_redis: RestartableRedis
) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", mode, "--jobs", "1000000", "--mix", "sleep=1,cpu=1"]
    cmd += ["--io-ms", "20", "--cpu-ms", "1", "--concurrency", "8", "--workers", "2", "--out", str(out), *extra]
    # Celery runs on a Redis of the test's own: the embedded one is the coordinator's service, not a worker.
    env = dict(os.environ, PYTHONPATH=str(ROOT), REDIS_URL=restartable_redis.url)
    tmp = tmp_path / "tmp"  # the run's temp dir: what it leaves there must be the next run's to remove
    tmp.mkdir()
    env["TMPDIR"] = str(tmp)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    started: list[psutil.Process] = []
    try:
        ledger = out / "ledger.jsonl"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not ledger.exists() or ledger.stat().st_size < 5_000):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.05)  # jobs have been finishing for a while: mid-run
        started = psutil.Process(proc.pid).children(recursive=True)
        assert started, "the run should have started worker processes"
        if mode == "celery" and not extra:
            assert len(started) > 2, "two nodes and their prefork children"
        proc.kill()  # the coordinator only, as the OOM killer would: no cleanup runs
        proc.wait()
        killed_at = time.monotonic()
        while time.monotonic() < killed_at + 5 and any(_alive(p) for p in started):
            time.sleep(0.05)
        left = [" ".join(p.cmdline()[:6]) for p in started if _alive(p)]
        assert not left, f"still alive 5 s after the coordinator died: {left}"
        # Its scratch, and what its children made in their temp dir (Celery's prefork pool: pymp-*),
        # all named for the next run's remove_stale: nothing stays behind for good.
        assert all(p.name.startswith("runner-") for p in tmp.iterdir()), sorted(p.name for p in tmp.iterdir())
        remove_stale(str(tmp))
        assert not list(tmp.iterdir())
    finally:
        for child in started:
            if _alive(child):
                child.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
