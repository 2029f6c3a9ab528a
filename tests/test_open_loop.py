"""Open-loop load (``--rate``): jobs start on a schedule whatever the executor does, latency runs
from each job's intended start, and the time a job waited in the coordinator is reported apart.
Closed loop stays the default and says so. Failed and timed-out jobs have latencies of their own."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from itertools import pairwise
from typing import Any

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.faults.helpers import ROOT
from workers.errors import InputError


def _run(mode: str = "async", **values: Any) -> dict[str, Any]:
    values.setdefault("workers", 2)
    return run_mode(WorkloadSpec.build(values, (mode,)), mode).to_json()


def test_arrivals_follow_the_rate_and_are_reproducible() -> None:
    constant = WorkloadSpec.build({"jobs": 5, "rate": 4}, ("async",))
    assert list(constant.arrival_offsets()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    poisson = WorkloadSpec.build({"jobs": 20_000, "rate": 1000, "arrivals": "poisson"}, ("async",))
    offsets = list(poisson.arrival_offsets())
    gaps = [b - a for a, b in pairwise(offsets)]
    assert offsets == list(poisson.arrival_offsets())  # seeded: every mode gets the same arrivals
    assert statistics.fmean(gaps) == pytest.approx(1e-3, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(1e-3, rel=0.1)  # exponential: sd == mean
    assert not WorkloadSpec.build({}, ("async",)).open_loop


@pytest.mark.parametrize("bad", [-1, "fast", float("inf")])
def test_a_bad_rate_is_refused(bad: object) -> None:
    with pytest.raises(InputError, match="--rate"):
        WorkloadSpec.build({"rate": bad}, ("async",))


def test_below_capacity_the_schedule_sets_the_pace() -> None:
    result = _run(jobs=50, mix="sleep=1", io_ms=20, concurrency=100, rate=50)
    assert result["jobs"]["done"] == 50
    assert result["load"] == {
        "model": "open",
        "rate_per_s": 50.0,
        "arrivals": "constant",
        "latency_from": "intended start",
    }
    assert result["wall_s"] >= 49 / 50  # the last job may not start before its time
    assert result["latency_ms"]["p50"] >= 20.0  # a sleep of 20 ms, from its intended start


def test_above_capacity_latency_counts_the_wait_behind_a_busy_executor() -> None:
    # One driver, 20 ms jobs: capacity 50 jobs/s. Offered 500 jobs/s, the 100th job is meant to
    # start at 0.2 s but can only start near 2 s: its latency holds those 1.8 s of waiting.
    opened = _run(jobs=100, mix="sleep=1", io_ms=20, concurrency=1, rate=500)
    assert opened["jobs"]["done"] == 100 and opened["peak_in_flight"] == 1
    assert opened["latency_ms"]["max"] >= 1500
    assert opened["coordinator_wait_ms"]["max"] >= 1400
    assert opened["latency_ms"]["max"] >= opened["coordinator_wait_ms"]["max"] + 19
    assert opened["service_ms"]["p50"] < 200  # the jobs themselves stayed short
    closed = _run(jobs=100, mix="sleep=1", io_ms=20, concurrency=1)
    assert closed["load"] == {"model": "closed", "concurrency": 1, "latency_from": "hand-off"}
    assert closed["coordinator_wait_ms"]["max"] == 0.0
    assert closed["latency_ms"]["p50"] < opened["latency_ms"]["p50"] / 5


def test_failed_and_timed_out_jobs_have_their_own_latency() -> None:
    result = _run(jobs=12, mix="sleep=1,fail=1,hang=1", io_ms=5, concurrency=12, timeout=0.3)
    by_outcome = result["latency_by_outcome_ms"]
    assert {k: v["count"] for k, v in by_outcome.items()} == {"done": 4, "failed": 4, "timed_out": 4}
    assert by_outcome["timed_out"]["p50"] >= 300  # at least the timeout: never hidden from the tail
    assert by_outcome["done"]["p50"] == result["latency_ms"]["p50"]


def test_rate_from_the_command_line_and_the_environment() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RUNNER_SUBMIT_ARRIVALS="poisson")
    cmd = [sys.executable, "-m", "runner", "submit", "--jobs", "40", "--mix", "sleep=1", "--io-ms", "1"]
    done = subprocess.run([*cmd, "--rate", "200", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["load"]["arrivals"] == "poisson"
    shown = subprocess.run([*cmd, "--rate", "200"], env=env, capture_output=True, text=True, timeout=60)
    assert "open loop, 200 jobs/s (poisson)" in shown.stderr
    bad = subprocess.run([*cmd, "--rate", "-5"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--rate" in bad.stderr


_BUCKET_KEYS = {"t_s", "jobs_per_s", "p50_ms", "p99_ms", "in_flight", "loop_lag_ms", "cpu_pct", "rss_mb"}


def test_every_run_has_a_time_series_that_adds_up() -> None:
    result = _run(mode="thread", jobs=300, mix="sleep=1", io_ms=5, concurrency=10, rate=400)
    series = result["timeseries"]
    assert len(series) >= 10 and all(set(b) == _BUCKET_KEYS for b in series)
    times = [b["t_s"] for b in series]
    assert times == sorted(times) and times[-1] == pytest.approx(result["wall_s"], abs=0.05)
    widths = [b - a for a, b in pairwise([0.0, *times])]
    done = sum(b["jobs_per_s"] * w for b, w in zip(series, widths, strict=True))
    assert done == pytest.approx(300, abs=1)
    assert max(b["in_flight"] for b in series) <= 10 and series[-1]["in_flight"] == 0


def test_above_capacity_the_p99_grows_with_the_run() -> None:
    result = _run(jobs=150, mix="sleep=1", io_ms=20, concurrency=1, rate=500)
    p99 = [b["p99_ms"] for b in result["timeseries"] if b["p99_ms"] is not None]
    assert len(p99) >= 10
    early, late = p99[: len(p99) // 4], p99[-(len(p99) // 4) :]
    assert min(late) > 4 * max(early)  # the backlog, and so the latency, keeps growing


def test_open_loop_jobs_reach_the_services_their_kinds_use() -> None:
    # Open loop makes its jobs apart from the closed loop's units: the embedded Redis and the HTTP
    # target started, each job given its URL (without it, every http and redis job fails).
    result = _run(jobs=20, mix="http=1,redis=1", io_ms=5, concurrency=10, rate=200)
    assert result["jobs"]["done"] == 20 and result["failures"] == {}
    assert result["kinds"] == {"http": 10, "redis": 10}
