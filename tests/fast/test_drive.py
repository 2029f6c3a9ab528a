"""``runner.engine.drive`` on the stub executor, called directly where the coordinator never takes
a path in the fast tier: a plain iterator of jobs (user jobs), a driver's own error seen in the
other jobs' reasons, a run cancelled from outside; and what ``make mutate`` found unchecked through
the coordinator -- single jobs feeding the calibration check, the watchdog after a driver's last job,
the CPU utilisation figure, every ledger line and latency the job's own (closed and open loop),
drivers waiting for room woken one by one, the watchdog's tick, an error before the drivers start."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.engine import dispatch, interrupt
from runner.engine import drive as drive_module
from runner.engine.coordinator import executor_config, measure, run_mode
from runner.engine.dispatch import Units
from runner.engine.drive import drive
from runner.engine.ledger import Ledger
from runner.engine.machine import usable_cpus
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import FAILED_ON_PURPOSE, StubExecutor, StubPlan
from workers.jobs import Job


def _spec(**values: Any) -> WorkloadSpec:
    values.setdefault("workers", 2)
    return WorkloadSpec.build(values, ("stub",))


def _run(**values: Any) -> dict[str, Any]:
    return run_mode(_spec(**values), "stub", calibration=CALIBRATION).to_json()


async def _drive(
    spec: WorkloadSpec, jobs: Iterator[Job] | Units, ledger: Ledger, executor_type: type[StubExecutor] = StubExecutor
) -> tuple[dict[str, Any], str | None]:
    """``drive`` as ``measure`` calls it, on a started stub, with no samples and no progress; a run
    that hangs (a job the watchdog misses) fails in 5 s, cancelled, rather than at the test timeout."""
    with LocalServices() as services:
        async with executor_type(executor_config(spec), services) as executor:
            return await asyncio.wait_for(drive(executor, jobs, spec, ledger, None, interrupt.StopRequest()), 5)


def test_utilisation_is_cpu_time_over_the_usable_cores_wall_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drive_module, "usable_cpus", lambda: 2)
    utilisation = drive_module._utilisation
    assert utilisation(1.0, 3.0) == 0.167  # 1/6, to three decimals
    assert utilisation(0.5, 0.5) == 0.5  # a run shorter than a second still has a figure
    assert utilisation(0.0, 2.0) == 0.0
    assert utilisation(1.0, 0.0) == 0.0  # no wall time: no figure, not a division by zero


def test_a_runs_cpu_utilisation_agrees_with_its_cpu_and_wall_time(stub: type[StubExecutor]) -> None:
    result = _run(jobs=3000, mix="noop=1", concurrency=4)  # the loop busy: CPU time to measure
    resources, wall_s = result["resources"], result["wall_s"]
    assert resources["cpu_s"] > 0 and wall_s > 0
    expected = resources["cpu_s"] / (wall_s * usable_cpus())  # from the rounded figures
    assert resources["cpu_utilisation"] == pytest.approx(expected, abs=0.0015, rel=0.01)


def test_a_plain_iterator_of_jobs_is_driven_to_its_end_each_job_once(stub: type[StubExecutor]) -> None:
    kinds = ["noop", "sleep", "fail", "hang"] * 3
    jobs = [Job(i, kind, io_ms=1.0) for i, kind in enumerate(kinds)]
    spec = _spec(jobs=len(jobs), mix="noop=1", concurrency=3, timeout=0.1)
    ledger = Ledger(len(jobs))
    measured, halted = asyncio.run(_drive(spec, iter(jobs), ledger))
    assert halted is None
    by_outcome = measured["latency_by_outcome_ms"]  # instrumented unless told otherwise
    assert {name: figures.count for name, figures in by_outcome.items()} == {"done": 6, "failed": 3, "timed_out": 3}
    assert ledger.summary() == {"submitted": 12, "done": 6, "failed": 3, "timed_out": 3, "lost": 0, "duplicates": 0}
    made = stub.made[-1]
    assert sorted(made.runs) == list(range(12)) and set(made.runs.values()) == {1}
    assert ledger.reasons == {FAILED_ON_PURPOSE: 3, "timed out after 0.1 s": 3}


@pytest.mark.parametrize("rate", [0, 2000], ids=["closed", "open"])
def test_single_cpu_jobs_feed_the_calibration_check(stub: type[StubExecutor], rate: int) -> None:
    stub.plan = StubPlan(cpu_s=0.002)  # batch 1: every job goes alone
    result = _run(jobs=16, mix="cpu=1", cpu_ms=1, concurrency=2, rate=rate)
    assert result["jobs"]["done"] == 16 and stub.made[-1].batches == []
    check = result["calibration_check"]["kinds"]["cpu"]
    assert (check["jobs"], check["median_cpu_ms"]) == (16, 2.0)


@pytest.mark.parametrize(("rate", "kinds"), [(0, ["fail", "hang"]), (1000, ["hang", "noop"])], ids=["closed", "open"])
def test_a_driver_that_ends_after_its_job_leaves_the_watchdog_working(
    stub: type[StubExecutor], rate: int, kinds: list[str]
) -> None:
    # The failed (closed loop) or done (open loop) job's driver has no job after it: what it
    # leaves in its slot, the watchdog reads until the hung job times out.
    spec = _spec(jobs=2, mix="noop=1", concurrency=2, timeout=0.2, rate=rate)
    ledger = Ledger(2)
    asyncio.run(_drive(spec, iter([Job(i, kind) for i, kind in enumerate(kinds)]), ledger))
    done, failed = kinds.count("noop"), kinds.count("fail")
    assert ledger.summary() == {
        "submitted": 2,
        "done": done,
        "failed": failed,
        "timed_out": 1,
        "lost": 0,
        "duplicates": 0,
    }


class _BrokenLedger(Ledger):
    """A bug in the coordinator (injected): submitting job 2 raises once it is in flight."""

    def submit(self, job_id: int) -> None:
        super().submit(job_id)
        if job_id == 2:
            raise RuntimeError("coordinator bug")


@pytest.mark.timeout(10)
def test_a_drivers_own_error_is_the_reason_the_other_jobs_were_interrupted(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "_GRACE_S", 0.05)  # the hung jobs are not coming back: no need to wait 2 s
    jobs = [Job(0, "hang"), Job(1, "hang"), Job(2, "noop")]
    spec = _spec(jobs=3, mix="noop=1", concurrency=3)
    ledger = _BrokenLedger(3)
    with pytest.raises(RuntimeError, match="coordinator bug"):
        asyncio.run(_drive(spec, iter(jobs), ledger))
    reason = "interrupted by internal error: RuntimeError: coordinator bug before it finished"
    assert ledger.reasons == {reason: 2} and sorted(stub.made[-1].cancelled) == [0, 1]


@pytest.mark.timeout(10)
def test_a_run_cancelled_from_outside_accounts_its_jobs_before_it_ends(stub: type[StubExecutor]) -> None:
    # No stop was requested, so no halt reason: the jobs are "cancelled". Before, drive() ended
    # with its drivers still running (and the executor stopped under them): the jobs were lost.
    jobs = [Job(0, "hang"), Job(1, "hang"), Job(2, "noop")]
    spec = _spec(jobs=3, mix="noop=1", concurrency=2)
    ledger = Ledger(3)

    async def cancelled() -> None:
        run = asyncio.create_task(_drive(spec, iter(jobs), ledger))
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no driver left behind
        assert ledger.summary() == {"submitted": 2, "done": 0, "failed": 2, "timed_out": 0, "lost": 0, "duplicates": 0}

    asyncio.run(cancelled())
    assert ledger.reasons == {"cancelled": 2} and sorted(stub.made[-1].cancelled) == [0, 1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("batch", [1, 4], ids=["single", "batched"])
def test_a_measure_cancelled_from_outside_writes_its_jobs_lines_first(
    stub: type[StubExecutor], tmp_path: Path, batch: int
) -> None:
    # The jobs in flight are accounted before measure() closes the ledger file, not after.
    stub.plan = StubPlan(batch=batch)
    spec = _spec(jobs=8, mix="hang=1", concurrency=4)

    async def cancelled() -> None:
        with LocalServices() as services:
            async with StubExecutor(executor_config(spec), services) as executor:
                run = asyncio.create_task(measure(executor, spec, CALIBRATION, services, out_dir=tmp_path))
                await asyncio.sleep(0.1)
                run.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await run

    asyncio.run(cancelled())
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == [0, 1, 2, 3]
    assert {(r["kind"], r["status"], r["reason"]) for r in lines} == {("hang", "failed", "cancelled")}
    assert stub.made[-1].batches == ([4] if batch > 1 else [])


_OUTCOME = {"sleep": "done", "cpu": "done", "fail": "failed", "hang": "timed_out"}


@pytest.mark.parametrize("rate", [0, 400], ids=["closed", "open"])
def test_every_ledger_line_and_latency_is_the_jobs_own(stub: type[StubExecutor], tmp_path: Path, rate: int) -> None:
    # Each line names its job's kind, outcome and runner; every latency and wait lies within the
    # run, and a hung job times out near its 50 ms, not at a slow watchdog's next look.
    stub.plan = StubPlan(cpu_s=0.002)
    mix = "sleep=2,cpu=2,fail=1,hang=1"
    spec = _spec(jobs=24, mix=mix, io_ms=5, cpu_ms=1, concurrency=3, rate=rate, timeout=0.05)
    result = run_mode(spec, "stub", out_dir=tmp_path, calibration=CALIBRATION).to_json()
    kinds = {job.id: job.kind for job in stub.made[-1].jobs}
    assert sorted(kinds) == list(range(24)) and set(kinds.values()) == set(_OUTCOME)
    wall_ms = result["wall_s"] * 1000 + 1  # rounding
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(24))
    for r in records:
        kind = kinds[r["id"]]
        assert (r["kind"], r["status"]) == (kind, _OUTCOME[kind])
        assert r.get("worker") == (f"stub-{r['id'] % 2}" if kind in ("sleep", "cpu") else None)
        assert 0.0 <= r["latency_ms"] <= wall_ms
        if kind == "hang":
            assert 50.0 <= r["latency_ms"] < 250.0
    for name in ("latency_ms", "service_ms", "queue_wait_ms", "coordinator_wait_ms"):
        assert 0.0 <= result[name]["max"] <= wall_ms, name
    for outcome, figures in result["latency_by_outcome_ms"].items():
        assert figures["count"] == sum(_OUTCOME[kind] == outcome for kind in kinds.values())
        assert 0.0 < figures["max"] <= wall_ms, outcome
    if rate:
        assert result["coordinator_wait_ms"]["max"] > 0.0  # 3 drivers held by 50 ms hangs: jobs waited
    check = result["calibration_check"]["kinds"]["cpu"]
    assert (check["jobs"], check["median_cpu_ms"]) == (sum(kind == "cpu" for kind in kinds.values()), 2.0)


def test_drivers_waiting_for_room_behind_a_batch_are_woken_one_by_one(stub: type[StubExecutor]) -> None:
    # A batch of 4 fills the window of 4: the other 3 drivers wait for room. Its end wakes one,
    # and each single job's end the next, so 4 sleep jobs run at once again (the batch's noop jobs
    # never overlap in the stub: it sees at most 1 of them at a time).
    spec = _spec(jobs=10, mix="noop=1", concurrency=4)
    ledger = Ledger(10)
    kinds = iter(["noop"] * 4 + ["sleep"] * 6)
    params = {"noop": (0.0, 0, ""), "sleep": (50.0, 0, "")}
    units = Units(kinds, params, lambda kind: 4 if kind == "noop" else 1, 4, lambda: ledger.in_flight)
    asyncio.run(_drive(spec, units, ledger))
    assert ledger.summary() == {"submitted": 10, "done": 10, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    made = stub.made[-1]
    assert made.batches == [4] and made.peak_in_run == 4


@pytest.mark.parametrize(("timeout", "most"), [(0.01, 0.005), (2.0, 0.1), (40.0, 0.5)])
def test_the_watchdog_looks_often_enough_for_the_timeout(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch, timeout: float, most: float
) -> None:
    # Its tick bounds how late a hung job times out: a 20th of the timeout, at most 0.5 s (a long
    # timeout's job is not left 1.5 s over), at least 5 ms (it never spins). Read off its sleeps.
    ticks: list[float] = []
    sleep = asyncio.sleep

    async def watched(delay: float) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name() == "timeouts":
            ticks.append(delay)
        await sleep(delay)

    monkeypatch.setattr(asyncio, "sleep", watched)
    spec = _spec(jobs=2, mix="noop=1", concurrency=1, timeout=timeout)
    asyncio.run(_drive(spec, iter([Job(0, "sleep", io_ms=30.0), Job(1, "noop")]), Ledger(2)))
    assert ticks and min(ticks) >= 0.005 and max(ticks) <= most


class _NoWorkers(StubExecutor):
    """An executor that cannot say which processes run its jobs (injected)."""

    def worker_pids(self) -> list[int]:
        raise RuntimeError("cannot list the workers")


def test_an_error_before_the_drivers_start_is_raised_as_it_is(stub: type[StubExecutor]) -> None:
    spec = _spec(jobs=1, mix="noop=1", concurrency=1)
    with pytest.raises(RuntimeError, match="cannot list the workers"):
        asyncio.run(_drive(spec, iter([Job(0, "noop")]), Ledger(1), _NoWorkers))
