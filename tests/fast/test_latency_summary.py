"""The latency summary's percentiles and mean, computed in numpy, are the HDR histogram's own."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.engine.metrics import Latency

_SECONDS = st.floats(min_value=0.0, max_value=4000.0, allow_nan=False)  # past the hour: clipped


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_SECONDS, st.integers(1, 5000)), min_size=1, max_size=60))
def test_summary_matches_the_histograms_own_figures(values: list[tuple[float, int]]) -> None:
    latency = Latency()
    for seconds, count in values:
        latency.record_repeated(seconds, count)
    got = latency.summary()
    hist = latency._hist
    theirs = hist.get_percentile_to_value_dict([50, 95, 99])
    assert [got["p50"], got["p95"], got["p99"]] == [theirs[50] / 1000, theirs[95] / 1000, theirs[99] / 1000]
    assert got["mean"] == round(hist.get_mean_value() / 1000, 3)
    assert got["max"] == hist.get_max_value() / 1000


def test_a_merged_histogram_from_encoded_repeats_gives_the_same_figures() -> None:
    rng = np.random.default_rng(7)
    parts = []
    for scale in (0.001, 0.05, 2.0):
        one = Latency()
        one.record_many(rng.exponential(scale, 20_000))
        parts.append(one.encode())
    merged = Latency.merged(parts)
    got, hist = merged.summary(), merged._hist
    theirs = hist.get_percentile_to_value_dict([50, 95, 99])
    assert (got["p50"], got["p95"], got["p99"]) == (theirs[50] / 1000, theirs[95] / 1000, theirs[99] / 1000)
    assert got["mean"] == round(hist.get_mean_value() / 1000, 3)
    assert Latency().summary() == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
