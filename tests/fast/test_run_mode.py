"""``run_mode`` around the workload, on the stub executor: a signal while the executor starts
(the start cancelled, no job sent) or while it stops (the complete result kept, the exit code the
signal's), the event loop it runs on, the services and ``REDIS_URL`` flag the executor is given,
the calibration it sizes jobs with, and the user's own functions as jobs on the in-process
``async`` executor -- found by ``make mutate``."""

from __future__ import annotations

import signal
from typing import Any

import pytest
import uvloop

from runner.engine.coordinator import run_mode
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor, StubPlan
from workers.calibration import Calibration
from workers.errors import RunStopped


def _spec(modes: tuple[str, ...] = ("stub",), **values: Any) -> WorkloadSpec:
    return WorkloadSpec.build({"workers": 2, **values}, modes)


def square(x: int) -> int:
    """A user's job for the test below (``--job sq=tests.fast.test_run_mode:square``)."""
    return x * x


def test_a_signal_while_the_executor_starts_cancels_the_start_and_sends_no_job(stub: type[StubExecutor]) -> None:
    # The start would take 5 s; SIGINT arrives as it begins.
    stub.plan = StubPlan(start_s=5.0, signal_in_start=signal.SIGINT)
    with pytest.raises(RunStopped) as stopped:
        run_mode(_spec(jobs=10, mix="noop=1"), "stub", calibration=CALIBRATION)
    assert str(stopped.value) == "interrupted by SIGINT while starting the executor; no job was sent"
    assert stopped.value.exit_code == 130 and stopped.value.result is None
    made = stub.made[-1]
    assert made.start_cancelled and not made.started and made.stopped
    assert made.workloads == 0 and made.jobs == []


def test_a_signal_while_the_executor_stops_keeps_the_complete_result(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(signal_in_stop=signal.SIGTERM)
    with pytest.raises(RunStopped) as stopped:
        run_mode(_spec(jobs=10, mix="noop=1"), "stub", calibration=CALIBRATION)
    assert str(stopped.value) == "interrupted by SIGTERM" and stopped.value.exit_code == 143
    result = stopped.value.result
    assert result is not None and result.jobs.done == 10 and result.stopped is None
    assert stub.made[-1].stopped


def test_the_run_happens_on_uvloop_with_the_runs_services(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # read, never connected to: no redis kind
    run_mode(_spec(jobs=2, mix="noop=1"), "stub", calibration=CALIBRATION)
    assert stub.made[-1].loop_type is uvloop.Loop
    assert isinstance(stub.made[-1].services, LocalServices)  # what Celery takes its broker from
    assert stub.external_redis is True  # validated knowing REDIS_URL is set (``--celery-workers 0``)
    monkeypatch.delenv("REDIS_URL")
    run_mode(_spec(jobs=2, mix="noop=1"), "stub", calibration=CALIBRATION)
    assert stub.external_redis is False


def test_the_calibration_given_sizes_the_jobs_else_the_coordinators_own(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    given = Calibration(spin_iterations_per_ms=7.0, hash_rounds_per_ms=3.0)
    result = run_mode(_spec(jobs=2, mix="cpu=1", cpu_ms=2), "stub", calibration=given).to_json()
    assert result["calibration"] == given.to_dict() != CALIBRATION.to_dict()
    assert {job.cpu_units for job in stub.made[-1].jobs} == {given.units("cpu", 2)}
    monkeypatch.setenv("RUNNER_CALIBRATION", "spin_iterations_per_ms=5,hash_rounds_per_ms=2")
    result = run_mode(_spec(jobs=2, mix="cpu=1", cpu_ms=2), "stub").to_json()
    assert result["calibration"] == {"spin_iterations_per_ms": 5.0, "hash_rounds_per_ms": 2.0}


def test_user_jobs_mixed_with_built_in_kinds_run_on_the_async_executor() -> None:
    # In-process (the async executor calls the function on its loop): no pool, broker or process.
    values = {"jobs": 6, "mix": "sq=1,sleep=1", "io_ms": 1, "user_jobs": {"sq": f"{__name__}:square"}}
    spec = _spec(("async",), **values)
    result = run_mode(spec, "async", calibration=CALIBRATION).to_json()
    assert result["jobs"]["done"] == 6 and result["failures"] == {}
    assert result["kinds"] == {"sq": 3, "sleep": 3}
    assert result["user_jobs"]["kinds"] == {"sq": f"{__name__}:square"}
    assert sum(result["user_jobs"]["ran"]["sq"]["sync"].values()) == 3
