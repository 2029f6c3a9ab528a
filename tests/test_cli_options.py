"""Options and environment variables through a real ``python -m runner`` (or a real cluster
worker): --celery-pool, --batch, --mode all, RUNNER_QUEUE, RUNNER_VISIBILITY_TIMEOUT, and
``runner cluster sample`` without a Docker engine."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cli import cli_env, run_cli
from workers.registry import MODES


def _docs(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_celery_pool_flag_starts_nodes_with_that_pool() -> None:
    proc = run_cli(
        "submit", "--mode", "celery", "--celery-pool", "threads", "--celery-workers", "1", "--jobs", "20",
        "--mix", "sleep=1", "--io-ms", "5", "--concurrency", "4", "--json",
    )  # fmt: skip
    (doc,) = _docs(proc)
    assert doc["jobs"]["done"] == 20 and doc["executor"]["pool"] == "threads"
    assert doc["spec"]["celery_pool"] == "threads" and len(doc["executor"]["nodes"]) == 1


def test_batch_flag_sets_jobs_per_pool_task() -> None:
    common = ("submit", "--mode", "process", "--workers", "1", "--jobs", "200", "--mix", "noop=1", "--json")
    (one_by_one,) = _docs(run_cli(*common, "--batch", "1"))
    assert one_by_one["executor"]["batching"] == {"batch": 1, "tasks_sent": 200, "jobs_per_task": 1.0}
    (batched,) = _docs(run_cli(*common, "--batch", "50"))
    assert batched["executor"]["batching"]["batch"] == 50 and batched["jobs"]["done"] == 200
    assert batched["executor"]["batching"]["jobs_per_task"] > 1


def test_mode_all_runs_the_six_executors_one_json_line_each() -> None:
    proc = run_cli(
        "submit", "--mode", "all", "--jobs", "12", "--mix", "sleep=1", "--io-ms", "2", "--workers", "1",
        "--concurrency", "4", "--json", timeout=300,
    )  # fmt: skip
    docs = _docs(proc)
    assert tuple(d["mode"] for d in docs) == MODES
    assert all(d["jobs"]["done"] == 12 and d["jobs"]["lost"] == 0 for d in docs)


@pytest.fixture()
def custom_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """RUNNER_QUEUE for the test, set before the cluster worker starts (it reads the environment)."""
    monkeypatch.setenv("RUNNER_QUEUE", "runner-test-queue")
    yield "runner-test-queue"


def test_runner_queue_routes_jobs_to_workers_on_that_queue(custom_queue: str, cluster_worker: object) -> None:
    # A cluster whose workers consume RUNNER_QUEUE: the coordinator, given the same environment,
    # must send there (compose sets RUNNER_QUEUE for every service).
    proc = run_cli("submit", "--mode", "celery", "--celery-workers", "0", "--jobs", "10", "--mix", "sleep=1", "--json")
    (doc,) = _docs(proc)
    assert doc["jobs"]["done"] == 10 and all(w.startswith("cluster-test@") for w in doc["by_worker"])


def test_without_runner_queue_the_workers_queue_gets_nothing(custom_queue: str, cluster_worker: object) -> None:
    # The worker answers pings, but consumes another queue: the jobs wait on 'runner' and time out.
    proc = run_cli(
        "submit", "--mode", "celery", "--celery-workers", "0", "--jobs", "3", "--mix", "sleep=1", "--timeout", "2",
        "--json", env={"RUNNER_QUEUE": None},
    )  # fmt: skip
    (doc,) = _docs(proc)
    assert doc["jobs"]["timed_out"] == 3 and doc["jobs"]["done"] == 0


def test_worker_side_environment_sets_queue_and_visibility_timeout() -> None:
    code = (
        "from workers.celery_app import app; c = app.conf; "
        "print(c.task_default_queue, c.broker_transport_options['visibility_timeout'])"
    )
    env = cli_env({"RUNNER_QUEUE": "q7", "RUNNER_VISIBILITY_TIMEOUT": "7.5", "REDIS_URL": "redis://127.0.0.1:1/0"})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["q7", "7.5"], out.stderr
    env = cli_env({"RUNNER_QUEUE": None, "RUNNER_VISIBILITY_TIMEOUT": None, "REDIS_URL": "redis://127.0.0.1:1/0"})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["runner", "3600.0"], out.stderr


def test_cluster_sample_without_a_docker_engine_is_one_line_exit_1(tmp_path: Any) -> None:
    proc = run_cli(
        "cluster", "sample", "-p", "nothing", "--out", str(tmp_path), "--timeout", "1",
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
    )  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runner: error: cannot reach the Docker engine"), proc.stderr
    assert list(tmp_path.iterdir()) == []
