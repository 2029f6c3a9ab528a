"""What ``drive`` hands back beside the counts: the progress it reports (the workload's size, the
last report marked finished), the result's rounding of wall time and throughput, and an
uninstrumented run leaving out the timeline and resource sampling (``benchmarks/overhead.py``'s
runs, whose cost is the point)."""

from __future__ import annotations

import pytest

from runner.engine import coordinator, machine
from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor, measured_on_stub


def _spec(**values: object) -> WorkloadSpec:
    return WorkloadSpec.build({"workers": 2, **values}, ("stub",))


def test_progress_names_the_executor_and_workloads_size_and_only_the_last_report_is_finished(
    stub: type[StubExecutor],
) -> None:
    seen: list[RunStatus] = []
    run_mode(
        _spec(jobs=30, mix="sleep=1", io_ms=20, concurrency=3), "stub", calibration=CALIBRATION, progress=seen.append
    )
    assert len(seen) >= 2 and {s.total for s in seen} == {30} and {s.mode for s in seen} == {"stub"}
    assert [s.finished for s in seen] == [False] * (len(seen) - 1) + [True]


def test_wall_time_and_throughput_are_rounded_and_agree(stub: type[StubExecutor]) -> None:
    for _ in range(3):  # three runs: a figure that happens to need fewer decimals would hide a wrong rounding
        result = run_mode(_spec(jobs=9, mix="sleep=1", io_ms=20, concurrency=1), "stub", calibration=CALIBRATION)
        wall, rate = result.wall_s, result.throughput_jobs_per_s
        assert wall == round(wall, 4) and rate == round(rate, 2)
        assert abs(rate - 9 / wall) < 0.05  # done over wall time, to the cent


def test_only_an_instrumented_run_keeps_a_timeline_and_samples_resources(stub: type[StubExecutor]) -> None:
    spec = _spec(jobs=20, mix="sleep=1", io_ms=30, concurrency=2)
    on, off = measured_on_stub(spec, instrument=True), measured_on_stub(spec, instrument=False)
    assert on.timeseries and on.resources.peak_rss_mb > 0 and on.resources.cpu_s > 0
    assert off.timeseries == [] and off.resources.peak_rss_mb == 0 and off.resources.cpu_s == 0
    assert on.jobs.done == off.jobs.done == 20


def test_the_executor_is_given_the_runs_timeout(stub: type[StubExecutor]) -> None:
    run_mode(_spec(jobs=2, mix="noop=1", timeout=0.7), "stub", calibration=CALIBRATION)
    assert stub.made[-1].config.timeout_s == 0.7  # its own limits (Celery's time limit, a pool's kill) follow it


def test_the_machine_state_is_read_before_the_run_adds_its_load(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    def state() -> dict[str, object]:
        load = float(len(stub.made[-1].jobs)) if stub.made else -1.0  # jobs the stub has run so far
        return {"load_avg": {"1m": load, "5m": load, "15m": load}, "cpu_busy_pct": 1.0, "busy": False}

    monkeypatch.setattr(coordinator, "machine_state", state)
    monkeypatch.setattr(machine, "machine_state", state)
    result = run_mode(_spec(jobs=4, mix="sleep=1", io_ms=5), "stub", calibration=CALIBRATION)
    assert result.jobs.done == 4 and stub.made
    assert result.machine is not None and result.machine.load_avg == {"1m": 0.0, "5m": 0.0, "15m": 0.0}
