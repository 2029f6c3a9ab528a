"""The coordinator against the stub executor: accounting, the in-flight bound, timeouts, halts on a
lost service, the grace period after a signal (and a second signal cutting it short), duplicates
and lost jobs -- each in well under a second (the grace tests wait out its 2 s)."""

from __future__ import annotations

import json
import os
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.outputs import OutputError
from runner.engine.spec import WorkloadSpec
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import FAILED_ON_PURPOSE, SERVICE_LOST, StubExecutor, StubPlan
from workers.errors import RunStopped


def _run(out_dir: Path | None = None, **values: Any) -> dict[str, Any]:
    values.setdefault("workers", 2)
    return run_mode(WorkloadSpec.build(values, ("stub",)), "stub", out_dir=out_dir, calibration=CALIBRATION).to_json()


def _adds_up(jobs: dict[str, int]) -> None:
    assert jobs["submitted"] == jobs["done"] + jobs["failed"] + jobs["timed_out"] + jobs["lost"]


def test_every_outcome_is_counted_once(stub: type[StubExecutor], tmp_path: Path) -> None:
    result = _run(tmp_path, jobs=200, mix="sleep=3,fail=1,noop=1", io_ms=1, concurrency=10, workers=3)
    assert result["jobs"] == {"submitted": 200, "done": 160, "failed": 40, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["kinds"] == {"sleep": 120, "fail": 40, "noop": 40}
    assert result["failures"] == {FAILED_ON_PURPOSE: 40}
    kinds = list(WorkloadSpec.build({"jobs": 200, "mix": "sleep=3,fail=1,noop=1"}, ("stub",)).kinds())
    done_ids = [i for i, kind in enumerate(kinds) if kind != "fail"]
    assert result["by_worker"] == {f"stub-{w}": sum(i % 3 == w for i in done_ids) for w in range(3)}
    made = stub.made[-1]
    assert made.started and made.stopped and made.workloads == 1
    assert sorted(made.runs) == list(range(200)) and set(made.runs.values()) == {1}
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(200))
    assert sum(r["status"] == "failed" for r in records) == 40
    assert all(r["reason"] == FAILED_ON_PURPOSE for r in records if r["status"] == "failed")
    assert all(r["worker"].startswith("stub-") for r in records if r["status"] == "done")
    assert all("reason" not in r for r in records if r["status"] == "done")
    assert result["latency_ms"]["p50"] > 0.5  # most done jobs are sleeps of 1 ms (timers may fire a little early)
    assert result["throughput_jobs_per_s"] == pytest.approx(160 / result["wall_s"], rel=0.01)


@pytest.mark.parametrize(("jobs", "concurrency"), [(60, 7), (3, 10), (40, 1)])
def test_in_flight_reaches_but_never_exceeds_concurrency(stub: type[StubExecutor], jobs: int, concurrency: int) -> None:
    result = _run(jobs=jobs, mix="sleep=1", io_ms=5, concurrency=concurrency)
    expected = min(jobs, concurrency)
    assert result["peak_in_flight"] == expected
    assert stub.made[-1].peak_in_run == expected  # the executor's own count agrees with the ledger's


def test_a_hung_job_times_out_its_run_is_cancelled_and_the_rest_go_on(stub: type[StubExecutor]) -> None:
    result = _run(jobs=12, mix="sleep=2,hang=1", io_ms=1, timeout=0.2, concurrency=12)
    assert result["jobs"] == {"submitted": 12, "done": 8, "failed": 0, "timed_out": 4, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"timed out after 0.2 s": 4}
    assert len(stub.made[-1].cancelled) == 4  # the executor saw its hung runs cancelled
    assert stub.made[-1].in_run == 0


def test_a_timed_out_driver_goes_on_with_the_next_job(stub: type[StubExecutor]) -> None:
    # One slot: after the hung job times out, the same driver must run every job after it.
    result = _run(jobs=6, mix="hang=1,sleep=5", io_ms=1, timeout=0.1, concurrency=1)
    assert result["jobs"]["timed_out"] == 1 and result["jobs"]["done"] == 5


def test_a_lost_service_halts_dispatch_and_accounts_for_every_job(stub: type[StubExecutor]) -> None:
    spec = WorkloadSpec.build({"jobs": 1000, "mix": "sleep=19,crash=1", "io_ms": 5, "concurrency": 4}, ("stub",))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "stub", calibration=CALIBRATION)
    exc = stopped.value
    assert exc.exit_code == 1 and str(exc).startswith(f"run stopped: {SERVICE_LOST}")
    assert exc.result is not None
    partial = exc.result.to_json()
    jobs = partial["jobs"]
    _adds_up(jobs)
    assert jobs["lost"] == 0 and jobs["failed"] == 1 and jobs["done"] == jobs["submitted"] - 1
    assert jobs["submitted"] < 100  # dispatch stopped at the first crash
    assert partial["stopped"] == {"reason": SERVICE_LOST, "not_submitted": 1000 - jobs["submitted"]}
    assert partial["failures"] == {f"ServiceError: {SERVICE_LOST}": 1}
    assert stub.made[-1].stopped


