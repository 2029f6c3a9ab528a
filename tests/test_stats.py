"""The statistical rule: ratio intervals on log ratios with Welch degrees of freedom, the same
test deciding "wins" and "ties", and Holm's correction across comparisons."""

from __future__ import annotations

import math

import pytest

from runner.engine.stats import holm, log_ratio


def test_a_clear_lead_has_an_interval_above_one_and_a_small_p() -> None:
    r = log_ratio([200, 210, 205], [100, 98, 103])
    assert r.value == pytest.approx(2.03, rel=0.01)
    assert 1 < r.low < r.value < r.high and r.p_value < 0.001


def test_interval_and_p_value_agree_at_the_boundary() -> None:
    # Noisy samples: whatever the data, "interval excludes 1" and "p < 0.05" are the same decision.
    cases = [([100, 130, 90], [95, 100, 105]), ([10, 11, 12, 13], [9, 10, 11, 12]), ([5, 50, 500], [4, 40, 400])]
    for a, b in cases:
        r = log_ratio(a, b)
        assert (r.low > 1 or r.high < 1) == (r.p_value < 0.05)


def test_a_wide_interval_stays_positive_and_asymmetric() -> None:
    r = log_ratio([10, 1000, 100], [10, 10, 10])
    assert r.low > 0 and r.high / r.value == pytest.approx(r.value / r.low)


def test_undecidable_cases() -> None:
    assert log_ratio([5.0], [3.0]).p_value == 1.0 and math.isinf(log_ratio([5.0], [3.0]).high)
    assert math.isnan(log_ratio([0.0, 1.0], [1.0, 2.0]).value)
    same = log_ratio([4.0, 4.0], [4.0, 4.0])
    assert same.value == 1.0 and same.p_value == 1.0


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([]) == []
    assert all(a >= p for a, p in zip(holm([0.001, 0.2, 0.04, 0.01]), [0.001, 0.2, 0.04, 0.01], strict=True))
