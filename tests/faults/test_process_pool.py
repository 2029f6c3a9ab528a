"""A process-pool worker dies mid-run (SIGKILL from outside, or a job that kills its own
process). The pool is rebuilt, the jobs in flight are sent again, and the run goes on; a job whose
process dies on its retry too fails with "worker died"."""

from __future__ import annotations

import threading
import time

import psutil

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from workers.jobs import WORKER_DIED


def _pool_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "multiprocessing" in cmd and "resource_tracker" not in cmd:
            found.append(proc)
    return found


def test_a_killed_pool_worker_is_replaced_and_no_job_is_lost() -> None:
    killed: list[int] = []
    before_kill: set[int] = set()
    finished: list[int] = []  # jobs finished, as the coordinator last reported

    def kill_one() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not finished or finished[-1] < 50):
            time.sleep(0.02)  # mid-run: 50 of 300 jobs done
        pool = _pool_processes()
        before_kill.update(p.pid for p in pool)
        victim = pool[0]
        killed.append(finished[-1])
        killed.append(victim.pid)
        victim.kill()

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    spec = WorkloadSpec.build(
        {"jobs": 300, "mix": "sleep=1", "io_ms": 20, "workers": 2, "concurrency": 4}, ("process",)
    )
    result = run_mode(spec, "process", progress=lambda status: finished.append(status.done + status.failed)).to_json()
    killer.join(5)
    assert killed, "no pool process was killed"
    done_at_kill, victim_pid = killed
    assert 50 <= done_at_kill < 300, "the kill was not mid-run"
    assert result["jobs"] == {"submitted": 300, "done": 300, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    # The work went on in processes started after the kill: a rebuilt pool, not the survivor alone.
    assert f"pid-{victim_pid}" in result["by_worker"]
    assert any(worker not in {f"pid-{pid}" for pid in before_kill} for worker in result["by_worker"])
    assert sum(result["by_worker"].values()) == 300


def test_a_job_that_kills_its_process_is_retried_once_then_fails() -> None:
    # 3 crash jobs among 57 sleeps: each crash breaks the pool twice (first run, retry).
    spec = WorkloadSpec.build(
        {"jobs": 60, "mix": "sleep=19,crash=1", "io_ms": 10, "workers": 2, "concurrency": 4}, ("process",)
    )
    result = run_mode(spec, "process").to_json()
    assert result["kinds"] == {"sleep": 57, "crash": 3}
    assert result["jobs"] == {"submitted": 60, "done": 57, "failed": 3, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {WORKER_DIED: 3}
