"""The checks ``WorkloadSpec.build`` makes across fields, each at its edge and with its message:
modes named twice, http jobs longer than the target serves, an open-loop schedule longer than a
week; and fields carried as given (``--expect-workers``, ``--wait-s``, ``--arrivals``), with the
user's inputs counted from their own module's path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from runner.engine.spec import TARGET_MAX_DELAY_MS, WorkloadSpec
from workers.errors import InputError
from workers.jobs import KINDS

WEEK_S = 7 * 86_400


def _error(values: dict[str, Any], modes: tuple[str, ...] = ("async",)) -> str:
    with pytest.raises(InputError) as caught:
        WorkloadSpec.build(values, modes)
    return str(caught.value)


def test_an_executor_named_twice() -> None:
    assert _error({}, ("async", "thread", "async")) == "--mode: each executor may appear once, got async,thread,async"


def test_http_jobs_wait_at_most_what_the_target_serves() -> None:
    longest = float(TARGET_MAX_DELAY_MS)
    assert WorkloadSpec.build({"mix": "http=1", "io_ms": longest}, ("async",)).io_ms == longest
    assert _error({"mix": "http=1", "io_ms": longest + 1}) == (
        f"--io-ms: http jobs wait on the target's /delay, which serves at most {TARGET_MAX_DELAY_MS} ms; got 60001"
    )
    # only where http jobs run: a weight of 0, or no http at all, leaves --io-ms to its own bound
    assert WorkloadSpec.build({"mix": "http=0,sleep=1", "io_ms": longest + 1}, ("async",)).io_ms == longest + 1
    assert WorkloadSpec.build({"mix": "sleep=1", "io_ms": longest + 1}, ("async",)).io_ms == longest + 1


def test_an_open_loop_schedule_of_at_most_a_week() -> None:
    # one job a second: the last of 604,801 starts exactly a week after the first
    assert WorkloadSpec.build({"rate": 1, "jobs": WEEK_S + 1}, ("async",)).jobs == WEEK_S + 1
    assert (
        _error({"rate": 1, "jobs": WEEK_S + 2})
        == "--rate: 604802 jobs at 1/s would take 7 days to start; at most 7 days"
    )
    assert _error({"rate": 0.5, "jobs": 1_000_000}) == (
        "--rate: 1000000 jobs at 0.5/s would take 23.1 days to start; at most 7 days"
    )
    # the days as counted from the first job's start: (jobs - 1) / rate
    assert (
        _error({"rate": 1, "jobs": 605_234})
        == "--rate: 605234 jobs at 1/s would take 7.01 days to start; at most 7 days"
    )
    assert (
        _error({"rate": 1e-6, "jobs": 2}) == "--rate: 2 jobs at 1e-06/s would take 11.6 days to start; at most 7 days"
    )
    assert WorkloadSpec.build({"rate": 1000, "jobs": 100_000_000}, ("async",)).rate == 1000  # 28 hours: fine
    assert WorkloadSpec.build({"rate": 0, "jobs": 100_000_000}, ("async",)).rate == 0  # closed loop: no schedule


def test_fields_carried_as_given() -> None:
    spec = WorkloadSpec.build({"expect_workers": 3, "wait_s": 12, "arrivals": "poisson"}, ("celery",))
    assert (spec.expect_workers, spec.wait_s, spec.arrivals) == (3, 12.0, "poisson")
    assert _error({"arrivals": "bogus"}) == "--arrivals: choose one of constant, poisson, got 'bogus'"


def test_an_unknown_kind_lists_the_kinds_there_are() -> None:
    assert _error({"mix": "bogus=1"}) == f"--mix: unknown job kind 'bogus'; choose from: {', '.join(KINDS)}"
    user = {"user_jobs": {"mine": "m:f"}, "mix": "bogus=1"}
    assert _error(user) == f"--mix: unknown job kind 'bogus'; choose from: {', '.join(KINDS)}, mine"


def test_generator_inputs_are_counted_from_the_users_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the user's path is added for good: not beyond this test
    assert "spec_checks_feed" not in sys.modules and str(tmp_path) not in sys.path
    (tmp_path / "spec_checks_feed.py").write_text("def items():\n    yield from range(5)\n")
    values = {
        "user_jobs": {"w": "spec_checks_feed:items"},
        "paths": [str(tmp_path)],
        "inputs": "spec_checks_feed:items",
    }
    try:
        assert WorkloadSpec.build(values, ("async",)).jobs == 5
    finally:
        sys.modules.pop("spec_checks_feed", None)