def _signal_after(*delays: float, sig: signal.Signals = signal.SIGTERM) -> threading.Thread:
    def send() -> None:
        for delay in delays:
            time.sleep(delay)
            os.kill(os.getpid(), sig)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def _interrupted(sig: signal.Signals, **values: Any) -> tuple[RunStopped, dict[str, Any]]:
    spec = WorkloadSpec.build({"workers": 2, **values}, ("stub",))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "stub", calibration=CALIBRATION)
    assert stopped.value.exit_code == 128 + sig
    assert stopped.value.result is not None
    return stopped.value, stopped.value.result.to_json()


def test_one_signal_lets_in_flight_jobs_finish_within_the_grace(stub: type[StubExecutor]) -> None:
    # Jobs of 0.6 s, 4 at a time; SIGTERM at 0.3 s: the 4 in flight finish within the 2 s grace.
    sender = _signal_after(0.3)
    exc, result = _interrupted(signal.SIGTERM, jobs=1000, mix="sleep=1", io_ms=600, concurrency=4)
    sender.join()
    assert str(exc).startswith("interrupted by SIGTERM; 4 of 1000 jobs done")
    assert result["jobs"] == {"submitted": 4, "done": 4, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["stopped"] == {"reason": "SIGTERM", "not_submitted": 996}


def test_the_grace_ends_and_jobs_still_running_are_failed(stub: type[StubExecutor]) -> None:
    sender = _signal_after(0.3, sig=signal.SIGINT)
    _, result = _interrupted(signal.SIGINT, jobs=1000, mix="hang=1", concurrency=3)
    sender.join()
    assert result["jobs"] == {"submitted": 3, "done": 0, "failed": 3, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"interrupted by SIGINT before it finished": 3}
    assert len(stub.made[-1].cancelled) == 3


def test_a_second_signal_skips_the_grace(stub: type[StubExecutor]) -> None:
    # The same 1.5 s jobs would finish within the 2 s grace after one signal; a second signal
    # cancels them at once.
    sender = _signal_after(0.3, 0.1)
    _, result = _interrupted(signal.SIGTERM, jobs=1000, mix="sleep=1", io_ms=1500, concurrency=4)
    sender.join()
    assert result["jobs"] == {"submitted": 4, "done": 0, "failed": 4, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"interrupted by SIGTERM before it finished": 4}


def test_extra_runs_are_duplicates_with_their_own_ledger_lines(stub: type[StubExecutor], tmp_path: Path) -> None:
    stub.plan = StubPlan(extra_runs={3: 2, 7: 1})
    result = _run(tmp_path, jobs=10, mix="noop=1", concurrency=2)
    assert result["jobs"] == {"submitted": 10, "done": 10, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 3}
    lines = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r for r in lines if "extra_runs" in r] == [{"id": 3, "extra_runs": 2}, {"id": 7, "extra_runs": 1}]
    assert lines[-2:] == [{"id": 3, "extra_runs": 2}, {"id": 7, "extra_runs": 1}]  # after every job's own line
    assert sorted(r["id"] for r in lines if "status" in r) == list(range(10))


def test_a_job_that_escapes_accounting_is_lost(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(vanish=frozenset({5}))
    result = _run(jobs=20, mix="noop=1", concurrency=4)
    assert result["jobs"] == {"submitted": 20, "done": 19, "failed": 0, "timed_out": 0, "lost": 1, "duplicates": 0}


def test_a_workload_reuses_a_started_executor(stub: type[StubExecutor]) -> None:
    first = _run(jobs=5, mix="noop=1", concurrency=2)
    assert first["mode"] == "stub" and first["executor"]["stub"] is True
    assert first["spec"]["modes"] == ["stub"] and first["spec"]["jobs"] == 5
    assert len(stub.made) == 1 and stub.made[0].stopped


def test_nodes_get_the_jobs_the_ledger_counted_for_them(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(nodes=("stub-0", "stub-1", "idle"))
    result = _run(jobs=9, mix="noop=1", concurrency=3, workers=2)
    jobs = {node["name"]: node["jobs"] for node in result["nodes"]}
    assert jobs == {"stub-0": 5, "stub-1": 4, "idle": 0} == result["by_worker"] | {"idle": 0}
    assert {node["cpu_s"] for node in result["nodes"]} == {0.5}  # the rest as the node said
    stub.plan = StubPlan()
    assert _run(jobs=2, mix="noop=1").get("nodes") is None  # an executor without nodes: none recorded


def test_a_ledger_that_cannot_be_written_ends_the_run_with_its_result_kept(
    stub: type[StubExecutor], tmp_path: Path
) -> None:
    # RLIMIT_FSIZE makes every write past 8 KiB fail (EFBIG), like a full disk, for this process only.
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the error, not the signal that kills
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, limit[1]))
    try:
        with pytest.raises(OutputError) as raised:
            _run(tmp_path, jobs=2000, mix="noop=1", concurrency=4)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    message = str(raised.value)
    assert message.startswith(f"cannot write {tmp_path / 'ledger.jsonl'}: File too large")
    assert message.endswith("; the run finished, but its ledger is incomplete")
    assert raised.value.result.jobs.done == 2000 and raised.value.result.jobs.lost == 0
