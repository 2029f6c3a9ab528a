"""What ``drive`` hands back beside the counts: the progress it reports (the workload's size, the
last report marked finished), the result's rounding of wall time and throughput, and an
uninstrumented run leaving out the timeline and resource sampling (``benchmarks/overhead.py``'s
runs, whose cost is the point)."""

from __future__ import annotations

import asyncio

from runner.engine import results as rs
from runner.engine.coordinator import executor_config, measure, run_mode
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor


def _spec(**values: object) -> WorkloadSpec:
    return WorkloadSpec.build({"workers": 2, **values}, ("stub",))


def test_progress_names_the_workloads_size_and_only_the_last_report_is_finished(stub: type[StubExecutor]) -> None:
    seen: list[RunStatus] = []
    run_mode(
        _spec(jobs=30, mix="sleep=1", io_ms=20, concurrency=3), "stub", calibration=CALIBRATION, progress=seen.append
    )
    assert len(seen) >= 2 and {s.total for s in seen} == {30}
    assert [s.finished for s in seen] == [False] * (len(seen) - 1) + [True]


def test_wall_time_and_throughput_are_rounded_and_agree(stub: type[StubExecutor]) -> None:
    for _ in range(3):  # three runs: a figure that happens to need fewer decimals would hide a wrong rounding
        result = run_mode(_spec(jobs=9, mix="sleep=1", io_ms=20, concurrency=1), "stub", calibration=CALIBRATION)
        wall, rate = result.wall_s, result.throughput_jobs_per_s
        assert wall == round(wall, 4) and rate == round(rate, 2)
        assert abs(rate - 9 / wall) < 0.05  # done over wall time, to the cent


def _run(spec: WorkloadSpec, instrument: bool) -> rs.RunResult:
    async def run() -> rs.RunResult:
        with LocalServices() as services:
            executor = StubExecutor(executor_config(spec), services)
            async with executor:
                return await measure(executor, spec, CALIBRATION, services, instrument=instrument)

    return asyncio.run(run())


def test_only_an_instrumented_run_keeps_a_timeline_and_samples_resources(stub: type[StubExecutor]) -> None:
    spec = _spec(jobs=20, mix="sleep=1", io_ms=30, concurrency=2)
    on, off = _run(spec, True), _run(spec, False)
    assert on.timeseries and on.resources.peak_rss_mb > 0 and on.resources.cpu_s > 0
    assert off.timeseries == [] and off.resources.peak_rss_mb == 0 and off.resources.cpu_s == 0
    assert on.jobs.done == off.jobs.done == 20
