"""Celery-specific behaviour: existing workers (a cluster), unreachable brokers, JSON only."""

from __future__ import annotations

import time

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.cli import run_cli
from workers.celery_app import make_app
from workers.clients import redact


def test_uses_already_running_workers_when_workers_is_zero(redis_url: str, cluster_worker: object) -> None:
    spec = WorkloadSpec.build(
        {"jobs": 50, "mix": "sleep=1,cpu=1", "io_ms": 5, "cpu_ms": 1, "celery_workers": 0}, ("celery",)
    )
    result = run_mode(spec, "celery").to_json()
    assert result["jobs"]["done"] == 50 and result["jobs"]["lost"] == 0
    assert list(result["by_worker"]) == [next(iter(result["by_worker"]))]
    assert next(iter(result["by_worker"])).startswith("cluster-test@")
    assert result["executor"]["broker"] == redact(redis_url)  # never the password, even in the result


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
        ("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
    ],
)
def test_unreachable_redis_is_one_line_naming_the_url(url: str, shown: str) -> None:
    began = time.monotonic()
    proc = run_cli("submit", "--mode", "celery", "--jobs", "5", env={"REDIS_URL": url}, timeout=60)
    assert time.monotonic() - began < 30
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert shown in lines[0] and "REDIS_URL" in lines[0]
    assert "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout  # the password is never shown


def test_no_cluster_workers_is_a_clear_message(redis_url: str) -> None:
    spec = WorkloadSpec.build({"jobs": 5, "celery_workers": 0}, ("celery",))
    from workers.errors import ServiceError

    with pytest.raises(ServiceError, match=r"celery -A workers\.celery_app worker"):
        run_mode(spec, "celery")


def test_app_accepts_json_only() -> None:
    app = make_app("redis://127.0.0.1:1/0")
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1


@pytest.mark.parametrize("pool", ["threads", "gevent"])
def test_celery_pool_choice(pool: str) -> None:
    spec = WorkloadSpec.build(
        {
            "jobs": 60,
            "mix": "sleep=1,cpu=1",
            "io_ms": 50,
            "cpu_ms": 1,
            "concurrency": 30,
            "celery_workers": 1,
            "celery_pool": pool,
        },
        ("celery",),
    )
    result = run_mode(spec, "celery").to_json()
    assert result["jobs"]["done"] == 60 and result["jobs"]["lost"] == 0, (result["jobs"], result["failures"])
    assert result["executor"]["pool"] == pool
    # One node with 30 threads or greenlets overlaps the 50 ms waits: far below 30 x 50 ms one at a time.
    assert result["wall_s"] < 1.5


def test_small_jobs_go_in_batches_with_batch_0_and_each_is_still_accounted_for() -> None:
    values = {"jobs": 3000, "mix": "noop=1", "concurrency": 500, "celery_workers": 2, "batch": 0}
    batched = run_mode(WorkloadSpec.build(values, ("celery",)), "celery").to_json()
    assert batched["jobs"]["done"] == 3000 and batched["jobs"]["lost"] == 0
    assert batched["executor"]["batching"]["jobs_per_task"] > 2
    assert sum(batched["by_worker"].values()) == 3000


def test_by_default_every_job_is_its_own_task_as_users_send_them() -> None:
    # No --batch: Celery sends one task per job however cheap the jobs (README: "Batching").
    values = {"jobs": 300, "mix": "noop=1", "concurrency": 100, "celery_workers": 2}
    spec = WorkloadSpec.build(values, ("celery",))
    assert spec.batch is None
    one_by_one = run_mode(spec, "celery").to_json()
    assert one_by_one["executor"]["batching"] == {"batch": 1, "tasks_sent": 300, "jobs_per_task": 1.0}
    assert one_by_one["spec"]["batch"] is None and one_by_one["jobs"]["done"] == 300
