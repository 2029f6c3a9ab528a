"""What the coordinator hands each job and writes in each result, on the stub executor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from runner import __version__
from runner.engine.coordinator import check_modes, make_jobs, run_mode
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor, StubPlan
from workers.errors import InputError
from workers.jobs import Job


class _Places:
    """Where http and redis jobs would go (the real LocalServices is refused in this tier)."""

    def target_url(self) -> str:
        return "http://target.test"

    def redis_url(self) -> str:
        return "redis://redis.test/0"


def test_each_job_carries_its_kind_io_calibrated_units_and_target() -> None:
    spec = WorkloadSpec.build(
        {"jobs": 5, "mix": "sleep=1,cpu=1,hash=1,mixed=1,noop=1", "io_ms": 4, "cpu_ms": 3},
        ("async",),
    )
    jobs = list(make_jobs(spec, CALIBRATION, _Places()))  # type: ignore[arg-type]  # (http and redis jobs check their service first)  # type: ignore[arg-type]
    assert {job.kind: (job.io_ms, job.cpu_units, job.target) for job in jobs} == {
        "sleep": (4.0, 0, ""),
        "cpu": (4.0, 3000, ""),  # 3 ms x 1000 spin iterations per ms
        "hash": (4.0, 3, ""),  # 3 ms x 1 hash round per ms
        "mixed": (4.0, 3000, ""),
        "noop": (4.0, 0, ""),
    }
    assert [job.id for job in jobs] == list(range(5))
    assert [job.kind for job in jobs] == list(spec.kinds())


def test_services_are_asked_for_only_when_the_mix_needs_them() -> None:
    class Refuse:
        def target_url(self) -> str:
            raise AssertionError("no http job")

        def redis_url(self) -> str:
            raise AssertionError("no redis job")

    spec = WorkloadSpec.build({"jobs": 2, "mix": "sleep=1"}, ("async",))
    assert [job.target for job in make_jobs(spec, CALIBRATION, Refuse())] == ["", ""]  # type: ignore[arg-type]


def test_the_stub_sees_exactly_the_jobs_made(stub: type[StubExecutor]) -> None:
    spec = WorkloadSpec.build({"jobs": 5, "mix": "cpu=1", "cpu_ms": 2, "concurrency": 1}, ("stub",))
    run_mode(spec, "stub", calibration=CALIBRATION)
    assert stub.made[-1].jobs == [Job(i, "cpu", 50.0, 2000, "") for i in range(5)]


def test_the_result_document(stub: type[StubExecutor], tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"  # parents are made
    spec = WorkloadSpec.build({"jobs": 4, "mix": "noop=1", "workers": 2, "concurrency": 2}, ("stub",))
    result = run_mode(spec, "stub", out_dir=out, calibration=CALIBRATION).to_json()
    assert (out / "ledger.jsonl").is_file()
    expected_keys = {
        "schema_version", "runner_version", "mode", "executor", "spec", "kinds", "jobs", "wall_s",
        "throughput_jobs_per_s", "peak_in_flight", "loop_lag_ms", "histograms_us", "resources", "failures",
        "by_worker", "calibration", "started_at", "machine",
    }  # fmt: skip
    assert expected_keys <= set(result)
    assert result["schema_version"] == 1 and result["runner_version"] == __version__
    assert result["executor"] == {"summary": StubExecutor.summary, "concurrency": 2, "stub": True}
    assert result["spec"] == spec.to_dict()
    assert result["calibration"] == CALIBRATION.to_dict() and result["kinds"] == {"noop": 4}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", result["started_at"])
    assert result["machine"]["cpus"] >= 1 and result["failures"] == {}
    assert result["by_worker"] == {"stub-0": 2, "stub-1": 2}
    assert result["latency_ms"]["max"] >= result["latency_ms"]["p50"] >= 0
    assert "stopped" not in result
    assert result["resources"]["cpu_utilisation"] >= 0


def test_progress_is_reported_during_and_at_the_end(stub: type[StubExecutor]) -> None:
    seen: list[tuple[int, int]] = []

    def progress(status: RunStatus) -> None:
        seen.append((status.submitted, status.done + status.failed + status.timed_out))

    spec = WorkloadSpec.build({"jobs": 40, "mix": "sleep=1", "io_ms": 20, "concurrency": 4}, ("stub",))
    run_mode(spec, "stub", calibration=CALIBRATION, progress=progress)
    assert seen[-1] == (40, 40)
    assert len(seen) >= 3 and any(finished < 40 for _, finished in seen)  # reported while running


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("first line\nsecond line"), "ValueError: first line"),
        (KeyError(), "KeyError"),
        (RuntimeError("   "), "RuntimeError"),
    ],
)
def test_a_failure_reason_is_the_type_and_first_line(stub: type[StubExecutor], error: Exception, reason: str) -> None:
    stub.plan = StubPlan(raise_for={1: error})
    spec = WorkloadSpec.build({"jobs": 3, "mix": "noop=1"}, ("stub",))
    result: dict[str, Any] = run_mode(spec, "stub", calibration=CALIBRATION).to_json()
    assert result["failures"] == {reason: 1} and result["jobs"]["failed"] == 1


def test_check_modes_asks_each_executor_with_the_environments_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = WorkloadSpec.build({"celery_workers": 0}, ("async", "celery"))
    with pytest.raises(InputError, match="--celery-workers 0"):
        check_modes(spec)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    check_modes(spec)  # a cluster's Redis is named: fine before any run
