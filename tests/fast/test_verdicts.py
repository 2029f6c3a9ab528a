"""The verdicts (``runner.report.verdicts``) word for word, on cells built from a real (v1) results
file with chosen throughputs: labels, who wins and by how much, ties, the crossover and its
interpolation, the loop lag, capacity at an SLO, the axes, and the presets' sentences. No executor
runs here; ``tests/test_curves.py`` has the statistics behind them (Holm across a sweep, the USL)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from runner.engine.bench_results import Cell, load_results
from runner.engine.preset_results import BlockingFigure, Presets, RaceFigure, RequestsFigure
from runner.engine.stats import log_ratio
from runner.report import verdicts as vd
from runner.report.format import ratio_range
from tests.test_curves import _cell

DATA = Path(__file__).parents[1] / "data"


def _shared(cell: Cell, share: float, lag_ms: float = 1.0) -> Cell:
    """The cell as a sleep/cpu mix at ``share`` CPU, with its loop lag p99."""
    mix = {"sleep": 1 - share, "cpu": share} if share < 1 else {"cpu": 1.0}
    lag = dataclasses.replace(cell.summary.loop_lag_p99_ms, mean=lag_ms)
    summary = dataclasses.replace(cell.summary, loop_lag_p99_ms=lag)
    return dataclasses.replace(
        cell, cpu_share=share, mix={k: v for k, v in mix.items() if v}, mix_name=f"cpu {share:.0%}", summary=summary
    )


def _series(mode: str, by_share: dict[float, float], lags: dict[float, float] | None = None) -> list[Cell]:
    return [
        _shared(_cell(mode, [x * 0.98, x, x * 1.02]), share, (lags or {}).get(share, 1.0))
        for share, x in by_share.items()
    ]


def test_mix_labels_name_pure_io_and_pure_cpu_only() -> None:
    io = dataclasses.replace(_cell("async", [1.0]), mix={"sleep": 0.5, "http": 0.3, "redis": 0.2}, cpu_share=0.0)
    assert vd.mix_label(dataclasses.replace(io, mix_name="io")) == "I/O only (io)"
    hashing = dataclasses.replace(io, mix={"hash": 1.0}, mix_name="h")  # no GIL-bound CPU, but not I/O
    assert vd.mix_label(hashing) == "h"
    cpu = dataclasses.replace(io, mix={"cpu": 1.0}, cpu_share=1.0, mix_name="c")
    assert vd.mix_label(cpu) == "CPU only (c)"
    assert vd.mix_label(dataclasses.replace(cpu, mix={"cpu": 0.5, "hash": 0.5})) == "c"
    assert vd.mix_label(dataclasses.replace(io, cpu_share=0.5, mix_name="m")) == "m"


def test_axes_label_names_only_the_axes_that_vary() -> None:
    one = _cell("async", [1.0], workers=1, concurrency=10)
    two = _cell("async", [1.0], workers=2, concurrency=10)
    assert vd.axes_label(one, [one]) == ""
    assert vd.axes_label(one, [one, two]) == "1 worker" and vd.axes_label(two, [one, two]) == "2 workers"
    wide = _cell("async", [1.0], workers=1, concurrency=50)
    assert vd.axes_label(wide, [one, wide]) == "concurrency 50"
    assert vd.axes_label(wide, [two, wide]) == "1 worker, concurrency 50"
    paced = _cell("async", [1.0], workers=1, concurrency=10, rate=50.0)
    assert vd.axes_label(paced, [paced]) == "open loop at 50 jobs/s"  # one rate, still said
    assert vd.axes_label(one, [one, paced]) == "closed loop"


def test_a_clear_win_is_worded_with_each_ratio_and_its_interval() -> None:
    fast, mid, slow = [300.0, 303.0, 297.0], [150.0, 151.0, 149.0], [100.0, 101.0, 99.0]
    cells = [_cell("thread", mid, mix="m"), _cell("async", fast, mix="m"), _cell("process", slow, mix="m")]
    (verdict,) = vd.sweep_verdicts(cells)
    r_mid, r_slow = log_ratio(fast, mid), log_ratio(fast, slow)
    expected = (
        f"CPU only (m): async wins, {ratio_range(r_mid.value, r_mid.low, r_mid.high)} thread, "
        f"{ratio_range(r_slow.value, r_slow.low, r_slow.high)} process"
    )
    assert verdict.kind == "mix" and verdict.text == expected
    figures = verdict.figures
    assert figures["winner"] == "async" and figures["ties"] == [] and figures["comparisons_in_sweep"] == 2
    assert (figures["mix"], figures["workers"], figures["concurrency"], figures["rate_per_s"]) == ("m", None, 10, None)
    assert [v["mode"] for v in figures["versus"]] == ["thread", "process"]  # in falling throughput
    assert all(v["significant"] and v["p_holm"] < vd.SIGNIFICANCE for v in figures["versus"])
    assert figures["versus"][1]["p_holm"] >= figures["versus"][1]["p_value"]


def test_ties_are_named_before_the_wins_and_a_sole_tie_has_no_win_part() -> None:
    top, close, low = [200.0, 230.0, 170.0], [195.0, 225.0, 166.0], [50.0, 50.5, 49.5]
    cells = [_cell("async", top), _cell("thread", close), _cell("process", low)]
    (verdict,) = vd.sweep_verdicts(cells)
    r = log_ratio(top, low)
    assert verdict.text == (
        "CPU only (cpu): async ties with thread (no significant difference); "
        f"async {ratio_range(r.value, r.low, r.high)} process"
    )
    assert verdict.figures["ties"] == ["thread"]
    assert [v["significant"] for v in verdict.figures["versus"]] == [False, True]
    (alone,) = vd.sweep_verdicts(cells[:2])
    assert alone.text == "CPU only (cpu): async ties with thread (no significant difference)"
    (three,) = vd.sweep_verdicts([*cells[:2], _cell("hybrid", [190.0, 220.0, 160.0])])
    assert three.text == "CPU only (cpu): async ties with thread, hybrid (no significant difference)"


def test_a_mix_measured_by_one_executor_has_no_verdict() -> None:
    assert vd.sweep_verdicts([_cell("async", [1.0, 2.0, 3.0])]) == []


def test_crossover_interpolates_log_linearly_between_the_shares_around_it() -> None:
    cells = _series("async", {0.0: 400.0, 0.5: 100.0}) + _series("process", {0.0: 100.0, 0.5: 400.0})
    (cross,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "crossover"]
    assert cross.figures["modes"] == ["async", "process"] and cross.figures["between"] == [0.0, 0.5]
    assert cross.figures["interpolated"] is True
    assert cross.figures["estimate"] == pytest.approx(0.25)  # ratios 4 and 1/4: halfway in logs
    early, late = cross.figures["range"]
    assert 0.0 < early < 0.25 < late < 0.5
    assert cross.text.startswith(
        "Crossover between 0% and 50% CPU: async wins below it, process above; interpolated "
        "(log-linear between the two measured shares, not measured) at about 25%, 95 % range "
    )


def test_crossover_is_found_between_the_right_pair_of_shares() -> None:
    cells = _series("async", {0.0: 800.0, 0.3: 400.0, 0.6: 100.0, 1.0: 50.0})
    cells += _series("process", {0.0: 100.0, 0.3: 200.0, 0.6: 200.0, 1.0: 100.0})
    (cross,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "crossover"]
    assert cross.figures["between"] == [0.3, 0.6]
    assert cross.figures["estimate"] == pytest.approx(0.3 + 0.3 * math.log(2) / (math.log(2) + math.log(2)))


def test_no_crossover_when_one_executor_leads_throughout() -> None:
    cells = _series("async", {0.0: 400.0, 0.5: 350.0, 1.0: 300.0})
    cells += _series("process", {0.0: 100.0, 0.5: 150.0, 1.0: 200.0})
    (cross,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "crossover"]
    assert cross.text == "No crossover: async leads from 0% to 100% CPU"
    assert cross.figures == {"modes": ["async"], "between": None, "estimate": None}


def test_no_crossover_verdict_without_two_executors_on_two_common_shares() -> None:
    alone = _series("async", {0.0: 400.0, 1.0: 300.0})
    assert [v.kind for v in vd.sweep_verdicts(alone)] == ["loop"]
    apart = _series("async", {0.0: 400.0, 0.5: 300.0}) + _series("process", {0.5: 100.0, 1.0: 200.0})
    assert "crossover" not in [v.kind for v in vd.sweep_verdicts(apart)]


def test_interpolate_clips_to_the_measured_shares() -> None:
    assert vd._interpolate(0.2, 0.6, 2.0, 0.5) == pytest.approx(0.4)
    assert vd._interpolate(0.2, 0.6, 4.0, 0.5) == pytest.approx(0.2 + 0.4 * 2 / 3)
    assert vd._interpolate(0.2, 0.6, 1.0, 0.5) == 0.2  # already even at the lower share
    assert vd._interpolate(0.2, 0.6, 0.9, 0.5) == 0.2
    assert vd._interpolate(0.2, 0.6, 2.0, 1.0) == 0.6  # still winning at the upper share
    assert vd._interpolate(0.2, 0.6, 2.0, 1.5) == 0.6
    assert vd._interpolate(0.2, 0.6, 2.0, 0.0) == 0.6  # an end outside the logs' domain
    assert vd._interpolate(0.2, 0.6, 1.0, 0.0) == 0.2
    assert vd._interpolate(0.2, 0.6, math.inf, 0.5) == 0.6
    assert vd._interpolate(0.2, 0.6, 2.0, math.inf) == 0.6
    assert vd._interpolate(0.2, 0.6, 0.0, 0.5) == 0.2


def test_loop_verdict_names_the_executor_whose_lag_grows_most() -> None:
    cells = _series("async", {0.0: 400.0, 0.5: 300.0, 1.0: 100.0}, {0.0: 1.25, 0.5: 2.0, 1.0: 44.84})
    # hybrid: higher lag, and more growth up to 50 %, but less in all
    cells += _series("hybrid", {0.0: 300.0, 0.5: 250.0, 1.0: 200.0}, {0.0: 30.0, 0.5: 50.0, 1.0: 60.0})
    (loop,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "loop"]
    assert loop.text == (
        "CPU work blocks the event loop: async's loop lag p99 grows from 1.2 ms at 0% CPU to 44.8 ms at 100% CPU"
    )
    assert loop.figures == {"mode": "async", "from_ms": 1.25, "to_ms": 44.84}


def test_verdicts_of_each_point_of_the_axes_say_where_they_are() -> None:
    cells = []
    for workers in (1, 2):
        for mode, by_share in (("async", {0.0: 400.0, 1.0: 100.0}), ("process", {0.0: 100.0, 1.0: 400.0})):
            cells += [dataclasses.replace(c, workers=workers) for c in _series(mode, by_share)]
    found = vd.sweep_verdicts(cells)
    crossovers = [v.text for v in found if v.kind == "crossover"]
    assert len(crossovers) == 2 and crossovers[0].endswith(" (1 worker)") and crossovers[1].endswith(" (2 workers)")
    assert [v.text for v in found if v.kind == "loop"][1].endswith(" (2 workers)")
    mixes = [v for v in found if v.kind == "mix"]
    assert len(mixes) == 4 and mixes[0].text.startswith("I/O only (cpu 0%), 1 worker: async wins")
    assert all(v.figures["comparisons_in_sweep"] == 4 for v in mixes)
    single = vd.sweep_verdicts(_series("async", {0.0: 4.0, 1.0: 1.0}) + _series("process", {0.0: 1.0, 1.0: 4.0}))
    assert not any(v.text.endswith(")") and "worker" in v.text for v in single if v.kind == "crossover")


def test_main_slice_prefers_the_most_cells_then_closed_loop_then_more_workers_and_concurrency() -> None:
    assert vd.main_slice([]) == []
    a1, b1 = _cell("async", [1.0], workers=1), _cell("thread", [1.0], workers=1)
    a2 = _cell("async", [1.0], workers=2)
    assert vd.main_slice([a1, b1, a2]) == [a1, b1]  # most populated
    b2 = _cell("thread", [1.0], workers=2)
    assert vd.main_slice([a1, b1, a2, b2]) == [a2, b2]  # equal: more workers
    c50 = _cell("async", [1.0], workers=1, concurrency=50)
    assert vd.main_slice([a1, c50]) == [c50]  # equal, same workers: more concurrency
    paced = _cell("async", [1.0], workers=4, concurrency=90, rate=50.0)
    assert vd.main_slice([a1, paced]) == [a1]  # closed loop before anything else
    assert set(vd.slices([a1, b1, a2])) == {(1, 10, 0.0), (2, 10, 0.0)}


def _paced(mode: str, rate: float, *, done_rate: float | None = None, p99: float = 50.0, workers: int = 1) -> Cell:
    return _cell(mode, [done_rate if done_rate is not None else rate] * 3, rate=rate, p99=p99, workers=workers)


def test_meeting_the_slo_needs_p99_within_it_all_jobs_done_and_the_rate_kept_up() -> None:
    assert vd.meets_slo(_paced("async", 100.0, p99=100.0), 100.0)  # at the target: met
    assert not vd.meets_slo(_paced("async", 100.0, p99=100.5), 100.0)
    assert vd.meets_slo(_paced("async", 100.0, done_rate=90.0), 100.0)  # within 10 % of the rate
    assert not vd.meets_slo(_paced("async", 100.0, done_rate=89.0), 100.0)
    cell = _paced("async", 100.0)
    jobs = dataclasses.replace(cell.summary.jobs, done=99, failed=1)
    assert not vd.meets_slo(dataclasses.replace(cell, summary=dataclasses.replace(cell.summary, jobs=jobs)), 100.0)


def test_capacity_verdict_words_and_figures() -> None:
    cells = [_paced("hybrid", r, p99=p, workers=2) for r, p in ((100.0, 20.0), (200.0, 80.0), (300.0, 300.0))]
    cells += [_paced("async", r, p99=300.0, workers=2) for r in (100.0, 200.0)]
    cells += [_paced("thread", 100.0, p99=30.0, workers=2), _paced("thread", 100.0, p99=30.0, workers=4)]
    found = [v for v in vd.sweep_verdicts(cells, slo_ms=100.0) if v.kind == "capacity"]
    assert [v.figures["workers"] for v in found] == [2, 4]
    assert found[0].text == (
        "At p99 <= 100 ms on cpu (2 workers): hybrid sustains 200 jobs/s, thread 100; "
        "async meets it at none of the rates tried (100, 200, 300 jobs/s)"
    )
    assert found[0].figures == {
        "mix": "cpu",
        "workers": 2,
        "concurrency": 10,
        "slo_p99_ms": 100.0,
        "sustained": {"hybrid": 200.0, "async": None, "thread": 100.0},
    }
    assert found[1].text == (
        "At p99 <= 100 ms on cpu (4 workers): thread sustains 100 jobs/s of the rates tried (100 jobs/s)"
    )
    late = [_paced("async", 100.0, p99=300.0), _paced("thread", 100.0, p99=300.0)]
    (none,) = [v for v in vd.sweep_verdicts(late, slo_ms=100.0) if v.kind == "capacity"]
    assert none.text == "At p99 <= 100 ms on cpu: async, thread meet it at none of the rates tried (100 jobs/s)"
    assert [v for v in vd.sweep_verdicts(cells) if v.kind == "capacity"] == []  # no SLO, no capacity verdict
    closed = [_cell("async", [100.0] * 3), _cell("thread", [90.0] * 3)]
    assert [v for v in vd.sweep_verdicts(closed, slo_ms=100.0) if v.kind == "capacity"] == []


def test_scaling_verdicts_come_from_the_usl_fits_and_skip_unchanged_executors() -> None:
    from runner.report import scaling as sc

    grows = [_cell("process", [sc.usl_model(n, 100, 0.04, 0.0002)] * 3, workers=n) for n in (1, 2, 4, 8)]
    flat = [_cell("thread", [100.0 + n] * 3, workers=n, settings={"threads": 10}) for n in (1, 2, 4, 8)]
    found = [v for v in vd.sweep_verdicts(grows + flat) if v.kind == "scaling"]
    (fit,) = [s for s in sc.scaling(grows) if s.mode == "process"]
    assert [v.text for v in found] == [sc.usl_words(fit, False)]
    assert found[0].figures == {"mode": "process", "mix": "cpu", "concurrency": 10, "rate_per_s": 0.0}
    doc = load_results(DATA / "v1-sweep-results.json")
    drawn = vd.with_verdicts(dataclasses.replace(doc, cells=grows))
    assert drawn.scaling is not None and [s.mode for s in drawn.scaling] == ["process"]
    assert vd.with_verdicts(doc).scaling is None  # no workers axis: no fits, not an empty list


def test_spawn_verdict_from_a_real_presets_file() -> None:
    doc = vd.with_verdicts(load_results(DATA / "v1-presets-results.json"))
    (verdict,) = doc.verdicts
    assert verdict.kind == "preset" and verdict.preset == "spawn"
    assert verdict.text == (
        "Creating one unit costs a coroutine 13.91 µs +/- 7.06 µs and 0.87 KiB +/- 0.00 KiB (N = 20,000); a thread "
        "610.60 µs +/- 575.72 µs and 16.07 KiB +/- 0.00 KiB (N = 500); a forked process 9.82 ms +/- 5.21 ms and "
        "1.47 MiB +/- 11.17 KiB (N = 10) (95 % intervals over 5 repeats), so coroutine < thread < process holds for "
        "time and memory; extrapolated linearly to a million units (not measured) that is 13.9 s / 853 MiB, 611 s / "
        "15.3 GiB and 9,821 s / 1.4 TiB (the article: 6.8 s / 1,112 MB, 43.6 s / 2,661 MB, and 379 s for a million "
        "processes, extrapolated from 1,000)"
    )
    spawn = doc.presets.spawn if doc.presets else None
    assert spawn is not None
    for (time_holds, memory_holds), words in (
        ((False, True), "does NOT hold for time;"),
        ((False, False), "does NOT hold for time and memory;"),
    ):
        order = dataclasses.replace(spawn.order_holds, time=time_holds, memory=memory_holds)
        assert words in vd.spawn_verdict(dataclasses.replace(spawn, order_holds=order))


def _interval(mean: float, half: float) -> dict[str, Any]:
    return {"mean": mean, "ci95": [mean - half, mean + half], "half_width": half, "n": 3}


def test_requests_verdict_words() -> None:
    def variant(name: str, wall: float) -> dict[str, Any]:
        return {"what": name, "executor": name, "in_flight": 3, "wall_s": _interval(wall, 0.01), "samples": [wall],
                "ideal_s": 0.3, "call_ms_p50": 100.0}  # fmt: skip

    fig = RequestsFigure.from_json({
        "plan": {"calls": 3, "call_ms": 100.0, "repeats": 4},
        "target": "local", "target_url": "http://127.0.0.1:1",
        "variants": {"sequential": variant("sequential", 0.3), "coroutines": variant("coroutines", 0.1),
                     "threads": variant("threads", 0.12)},
        "ratios": {"coroutines": {"vs_sequential": 0.3333, "half_width": 0.0123},
                   "threads": {"vs_sequential": 0.4, "half_width": 0.02}},
        "article": {"calls": 3, "call_s": 3.0, "sequential_s": 11.4, "gevent_s": 4.9, "asyncio_s": 4.1, "where": "x"},
    })  # fmt: skip
    assert vd.requests_verdict(fig) == (
        "3 HTTP calls of 0.1 s: one after another 0.300 +/- 0.010 s, as coroutines 0.100 +/- 0.010 s "
        "(0.333x +/- 0.012 of sequential), as threads 0.120 +/- 0.010 s (0.400x +/- 0.020); 95 % intervals over "
        "4 repeats (the article, 3 s calls to httpbin.org: 11.4 s one after another vs 4.1-4.9 s at once)"
    )
    (verdict,) = vd.preset_verdicts(Presets(requests=fig))
    assert (verdict.kind, verdict.preset, verdict.text) == ("preset", "requests", vd.requests_verdict(fig))


def test_blocking_and_race_verdict_words() -> None:
    def mode(lag: float, p50: float, p99: float) -> dict[str, Any]:
        return {"loop_lag_p99_ms": _interval(lag, 0.5), "probe_p99_ms": _interval(p99, 1.0),
                "probe_p50_ms": _interval(p50, 0.25), "job_ms_p50": _interval(50.0, 1.0),
                "jobs_per_s": _interval(20.0, 1.0), "repeats": []}  # fmt: skip

    fig = BlockingFigure.from_json({
        "plan": {"jobs": 40, "cpu_ms": 50.0, "probe_ms": 10.0, "probes": 4, "repeats": 5},
        "workers": 2, "in_flight": 4, "loop": "uvloop", "probe": "http",
        "modes": {"inline": mode(48.0, 30.0, 60.0), "offloaded": mode(2.0, 10.5, 12.0)},
        "ratios": {"loop_lag_p99_ms": {"inline_vs_offloaded": 24.0, "half_width": 3.0},
                   "probe_p99_ms": {"inline_vs_offloaded": 1.5, "half_width": 0.25}},
        "article": {},
    })  # fmt: skip
    assert vd.blocking_verdict(fig) == (
        "50 ms CPU jobs run inline in the coroutine hold the event loop (loop lag p99 48.0 +/- 0.5 ms, probes p50 "
        "30.0 +/- 0.2 ms and p99 60.0 +/- 1.0 ms for 10 ms HTTP probes), against loop lag p99 2.0 +/- 0.5 ms, "
        "probes p50 10.5 +/- 0.2 ms and p99 12.0 +/- 1.0 ms offloaded to a 2-process pool: 24.0x +/- 3.0 the lag "
        "and 1.5x +/- 0.2 the probe p99 (95 % intervals over 5 repeats)"
    )
    race = RaceFigure(increments=1000, workers=2, variants=[], article={})
    found = vd.preset_verdicts(Presets(blocking=fig, race=race))
    assert [(v.kind, v.preset) for v in found] == [("preset", "blocking"), ("preset", "race")]
    assert found[0].text == vd.blocking_verdict(fig)
    assert found[1].text.startswith("Races, 1,000 increments by 2 workers: coroutines lose - per million")


def test_repeats_that_did_nothing_rank_last_and_slow_rates_still_count() -> None:
    # Throughputs below 1 job/s are real (long jobs); a cell whose repeats all did nothing has no
    # geometric mean and ranks last instead of failing the verdict.
    idle, slow = _cell("async", [0.0, 0.0, 0.0]), _cell("thread", [0.5, 0.6, 0.55])
    (verdict,) = vd.sweep_verdicts([idle, slow])
    assert verdict.figures["winner"] == "thread" and [v["mode"] for v in verdict.figures["versus"]] == ["async"]
    closed = _cell("async", [0.5] * 3)  # closed loop: there is no rate to keep up with
    assert vd.meets_slo(closed, 100.0)


def test_capacity_names_both_varying_axes_and_formats_small_rates() -> None:
    cells = [
        _paced(mode, rate, workers=workers, p99=p99)
        for workers in (2, 4)
        for mode, rate, p99 in (("hybrid", 12.5, 50.0), ("thread", 7.5, 50.0), ("async", 2.5, 50.0))
    ]
    cells += [dataclasses.replace(_paced("async", 2.5, workers=2), concurrency=50)]
    found = [v for v in vd.sweep_verdicts(cells, slo_ms=100.0) if v.kind == "capacity"]
    assert found[0].text == (
        "At p99 <= 100 ms on cpu (2 workers, concurrency 10): hybrid sustains 12 jobs/s, thread 8, async 2 "
        "of the rates tried (2, 8, 12 jobs/s)"
    )
    assert found[-1].text.startswith("At p99 <= 100 ms on cpu (2 workers, concurrency 50): async sustains 2 jobs/s")


def test_with_verdicts_draws_them_afresh_with_the_sweeps_slo() -> None:
    doc = load_results(DATA / "v1-sweep-results.json")
    assert doc.sweep is not None
    cells = [_paced("hybrid", 100.0, p99=50.0), _paced("thread", 100.0, p99=500.0)]
    stale = dataclasses.replace(doc, cells=cells, verdicts=[], sweep=dataclasses.replace(doc.sweep, slo_p99_ms=100.0))
    drawn = vd.with_verdicts(stale)
    assert drawn.verdicts == vd.sweep_verdicts(cells, 100.0)
    assert [v.kind for v in drawn.verdicts] == ["mix", "capacity"]


def test_a_mix_verdict_names_the_executors_that_ran_batched_and_their_jobs_per_task() -> None:
    fast, slow = [300.0, 303.0, 297.0], [100.0, 101.0, 99.0]
    winner = _cell("process", fast, mix="m")
    winner = dataclasses.replace(winner, summary=dataclasses.replace(winner.summary, jobs_per_task=227.4))
    loser = _cell("celery", slow, mix="m")
    loser = dataclasses.replace(loser, summary=dataclasses.replace(loser.summary, jobs_per_task=2.5))
    plain = _cell("thread", slow, mix="m")  # one job per task: not batched, not named
    plain = dataclasses.replace(plain, summary=dataclasses.replace(plain.summary, jobs_per_task=1.0))
    (verdict,) = vd.sweep_verdicts([loser, winner, plain])
    r = log_ratio(fast, slow)
    wins = ratio_range(r.value, r.low, r.high)
    assert verdict.text == (
        f"CPU only (m): process wins, {wins} celery, {wins} thread "
        "(batched: process 227 jobs/task, celery 2.5 jobs/task)"
    )


def test_capacity_says_1_worker_in_the_singular() -> None:
    cells = [_paced(mode, 100.0, workers=workers) for workers in (1, 2) for mode in ("async", "thread")]
    found = [v for v in vd.sweep_verdicts(cells, slo_ms=100.0) if v.kind == "capacity"]
    assert [v.text.split(": ", 1)[0] for v in found] == [
        "At p99 <= 100 ms on cpu (1 worker)",
        "At p99 <= 100 ms on cpu (2 workers)",
    ]


def test_a_crossover_counts_a_tie_as_the_low_winners_and_a_tie_above_as_not_yet_crossed() -> None:
    # async/process: 4 at 0 % CPU, exactly 1 at 50 %, 1/4 at 100 %: the lead changes hands between
    # 50 % and 100 % (a ratio of exactly 1 still belongs to the low winner), not between 0 and 50 %.
    cells = _series("async", {0.0: 4.0, 0.5: 2.0, 1.0: 1.0}) + _series("process", {0.0: 1.0, 0.5: 2.0, 1.0: 4.0})
    (cross,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "crossover"]
    assert cross.figures["modes"] == ["async", "process"] and cross.figures["between"] == [0.5, 1.0]
    # a lead of less than 2x at the lower share is still a lead
    cells = _series("async", {0.0: 1.5, 1.0: 1.0}) + _series("process", {0.0: 1.0, 1.0: 1.5})
    (cross,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "crossover"]
    assert cross.figures["between"] == [0.0, 1.0]


def test_the_loop_verdict_measures_growth_from_the_lowest_share() -> None:
    # thread's lag grows most from 0 % (0 -> 8 ms), async's most from 50 % (1 -> 6 ms)
    shares = {0.0: 1.0, 0.5: 1.0, 1.0: 1.0}
    cells = _series("async", shares, {0.0: 1.0, 0.5: 1.0, 1.0: 6.0}) + _series(
        "thread", shares, {0.0: 0.0, 0.5: 5.0, 1.0: 8.0}
    )
    (loop,) = [v for v in vd.sweep_verdicts(cells) if v.kind == "loop"]
    assert loop.figures == {"mode": "thread", "from_ms": 0.0, "to_ms": 8.0}


def test_ties_then_every_significant_win_joined_by_commas() -> None:
    top, close, low, lower = [200.0, 230.0, 170.0], [195.0, 225.0, 166.0], [50.0, 50.5, 49.5], [20.0, 20.2, 19.8]
    cells = [_cell("async", top), _cell("thread", close), _cell("process", low), _cell("celery", lower)]
    (verdict,) = vd.sweep_verdicts(cells)
    r_low, r_lower = log_ratio(top, low), log_ratio(top, lower)
    assert verdict.text == (
        "CPU only (cpu): async ties with thread (no significant difference); "
        f"async {ratio_range(r_low.value, r_low.low, r_low.high)} process, "
        f"{ratio_range(r_lower.value, r_lower.low, r_lower.high)} celery"
    )


def test_scaling_verdicts_name_their_concurrency_when_fits_differ_in_it_and_skip_only_unchanged() -> None:
    from runner.report import scaling as sc

    flat = [_cell("async", [100.0 + n] * 3, workers=n, settings={}) for n in (1, 2, 4, 8)]  # unchanged: first
    grows = [_cell("process", [sc.usl_model(n, 100, 0.04, 0.0002)] * 3, workers=n) for n in (1, 2, 4, 8)]
    wide = [dataclasses.replace(c, concurrency=50) for c in grows]
    fits = [s for s in sc.scaling(flat + grows + wide) if s.note != sc.UNCHANGED]
    assert [(s.mode, s.concurrency) for s in fits] == [("process", 10), ("process", 50)]
    found = [v for v in vd.sweep_verdicts(flat + grows + wide) if v.kind == "scaling"]
    assert [v.text for v in found] == [sc.usl_words(s, True) for s in fits]
    assert found[0].text.startswith("process on cpu (concurrency 10): ")
