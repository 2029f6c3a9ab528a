"""The article's race-conditions row, measured: lost updates per variant of shared state."""

from __future__ import annotations

import sys

import pytest

from runner.experiments.race import ARTICLE_CLAIMS, VARIANTS, measure_races, run_variant


def test_each_variant_reports_every_increment_and_the_article_claims() -> None:
    doc = measure_races(increments=20_000, workers=4)
    by = {v["variant"]: v for v in doc["variants"]}
    assert list(by) == list(VARIANTS) and doc["article"] == ARTICLE_CLAIMS
    for v in by.values():
        assert v["increments"] == 20_000 and v["visible"] + v["lost"] == 20_000
        assert v["lost_per_million"] == round(v["lost"] / 20_000 * 1e6, 1)
    # Locks and an event loop with no await in the gap: nothing lost, ever.
    for safe in ("coroutines", "threads-lock", "processes-lock"):
        assert by[safe]["lost"] == 0, safe
    # An await in the gap: every coroutine reads the same value before any writes -- exactly 3 of 4 lost.
    assert by["coroutines-await"]["lost"] == 15_000
    # Private memory: nothing races, and the parent sees none of the children's updates.
    assert by["processes-private"]["visible"] == 0


@pytest.mark.parametrize("variant", ["threads", "processes-shared"])
def test_shared_memory_without_a_lock_loses_updates(variant: str) -> None:
    # A race needs two workers in the gap at once, which a loaded machine may not schedule in one
    # try; three tries of 200,000 increments that all lose nothing would mean the gap is gone.
    lost = [run_variant(variant, 200_000).lost for _ in range(3)]
    assert max(lost) > 0, lost


def test_the_switch_interval_is_restored() -> None:
    before = sys.getswitchinterval()
    run_variant("threads", 1_000)
    assert sys.getswitchinterval() == before
