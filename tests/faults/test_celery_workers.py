"""Point 1: Celery workers die mid-run -- a whole node (SIGKILL to its process group) or one prefork
child -- and no job is lost. Duplicates are whatever really ran twice: the test counts every reply
the workers pushed (Redis MONITOR) and checks the coordinator reports exactly the extra ones."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import psutil

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.faults.helpers import ReplyCounter, RestartableRedis, celery_nodes, kill_group


def _kill_later(delay_s: float, pick: str, killed: list[int], counter: ReplyCounter) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 60
        while not counter.runs and time.monotonic() < deadline:  # jobs are flowing: the run has begun
            time.sleep(0.01)
        time.sleep(delay_s)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            nodes = celery_nodes()
            if len(nodes) >= 2:
                node = nodes[0]
                if pick == "node":
                    killed.append(node.pid)
                    kill_group(node.pid, signal.SIGKILL)
                else:
                    children = node.children()
                    if children:
                        killed.append(children[0].pid)
                        children[0].kill()
            time.sleep(0.05)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _run_with_kill(
    redis_url: str, pick: str, jobs: int, mix: str = "sleep=1", delay_s: float = 1.0, **more: Any
) -> tuple[dict[str, Any], ReplyCounter, list[int]]:
    # --timeout 12: visibility timeout 6 s, so a dead node's job is redelivered while the
    # coordinator still waits for it.
    spec = WorkloadSpec.build(
        {"jobs": jobs, "mix": mix, "io_ms": 20, "celery_workers": 2, "timeout": 12, **more}, ("celery",)
    )
    counter = ReplyCounter(redis_url)
    killed: list[int] = []
    try:
        killer = _kill_later(delay_s, pick, killed, counter)
        result = run_mode(spec, "celery").to_json()
        killer.join(1)
    finally:
        time.sleep(0.3)
        counter.close()
    return result, counter, killed


def test_killing_a_whole_worker_node_loses_no_job(restartable_redis: RestartableRedis) -> None:
    result, counter, killed = _run_with_kill(restartable_redis.url, "node", 2000)
    assert killed, "no worker node was killed"
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    jobs = result["jobs"]
    assert jobs["lost"] == 0 and jobs["done"] == 2000 and jobs["failed"] == 0 and jobs["timed_out"] == 0
    assert jobs["submitted"] == 2000
    # Exactly what happened: every job replied at least once, and the extra replies are the duplicates.
    assert set(counter.runs) == set(range(2000))
    extra = sum(n - 1 for n in counter.runs.values())
    assert jobs["duplicates"] == extra
    print(f"node kill: duplicates={extra}, by_worker={result['by_worker']}")


def test_killing_a_prefork_child_loses_no_job(restartable_redis: RestartableRedis) -> None:
    result, counter, killed = _run_with_kill(restartable_redis.url, "child", 600)
    assert killed, "no prefork child was killed"
    jobs = result["jobs"]
    assert jobs["lost"] == 0 and jobs["done"] == 600 and jobs["failed"] == 0 and jobs["timed_out"] == 0
    assert set(counter.runs) == set(range(600))
    assert jobs["duplicates"] == sum(n - 1 for n in counter.runs.values())
    print(f"child kill: duplicates={jobs['duplicates']}")


def test_killing_a_prefork_child_under_whole_batches_loses_no_job(restartable_redis: RestartableRedis) -> None:
    # No-op jobs with --batch 0 (Celery's default is one task per job): after the first few they go
    # as whole batches (runner.run_compact), one reply each.
    result, counter, killed = _run_with_kill(
        restartable_redis.url, "child", 60_000, "noop=1", 0.3, concurrency=1000, batch=0
    )
    assert killed, "no prefork child was killed"
    jobs = result["jobs"]
    assert jobs["lost"] == 0 and jobs["done"] == 60_000 and jobs["failed"] == 0 and jobs["timed_out"] == 0
    assert result["executor"]["batching"]["jobs_per_task"] > 10  # whole batches did go
    assert set(counter.runs) == set(range(60_000))
    assert jobs["duplicates"] == sum(n - 1 for n in counter.runs.values())
    print(f"child kill under batches: duplicates={jobs['duplicates']}")


def test_ledger_keeps_one_outcome_per_job_and_counts_the_rest_as_duplicates() -> None:
    from runner.engine.ledger import DONE, FAILED, Ledger

    ledger = Ledger(3)
    for job_id in range(3):
        ledger.submit(job_id)
    ledger.finish(0, DONE, "sleep", 0.01, worker="w1")
    ledger.finish(0, DONE, "sleep", 0.02, worker="w2")  # a second reply for job 0
    ledger.finish(1, FAILED, "fail", 0.01, reason="boom")
    ledger.finish(1, DONE, "fail", 0.01, worker="w2")  # a late success after the failure
    ledger.finish(2, DONE, "sleep", 0.01, worker="w1")
    assert ledger.summary() == {"submitted": 3, "done": 2, "failed": 1, "timed_out": 0, "lost": 0, "duplicates": 2}
    assert ledger.by_worker == {"w1": 2}
