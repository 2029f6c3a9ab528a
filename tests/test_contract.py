"""Contract tests: the same workloads through every executor, every job accounted for."""

from __future__ import annotations

from typing import Any

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from workers.registry import MODES

pytestmark = pytest.mark.parametrize("mode", MODES)


def _run(mode: str, **values: Any) -> dict[str, Any]:
    values.setdefault("workers", 2)
    return run_mode(WorkloadSpec.build(values, (mode,)), mode).to_json()


def _adds_up(result: dict[str, Any]) -> dict[str, int]:
    jobs: dict[str, int] = result["jobs"]
    assert jobs["submitted"] == jobs["done"] + jobs["failed"] + jobs["timed_out"]
    assert jobs["lost"] == 0
    return jobs


def test_every_kind_runs_and_is_counted(mode: str) -> None:
    result = _run(mode, jobs=120, mix="sleep=1,http=1,redis=1,cpu=1,hash=1,mixed=1", io_ms=5, cpu_ms=1)
    jobs = _adds_up(result)
    assert jobs == {"submitted": 120, "done": 120, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["kinds"] == dict.fromkeys(["sleep", "http", "redis", "cpu", "hash", "mixed"], 20)
    assert result["mode"] == mode and result["schema_version"] == 1
    assert result["latency_ms"]["p50"] > 0 and result["throughput_jobs_per_s"] > 0
    assert sum(result["by_worker"].values()) == 120


def test_failures_carry_type_and_message(mode: str) -> None:
    result = _run(mode, jobs=40, mix="sleep=3,fail=1", io_ms=1)
    jobs = _adds_up(result)
    assert jobs["failed"] == 10 and jobs["done"] == 30
    assert result["failures"] == {"InjectedFailure: a fail job raised on purpose": 10}


def test_timeouts_end_timed_out_and_the_run_goes_on(mode: str) -> None:
    # More workers than hung jobs: a hung job holds its worker, and jobs queued behind it would
    # (rightly) time out too.
    result = _run(mode, jobs=8, mix="sleep=1,fail=1,cpu=2", io_ms=3000, cpu_ms=1, timeout=0.5, concurrency=8, workers=4)
    jobs = _adds_up(result)
    assert jobs["timed_out"] == 2 and jobs["failed"] == 2 and jobs["done"] == 4
    assert result["failures"]["timed out after 0.5 s"] == 2


def test_in_flight_reaches_but_never_exceeds_concurrency(mode: str) -> None:
    result = _run(mode, jobs=60, mix="sleep=1", io_ms=20, concurrency=3)
    _adds_up(result)
    assert result["peak_in_flight"] == 3  # the ledger's exact peak: never 4, and the bound is used
    # 60 jobs of 20 ms, 3 at a time: at least 20 rounds of 20 ms.
    assert result["wall_s"] >= 0.4


def test_small_jobs_keep_their_own_outcomes_when_batched(mode: str) -> None:
    # Enough cheap jobs for the pool and Celery executors to start batching them: a failing job
    # inside a batch fails alone, and every job is still counted once.
    # batch 0: sized from cost for every executor (Celery's default is one task per job)
    result = _run(mode, jobs=2000, mix="noop=8,fail=1", concurrency=200, batch=0)
    jobs = _adds_up(result)
    assert jobs["failed"] == 222 and jobs["done"] == 1778 and jobs["duplicates"] == 0
    assert result["failures"] == {"InjectedFailure: a fail job raised on purpose": 222}
    if mode in ("process", "celery"):  # the executors that batch: it did happen
        batching = result["executor"]["batching"]
        assert batching["jobs_per_task"] > 1 and batching["tasks_sent"] < 2000
