"""What happens to the worker of a hung job, per executor, and to the batch-mates of a job whose
process died. Each workload is sized so that, had the stuck worker not been freed or replaced,
the jobs after the hung one would have nobody to run them and would time out too."""

from __future__ import annotations

from typing import Any

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from workers.jobs import WORKER_DIED

_TIMED_OUT = "timed out after 1 s"


def _run(mode: str, **values: Any) -> dict[str, Any]:
    return run_mode(WorkloadSpec.build(values, (mode,)), mode).to_json()


def test_process_a_hung_jobs_process_is_killed_and_replaced() -> None:
    # One pool process: the hung job holds it until the timeout; unless it is killed and the pool
    # rebuilt, the 9 sleeps behind it could never run.
    # The timeout leaves room for the rebuild (fresh interpreters: seconds on 2 busy cores), which
    # the job after the hung one waits for.
    result = _run("process", jobs=10, mix="hang=1,sleep=9", io_ms=5, timeout=8, workers=1, concurrency=1)
    assert result["jobs"] == {"submitted": 10, "done": 9, "failed": 0, "timed_out": 1, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"timed out after 8 s": 1}
    assert len(result["by_worker"]) == 2  # the process before the hung job, and the one that replaced it


def test_thread_a_hung_jobs_thread_is_written_off_and_replaced() -> None:
    # Two threads, two hung jobs among the first three: without replacements both threads are stuck.
    result = _run("thread", jobs=12, mix="hang=1,sleep=2", io_ms=5, timeout=1, concurrency=2)
    assert result["jobs"] == {"submitted": 12, "done": 8, "failed": 0, "timed_out": 4, "lost": 0, "duplicates": 0}
    assert result["failures"] == {_TIMED_OUT: 4}
    # Done jobs ran on the first two threads and on the replacements started for stuck ones.
    assert len(result["by_worker"]) > 2


def test_celery_the_hard_time_limit_frees_a_node_stuck_on_a_hung_job() -> None:
    # One node with one prefork child: Celery's hard time limit (0.4 x --timeout) kills the child
    # running the hung job, and the node goes on with the rest.
    result = _run("celery", jobs=8, mix="hang=1,sleep=7", io_ms=5, timeout=4, celery_workers=1, concurrency=1)
    assert result["jobs"] == {"submitted": 8, "done": 7, "failed": 0, "timed_out": 1, "lost": 0, "duplicates": 0}


def test_process_batch_mates_of_a_crashed_job_are_run_again() -> None:
    # Batches of 8: the batch with the crash job kills its process; the other 7 jobs of the batch
    # are sent again and done, the crash job is tried once more and fails.
    result = _run("process", jobs=16, mix="noop=15,crash=1", batch=8, workers=2, concurrency=16)
    assert result["kinds"] == {"noop": 15, "crash": 1}
    assert result["jobs"] == {"submitted": 16, "done": 15, "failed": 1, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {WORKER_DIED: 1}
    assert result["executor"]["batching"]["jobs_per_task"] > 1
