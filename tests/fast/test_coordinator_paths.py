"""The coordinator's less travelled paths on the stub executor, found by ``make mutate``: open loop
(drivers that wait for a job's intended start are not running a job, so the timeout watchdog must
leave them alone), failed jobs' own latency histogram, and an uninstrumented run
(``benchmarks/overhead.py``) that still accounts for every job but records no latency at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.engine import results as rs
from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor, StubPlan, measured_on_stub


def _spec(**values: Any) -> WorkloadSpec:
    values.setdefault("workers", 2)
    return WorkloadSpec.build(values, ("stub",))


def test_open_loop_drivers_waiting_for_their_first_job_are_not_timed_out(stub: type[StubExecutor]) -> None:
    # 6 jobs at 5/s on 3 drivers: the third waits 0.4 s for its first job, past the 0.2 s timeout.
    spec = _spec(jobs=6, mix="sleep=2,fail=1", io_ms=1, concurrency=3, rate=5, timeout=0.2)
    result = run_mode(spec, "stub", calibration=CALIBRATION).to_json()
    assert result["jobs"] == {"submitted": 6, "done": 4, "failed": 2, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["load"]["model"] == "open" and result["load"]["latency_from"] == "intended start"
    assert result["wall_s"] >= 1.0  # the schedule's last job is due at 5/5 s: the jobs were paced
    by_outcome = result["latency_by_outcome_ms"]
    assert (by_outcome["done"]["count"], by_outcome["failed"]["count"], by_outcome["timed_out"]["count"]) == (4, 2, 0)
    assert by_outcome["failed"]["max"] > 0


def test_open_loop_latency_counts_from_the_intended_start(stub: type[StubExecutor]) -> None:
    # One driver, a job due every 5 ms, each taking 20 ms: the last (due at 55 ms) starts at 220 ms
    # at the earliest, so its latency from the intended start is at least 185 ms; from hand-off, 20.
    spec = _spec(jobs=12, mix="sleep=1", io_ms=20, concurrency=1, rate=200)
    result = run_mode(spec, "stub", calibration=CALIBRATION).to_json()
    assert result["jobs"]["done"] == 12
    assert result["latency_ms"]["max"] >= 185.0
    assert result["coordinator_wait_ms"]["max"] >= 150.0


@pytest.mark.timeout(60)
def test_every_hung_job_of_a_driver_times_out_not_only_the_first(stub: type[StubExecutor], tmp_path: Path) -> None:
    spec = _spec(jobs=3, mix="hang=1", concurrency=1, timeout=0.2)
    result = run_mode(spec, "stub", out_dir=tmp_path, calibration=CALIBRATION).to_json()
    assert result["jobs"]["timed_out"] == 3
    timed_out = result["latency_by_outcome_ms"]["timed_out"]
    assert timed_out["count"] == 3 and 200.0 <= timed_out["max"] < 10_000.0  # from its start, not the clock's
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [(r["status"], r["kind"]) for r in records] == [("timed_out", "hang")] * 3
    assert all(200.0 <= r["latency_ms"] < 10_000.0 for r in records)


def _uninstrumented(spec: WorkloadSpec) -> rs.RunResult:
    return measured_on_stub(spec, instrument=False)


def test_an_uninstrumented_run_accounts_every_job_and_records_no_latency(stub: type[StubExecutor]) -> None:
    # One driver for jobs due every 5 ms that take 20 ms: jobs wait for the driver (a coordinator
    # wait an instrumented run would record), some fail.
    mix = {"mix": "sleep=4,fail=2,hang=1", "io_ms": 20, "concurrency": 1, "timeout": 0.2}
    closed = _uninstrumented(_spec(jobs=14, **mix)).to_json()
    paced = _uninstrumented(_spec(jobs=14, rate=200, **mix)).to_json()
    for result in (closed, paced):
        assert result["jobs"] == {"submitted": 14, "done": 8, "failed": 4, "timed_out": 2, "lost": 0, "duplicates": 0}
        assert {k: v["count"] for k, v in result["latency_by_outcome_ms"].items()} == {
            "done": 0,
            "failed": 0,
            "timed_out": 0,
        }
        assert result["latency_ms"]["max"] == 0.0 and result["service_ms"]["max"] == 0.0
    assert paced["coordinator_wait_ms"]["max"] == 0.0


def test_an_uninstrumented_run_samples_nothing_for_the_calibration_check(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(cpu_s=0.001)
    result = _uninstrumented(_spec(jobs=8, mix="cpu=1", cpu_ms=1, concurrency=2)).to_json()
    assert result["jobs"]["done"] == 8 and result["calibration_check"]["kinds"] == {}


def test_an_uninstrumented_batched_run_records_no_latency(stub: type[StubExecutor]) -> None:
    # Batches record their jobs' latencies apart from single jobs (``BatchRun``): none here either.
    stub.plan = StubPlan(batch=4)
    result = _uninstrumented(_spec(jobs=12, mix="sleep=2,fail=1", io_ms=1, concurrency=4)).to_json()
    assert result["jobs"]["done"] + result["jobs"]["failed"] == 12 and stub.made[-1].batches
    assert {k: v["count"] for k, v in result["latency_by_outcome_ms"].items()} == {
        "done": 0,
        "failed": 0,
        "timed_out": 0,
    }
    assert result["latency_ms"]["max"] == 0.0 and result["service_ms"]["max"] == 0.0
