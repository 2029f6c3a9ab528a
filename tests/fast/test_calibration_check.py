"""The calibration check's rules, on given figures: a pinned calibration (RUNNER_CALIBRATION), a
worker whose own rate differs, jobs that took more CPU than they were sized for, the bound with
the workers' rate, and the measured window closing after the last histogram flush."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from runner.engine.calibration_check import ServiceSamples, check, cpu_ms_scale
from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from runner.engine.stats import bound
from runner.engine.timeline import Timeline
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import StubExecutor
from workers.base import Capacity, JobReport
from workers.calibration import ENV, Calibration, for_coordinator, pinned
from workers.errors import InputError

COORD = Calibration(spin_iterations_per_ms=20_000.0, hash_rounds_per_ms=6.0)


def _samples(kind: str, cpu_ms: list[float], service_ms: float = 5.0) -> ServiceSamples:
    samples = ServiceSamples({kind: 1.0, "sleep": 1.0})
    for cpu in cpu_ms:
        samples.add(kind, JobReport(service_ms / 1000, "w", cpu / 1000))
    samples.add("sleep", JobReport(0.05, "w", 0.0))  # not a checked kind: ignored
    return samples


def test_rates_pinned_by_pairs_or_by_a_results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pinned("spin_iterations_per_ms=15000, hash_rounds_per_ms=6.5") == Calibration(15000.0, 6.5)
    result = tmp_path / "result.json"
    rates = {"spin_iterations_per_ms": 9e3, "hash_rounds_per_ms": 2}
    result.write_text(json.dumps({"mode": "async", "calibration": rates}))
    assert pinned(str(result)) == Calibration(9000.0, 2.0)
    monkeypatch.setenv(ENV, str(result))
    assert for_coordinator() == Calibration(9000.0, 2.0)  # not measured: the fast tier's fixed one is not used
    monkeypatch.delenv(ENV)
    assert for_coordinator() == CALIBRATION


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("spin_iterations_per_ms=fast,hash_rounds_per_ms=1", "expected key=number pairs"),
        ("spin_iterations_per_ms=0,hash_rounds_per_ms=1", "spin_iterations_per_ms must be a number above 0"),
        ("spin_iterations_per_ms=10", "hash_rounds_per_ms must be a number above 0, got None"),
        ("/no/such/file.json", "cannot read a calibration"),
    ],
)
def test_a_bad_pinned_calibration_is_one_input_error(text: str, says: str) -> None:
    with pytest.raises(InputError, match=says):
        pinned(text)


def test_a_worker_slower_than_the_coordinator_is_named_and_predicts_longer_jobs() -> None:
    slow = Calibration(spin_iterations_per_ms=10_000.0, hash_rounds_per_ms=6.0)  # half the spin rate
    near = Calibration(spin_iterations_per_ms=19_000.0, hash_rounds_per_ms=6.3)  # within 10 %
    result = check(_samples("cpu", [9.8, 10.0, 10.4]), 5.0, COORD, {"pid-1": slow, "pid-2": near})
    assert result.workers["pid-1"].differs and result.workers["pid-1"].spin_ratio == 0.5
    assert not result.workers["pid-2"].differs
    # Local processes spread by ~20 % on spin: 0.8x is not a finding, 0.7x is.
    edge = check(_samples("cpu", [5.0]), 5.0, COORD, {"a": Calibration(16_000.0, 6.0), "b": Calibration(14_000.0, 6.0)})
    assert not edge.workers["a"].differs and edge.workers["b"].differs
    cpu = result.kinds["cpu"]
    assert cpu.jobs == 3 and cpu.median_cpu_ms == 10.0 and cpu.cpu_ratio == 2.0 and cpu.off
    assert cpu.expected_ratio == pytest.approx(1 / ((0.5 + 0.95) / 2), abs=0.001)
    assert cpu.service_ratio == 1.0
    assert "sleep" not in result.kinds
    assert [w.split(" runs ")[0] for w in result.warnings if w.startswith("worker")] == ["worker pid-1"]
    assert any(w.startswith("cpu jobs sized for 5 ms took 10 ms of CPU (median, 2.00x)") for w in result.warnings)


def test_jobs_that_took_what_they_were_sized_for_are_not_flagged() -> None:
    result = check(_samples("hash", [5.2, 5.4, 4.9, 5.1]), 5.0, COORD, {})
    assert result.workers == {} and result.warnings == []
    assert result.kinds["hash"].cpu_ratio == pytest.approx(1.03, abs=0.01) and not result.kinds["hash"].off
    off = check(_samples("hash", [5.9, 6.0, 5.8]), 5.0, COORD, {})  # 18 % more: past the 15 % threshold
    assert off.kinds["hash"].off and "the calibration did not hold" in off.warnings[0]


def test_a_long_run_keeps_a_bounded_evenly_spread_sample() -> None:
    samples = ServiceSamples({"cpu": 1.0})
    for i in range(100_000):
        samples.add("cpu", JobReport(0.001, "w", i / 1e6))
    thinned = samples.kinds["cpu"]
    assert thinned.seen == 100_000 and 20_000 <= len(thinned.values) < 40_000
    cpus = [c for _, c in thinned.values if c is not None]
    assert max(cpus) > 0.09 and abs(sorted(cpus)[len(cpus) // 2] - 0.05) < 0.002  # the whole run, not its start


def test_the_bound_uses_the_workers_rate_where_it_differs() -> None:
    cap = Capacity(slots=100, gil_cores=2, free_cores=2)
    same = cpu_ms_scale(COORD, {"pid-1": Calibration(19_500.0, 6.1)})
    assert same == {"gil": 1.0, "free": 1.0}
    slow = cpu_ms_scale(COORD, {"pid-1": Calibration(10_000.0, 6.0)})
    assert slow == {"gil": 2.0, "free": 1.0}
    sized = bound({"cpu": 1.0}, 0.0, 10.0, cap, 2)["jobs_per_s"]
    assert bound({"cpu": 1.0}, 0.0, 10.0, cap, 2, slow)["jobs_per_s"] == pytest.approx(sized / 2)
    assert bound({"hash": 1.0}, 0.0, 10.0, cap, 2, slow)["jobs_per_s"] == pytest.approx(sized)


def test_the_window_closes_after_the_last_flush(stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch) -> None:
    ended: list[float] = []  # when each flush of the latency buffers (a bucket's close) ended, from the start
    close = Timeline.close_bucket

    def slow_close(self: Timeline) -> None:
        close(self)
        time.sleep(0.01)  # a flush that costs: its cost must be inside wall_s
        ended.append(time.perf_counter() - self._start)

    monkeypatch.setattr(Timeline, "close_bucket", slow_close)
    values: dict[str, Any] = {"jobs": 300, "mix": "sleep=1", "io_ms": 1, "concurrency": 20, "workers": 2}
    result = run_mode(WorkloadSpec.build(values, ("stub",)), "stub", calibration=CALIBRATION)
    assert ended and ended[-1] <= result.wall_s + 1e-4  # wall_s is rounded to 0.1 ms
    assert result.calibration_check is not None and result.calibration_check.kinds == {}  # no cpu or hash jobs
