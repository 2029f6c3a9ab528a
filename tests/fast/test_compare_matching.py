"""How ``compare`` pairs the cells of two results files (``runner.report.compare._matched``): by
executor and mix, plus the cell's point on each axis that varies across both files -- workers,
concurrency, and the offered rate (open loop) against closed loop -- each named in the label."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runner.engine.bench_results import BenchResults, Cell, load_results
from runner.report.compare import _matched
from tests.test_curves import _cell

DATA = Path(__file__).parents[1] / "data"


def _doc(cells: list[Cell]) -> BenchResults:
    return dataclasses.replace(load_results(DATA / "v1-sweep-results.json"), cells=cells)


def test_cells_pair_on_every_varying_axis_and_name_it() -> None:
    base = [_cell("async", [1.0], workers=1), _cell("async", [1.0], workers=2, rate=50.0)]
    new = [_cell("async", [1.0], workers=2, rate=50.0), _cell("thread", [1.0], workers=1)]
    old_keys, new_keys = _matched(_doc(base), _doc(new))
    assert set(old_keys) == {
        ("async", "cpu (workers 1, closed loop)"),
        ("async", "cpu (workers 2, 50 jobs/s offered)"),
    }
    assert set(new_keys) == {
        ("async", "cpu (workers 2, 50 jobs/s offered)"),
        ("thread", "cpu (workers 1, closed loop)"),
    }


def test_an_axis_that_does_not_vary_or_is_missing_somewhere_is_left_out() -> None:
    same = [_cell("async", [1.0], workers=2), _cell("thread", [1.0], workers=2)]
    assert set(_matched(_doc(same), _doc(same))[0]) == {("async", "cpu"), ("thread", "cpu")}
    # two worker counts, but one cell has none (a file from before the axis): not an axis
    mixed = [_cell("async", [1.0], workers=2), _cell("thread", [1.0], workers=None)]
    assert set(_matched(_doc(mixed), _doc([_cell("async", [1.0], workers=4)]))[0]) == {
        ("async", "cpu"),
        ("thread", "cpu"),
    }
    # three concurrencies across the files: one axis, named
    wide = [_cell("async", [1.0], concurrency=c) for c in (10, 50)]
    keys = _matched(_doc(wide), _doc([_cell("async", [1.0], concurrency=100)]))[1]
    assert set(keys) == {("async", "cpu (concurrency 100)")}
