"""Statistics used by the report, the verdicts and compare, against hand-computed values."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runner.engine.stats import (
    Estimate,
    Interval,
    bound,
    cpu_share,
    estimate,
    holm,
    log_ratio,
    ratio,
    t_critical,
    welch_p,
)
from workers.base import Capacity


def test_estimate_is_the_mean_and_students_interval() -> None:
    assert estimate([]) == Estimate(0.0, 0.0, 0)
    one = estimate([5.0])
    assert one.mean == 5.0 and math.isinf(one.half_width) and one.n == 1
    e = estimate([10.0, 12.0, 14.0])
    assert e.mean == 12.0 and e.n == 3
    assert e.half_width == pytest.approx(4.302652729911275 * 2.0 / math.sqrt(3))
    assert [e.low, e.high] == pytest.approx([12 - e.half_width, 12 + e.half_width])


def test_t_critical() -> None:
    assert t_critical(2) == pytest.approx(12.706204736)
    assert t_critical(11, 0.9) == pytest.approx(1.812461123)
    assert math.isinf(t_critical(1))


def test_ratio_and_its_uncertainty() -> None:
    value, half = ratio(Estimate(10.0, 1.0, 3), Estimate(5.0, 0.5, 3))
    assert value == 2.0 and half == pytest.approx(2.0 * math.hypot(0.1, 0.1))
    assert ratio(Estimate(1.0, 0.1, 3), Estimate(0.0, 0.0, 3)) == (math.inf, math.inf)
    value, half = ratio(Estimate(0.0, 0.1, 3), Estimate(2.0, 0.2, 3))
    assert value == 0.0 and math.isnan(half)  # 0 x inf: no meaningful spread


def test_welch_p() -> None:
    assert welch_p([1.0], [2.0, 3.0]) == 1.0 and welch_p([1.0, 2.0], [2.0]) == 1.0
    assert welch_p([3.0, 3.0], [3.0, 3.0]) == 1.0
    assert welch_p([3.0, 3.0], [4.0, 4.0]) == 0.0
    assert welch_p([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert welch_p([1.0, 2.0, 3.0], [11.0, 12.0, 13.5]) == pytest.approx(0.00051272, rel=1e-3)  # t = 10.96, 3.8 df


def test_cpu_share() -> None:
    assert cpu_share({"sleep": 1, "cpu": 1, "hash": 1, "mixed": 1}) == 0.75
    assert cpu_share({"sleep": 1}) == 0.0 and cpu_share({}) == 0.0


def test_bound_names_what_binds() -> None:
    cap = Capacity(slots=100, gil_cores=1, free_cores=2)
    io = bound({"sleep": 1}, 20, 10, cap, cores=2)
    assert io == {"jobs_per_s": pytest.approx(5000), "limited_by": "slots", "limits": {"slots": pytest.approx(5000)}}
    cpu = bound({"cpu": 1}, 20, 10, cap, cores=2)
    assert cpu["limited_by"] == "gil" and cpu["jobs_per_s"] == pytest.approx(100)
    assert cpu["limits"] == {"slots": pytest.approx(10000), "gil": pytest.approx(100), "cores": pytest.approx(200)}
    hashing = bound({"hash": 1}, 20, 10, Capacity(100, 1, 4), cores=2)
    assert hashing["limited_by"] == "cores" and hashing["jobs_per_s"] == pytest.approx(200)
    assert hashing["limits"]["gil_free_cores"] == pytest.approx(400)
    mixed = bound({"mixed": 1, "sleep": 1}, 20, 10, Capacity(1, 8, 8), cores=8)
    # slots: 1 / (0.5 * 20 ms + 0.5 * 20 ms + 0.5 * 10 ms) = 40 jobs/s
    assert mixed["limited_by"] == "slots" and mixed["jobs_per_s"] == pytest.approx(40)
    assert bound({"noop": 1}, 20, 10, cap, cores=2) == {"jobs_per_s": None, "limited_by": None, "limits": {}}
    redis = bound({"redis": 1}, 20, 10, cap, cores=2)  # its I/O is not --io-ms long: no bound
    assert redis["limited_by"] is None


def test_edges_of_ratio_welch_and_bound() -> None:
    value, half = ratio(Estimate(0.5, 0.05, 3), Estimate(0.25, 0.025, 3))  # means below 1 are fine
    assert value == 2.0 and half == pytest.approx(2.0 * math.hypot(0.1, 0.1))
    # One sample set without spread, the other with: a real test, not "identical means".
    assert welch_p([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(0.2254, abs=1e-3)  # t = 1.73, 2 df
    hashing = bound({"hash": 1}, 20, 10, Capacity(100, 1, 4), cores=2)
    assert hashing["limits"] == {
        "slots": pytest.approx(10000),
        "gil_free_cores": pytest.approx(400),
        "cores": pytest.approx(200),
    }


def test_log_ratio_against_hand_computed_values() -> None:
    # Logs spaced by ln 2 on both sides: variance (ln 2)^2 each, standard error sqrt(2/3) ln 2, 4 df.
    r = log_ratio([10.0, 20.0, 40.0], [5.0, 10.0, 20.0])
    se = math.sqrt(2 / 3) * math.log(2)
    t = 2.7764451051977987  # t(0.975, 4)
    assert r.value == pytest.approx(2.0) and r.df == pytest.approx(4.0)
    assert [r.low, r.high] == pytest.approx([math.exp(math.log(2) - t * se), math.exp(math.log(2) + t * se)])
    assert r.p_value == pytest.approx(0.28786, abs=1e-4)  # t = 1.2247 on 4 df
    assert r.to_dict() == {"ratio": r.value, "ci95": [r.low, r.high], "p_value": r.p_value, "df": r.df}
    unequal = log_ratio([10.0, 12.0, 11.0], [5.0, 6.0, 5.5, 5.2])
    assert unequal.df == pytest.approx(4.0365, abs=1e-3) and unequal.p_value == pytest.approx(0.000408, abs=1e-5)
    assert 1 < unequal.low < unequal.value < unequal.high


def test_log_ratio_edges() -> None:
    for a, b in (([], [1.0]), ([1.0], []), ([0.0, 1.0], [1.0, 2.0]), ([1.0, 2.0], [-1.0, 2.0]), ([1.0], [0.0, 2.0])):
        r = log_ratio(a, b)
        assert math.isnan(r.value) and math.isnan(r.low) and math.isnan(r.high)
        assert (r.p_value, r.df) == (1.0, 0.0)
    one = log_ratio([8.0], [2.0, 2.0])
    assert one.value == pytest.approx(4.0) and (one.low, one.high, one.p_value, one.df) == (0.0, math.inf, 1.0, 0.0)
    flat = log_ratio([4.0, 4.0], [2.0, 2.0])
    assert [flat.value, flat.low, flat.high] == pytest.approx([2.0] * 3) and flat.p_value == 0.0
    assert math.isinf(flat.df)
    same = log_ratio([3.0, 3.0], [3.0, 3.0])
    assert same.value == 1.0 and same.p_value == 1.0
    half = log_ratio([1.0, 1.0], [1.0, 2.0], confidence=0.5)  # a 50 % interval: narrower than the 95 % one
    full = log_ratio([1.0, 1.0], [1.0, 2.0])
    assert full.low < half.low < half.value < half.high < full.high


def test_holm_adjusts_in_order_and_keeps_monotone() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda: welch_p([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]),
        lambda: log_ratio([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]),
        lambda: t_critical(5),
    ],
    ids=["welch_p", "log_ratio", "t_critical"],
)
def test_each_use_of_scipy_names_the_report_extra(monkeypatch: pytest.MonkeyPatch, call: Any) -> None:
    import sys

    from workers.errors import MissingExtra

    monkeypatch.setitem(sys.modules, "scipy", None)  # import scipy now raises ImportError
    with pytest.raises(MissingExtra, match=r"the 'report' extra: pip install 'runner\[report\]'"):
        call()


def test_bound_stretches_gil_free_cpu_by_the_workers_free_scale() -> None:
    # hash jobs of 10 ms measured 2x slower in the workers: 20 ms each, 4 free cores -> 200/s, and
    # the machine's 2 cores -> 100/s binds; the "gil" scale leaves GIL-free work alone.
    stretched = bound({"hash": 1}, 20, 10, Capacity(100, 1, 4), cores=2, cpu_scale={"free": 2.0, "gil": 5.0})
    assert stretched["limits"] == {
        "slots": pytest.approx(5000),
        "gil_free_cores": pytest.approx(200),
        "cores": pytest.approx(100),
    }
    assert stretched["limited_by"] == "cores" and stretched["jobs_per_s"] == pytest.approx(100)
    faster = bound({"hash": 1}, 20, 10, Capacity(100, 1, 4), cores=2, cpu_scale={"free": 0.5})
    assert faster["limits"]["gil_free_cores"] == pytest.approx(800)


def test_interval_keeps_every_field_of_its_estimate() -> None:
    est = estimate([1.0, 2.0, 3.0])
    kept = Interval.of(est)
    assert kept == Interval(mean=2.0, ci95=[est.low, est.high], half_width=est.half_width, n=3)
    assert kept.half_width == pytest.approx(2.484, abs=1e-3)  # t(0.975, 2) * 1 / sqrt(3)
    assert kept.estimate() == est
