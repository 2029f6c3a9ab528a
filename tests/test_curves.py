"""Curves and numbers, fast: the USL fit on synthetic points, the SLO capacity verdict, Holm in
the verdicts, the noise and bound warnings, compare's machine warnings -- on cells built from a
real (v1) results file, so no executor runs here."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from runner.engine import codec
from runner.engine.results import BenchResults, Cell, Percentiles, load_results
from runner.experiments.sweep import build_sweep, parse_axis
from runner.report import scaling as sc
from runner.report.compare import compare_results
from runner.report.noise import noise_warnings
from runner.report.verdicts import sweep_verdicts, with_verdicts
from workers.errors import InputError

DATA = Path(__file__).parent / "data"


def _template() -> tuple[BenchResults, Cell]:
    doc = load_results(DATA / "v1-sweep-results.json")
    return doc, doc.cells[0]


def _cell(
    mode: str,
    samples: list[float],
    *,
    mix: str = "cpu",
    workers: int | None = None,
    concurrency: int | None = 10,
    rate: float | None = None,
    p99: float = 10.0,
    settings: dict[str, object] | None = None,
) -> Cell:
    """A cell of ``mode`` whose repeats measured ``samples`` jobs/s (and the summary to match)."""
    _, base = _template()
    run = base.repeats[0]
    executor = dataclasses.replace(run.executor, settings=settings if settings is not None else {"workers": workers})
    repeats = [dataclasses.replace(run, throughput_jobs_per_s=x, executor=executor) for x in samples]
    doc = {**codec.encode(base), "mode": mode, "mix_name": mix, "mix": {"cpu": 1.0}, "cpu_share": 1.0}
    cell = Cell.from_json(doc)
    mean = sum(samples) / len(samples)
    sd = math.sqrt(sum((x - mean) ** 2 for x in samples) / (len(samples) - 1)) if len(samples) > 1 else 0.0
    summary = dataclasses.replace(
        cell.summary,
        throughput=dataclasses.replace(cell.summary.throughput, mean=mean, half_width=sd, n=len(samples)),
        latency_ms=Percentiles(p50=p99 / 2, p95=p99, p99=p99, max=p99),
        jobs=dataclasses.replace(cell.summary.jobs, submitted=100, done=100, failed=0, timed_out=0),
        cv=sd / mean if mean else None,
        busy_runs=0,
    )
    return dataclasses.replace(
        cell, workers=workers, concurrency=concurrency, rate_per_s=rate, repeats=repeats, summary=summary
    )


def test_usl_fit_recovers_the_parameters_of_synthetic_points() -> None:
    n = [1, 2, 4, 8, 16, 32]
    x = [sc.usl_model(v, 100.0, 0.05, 0.002) for v in n]
    usl = sc.fit_usl(n, x)
    assert usl is not None
    assert usl.lambda_ == pytest.approx(100, rel=1e-3)
    assert usl.sigma == pytest.approx(0.05, rel=1e-2) and usl.kappa == pytest.approx(0.002, rel=1e-2)
    assert usl.r2 > 0.999
    assert usl.peak_workers == pytest.approx(math.sqrt(0.95 / 0.002), abs=0.1)
    assert usl.peak_jobs_per_s == pytest.approx(sc.usl_model(usl.peak_workers or 0, 100, 0.05, 0.002), rel=1e-3)
    assert codec.encode(usl)["lambda"] == usl.lambda_  # the key is "lambda", as the design names it


def test_usl_words_say_the_model_and_refuse_a_poor_fit_or_too_few_points() -> None:
    good = [_cell("celery", [sc.usl_model(n, 100, 0.04, 0.0002)] * 3, workers=n) for n in (1, 2, 4, 8)]
    noisy = [_cell("process", [v] * 3, workers=n) for n, v in zip((1, 2, 4, 8), (100, 20, 180, 40), strict=True)]
    few = [_cell("hybrid", [100.0 * n] * 3, workers=n) for n in (1, 2, 3)]
    fits = {s.mode: s for s in sc.scaling(good + noisy + few)}
    words = sc.usl_words(fits["celery"])
    assert words.startswith("celery on cpu: contention 4.0 %, coherency 0.02 %, predicted peak at 69 workers")
    assert "extrapolation" in words
    poor = fits["process"]
    assert poor.usl is not None and poor.usl.r2 < sc.MIN_R2 and not sc.good_fit(poor)
    assert "fits poorly" in sc.usl_words(poor) and "contention" not in sc.usl_words(poor)
    assert fits["hybrid"].usl is None and "at least 4" in sc.usl_words(fits["hybrid"])


def test_no_model_for_an_executor_that_workers_do_not_change() -> None:
    same = [_cell("thread", [100.0 + n] * 3, workers=n, settings={"threads": 10}) for n in (1, 2, 4, 8)]
    (fit,) = sc.scaling(same)
    assert fit.usl is None and "does not change with workers" in (fit.note or "")


def test_slo_verdict_names_each_executors_highest_rate_meeting_p99() -> None:
    cells = [
        _cell("hybrid", [r] * 3, rate=r, p99=p99)
        for r, p99 in ((200.0, 20.0), (400.0, 60.0), (640.0, 90.0), (800.0, 400.0))
    ]
    cells += [_cell("thread", [r] * 3, rate=r, p99=p99) for r, p99 in ((200.0, 30.0), (400.0, 99.0), (640.0, 300.0))]
    cells += [_cell("async", [r * 0.5] * 3, rate=r, p99=50.0) for r in (200.0, 400.0)]  # never keeps up
    (verdict,) = [v for v in sweep_verdicts(cells, slo_ms=100.0) if v.kind == "capacity"]
    assert verdict.text.startswith("At p99 <= 100 ms on cpu: hybrid sustains 640 jobs/s, thread 400")
    assert "async meets it at none of the rates tried (200, 400, 640, 800 jobs/s)" in verdict.text
    assert verdict.figures["sustained"] == {"hybrid": 640.0, "thread": 400.0, "async": None}


def test_verdicts_use_log_ratios_with_holm_across_the_sweep() -> None:
    # Alone the marginal lead is significant; among a sweep's comparisons (one clear, one tie) Holm
    # makes it a tie. The clear lead's interval excludes 1 and its text shows the interval.
    clear = [_cell("async", [200, 201, 199], mix="io"), _cell("thread", [100, 101, 99], mix="io")]
    marginal = [_cell("async", [107, 101, 104]), _cell("thread", [100, 94, 97])]
    tie = [_cell("async", [100, 110, 90], mix="hash"), _cell("thread", [99, 109, 91], mix="hash")]
    alone = sweep_verdicts(marginal)
    assert alone[0].figures["versus"][0]["p_value"] < 0.05 and "wins" in alone[0].text
    both = {v.figures["mix"]: v for v in sweep_verdicts(clear + marginal + tie) if v.kind == "mix"}
    versus = both["cpu"].figures["versus"][0]
    assert versus["p_holm"] >= 0.05 > versus["p_value"] and "ties" in both["cpu"].text
    io = both["io"].figures["versus"][0]
    assert io["significant"] and io["ci95"][0] > 1 and "2.00x (" in both["io"].text


def test_crossover_is_named_as_interpolated_with_its_range() -> None:
    def series(mode: str, by_share: dict[float, float]) -> list[Cell]:
        out = []
        for share, rate in by_share.items():
            cell = _cell(mode, [rate * 0.98, rate, rate * 1.02], mix=f"cpu {share:.0%}")
            mix = {"sleep": 1 - share, "cpu": share} if share < 1 else {"cpu": 1.0}
            out.append(dataclasses.replace(cell, cpu_share=share, mix={k: v for k, v in mix.items() if v}))
        return out

    cells = series("async", {0.0: 1000.0, 0.5: 100.0, 1.0: 50.0})
    cells += series("process", {0.0: 100.0, 0.5: 200.0, 1.0: 90.0})
    (verdict,) = [v for v in sweep_verdicts(cells) if v.kind == "crossover"]
    assert verdict.figures["between"] == [0.0, 0.5] and verdict.figures["interpolated"] is True
    low, high = verdict.figures["range"]
    assert 0.0 <= low <= verdict.figures["estimate"] <= high <= 0.5
    assert "interpolated" in verdict.text and "95 % range" in verdict.text


def test_noise_warnings_for_scatter_busy_runs_and_efficiency_above_the_bound() -> None:
    doc, _ = _template()
    steady = _cell("async", [100, 101, 99])
    scattered = _cell("thread", [50, 100, 150])
    busy = dataclasses.replace(steady, mode="process", summary=dataclasses.replace(steady.summary, busy_runs=2))
    over = dataclasses.replace(steady, mode="celery", summary=dataclasses.replace(steady.summary, efficiency=1.2))
    warnings = noise_warnings(dataclasses.replace(doc, cells=[steady, scattered, busy, over]))
    assert len(warnings) == 3
    assert warnings[0].startswith("thread x cpu: its repeats scatter (coefficient of variation 50 %")
    assert "2 of its 3 runs began on a busy machine" in warnings[1]
    assert "measurement problem, not a result" in warnings[2]


def test_compare_warns_when_machines_or_calibrations_differ() -> None:
    doc = load_results(DATA / "v1-sweep-results.json")
    same = compare_results(doc, doc, [])
    assert same.warnings == []
    assert all(f.p_holm is not None and not f.significant for c in same.cells for f in c.metrics.values())
    other = dataclasses.replace(
        doc,
        machine=dataclasses.replace(doc.machine, cpus=doc.machine.cpus + 6, python="3.12.1"),
        calibration=dataclasses.replace(doc.calibration, hash_rounds_per_ms=doc.calibration.hash_rounds_per_ms * 2)
        if doc.calibration
        else None,
    )
    warnings = compare_results(doc, other, []).warnings
    assert any("cores" in w for w in warnings) and any("Python 3.11" in w for w in warnings)
    assert doc.calibration is None or any("calibrations differ" in w for w in warnings)


def test_old_results_still_load_and_render_with_the_new_sections(tmp_path: Path) -> None:
    from runner.report.export import write_report

    doc = with_verdicts(load_results(DATA / "v1-sweep-results.json"))
    assert doc.scaling is None and all(c.workers is None for c in doc.cells)
    write_report(doc, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Asynchronous Programming" in text and "Race conditions" in text and "seed" not in text


def test_axes_parse_and_validate() -> None:
    assert parse_axis("1, 2,4", "workers") == (1, 2, 4)
    sweep = build_sweep({"workers": (1, 2), "concurrency": (10,), "rate": (0.0, 50.0)}, quick=True)
    assert sweep.groups() == [(1, 10), (2, 10)] and sweep.rate_values() == (0.0, 50.0)
    assert build_sweep({}, quick=True).groups() == [(build_sweep({}, quick=True).workers, 500)]
    for bad, field in (
        ({"workers": (1, 1)}, "--workers"),
        ({"concurrency": (0, 5)}, "--concurrency"),
        ({"rate": (-1.0,)}, "--rate"),
        ({"slo_p99_ms": 100.0}, "--slo-p99-ms"),
    ):
        with pytest.raises(InputError, match=field):
            build_sweep(bad, quick=True)
    with pytest.raises(InputError, match="--workers"):
        parse_axis("1,x", "workers")


def test_race_preset_is_typed_and_reported_beside_the_article(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "race"
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "bench", "--preset", "race", "--quick", "--quiet", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = load_results(out / "results.json")
    assert doc.presets is not None and doc.presets.race is not None
    race = {v.variant: v for v in doc.presets.race.variants}
    assert race["coroutines"].lost == 0 and race["threads-lock"].lost == 0 and race["processes-lock"].lost == 0
    assert all(v.visible + v.lost == v.increments for v in race.values())
    report = (out / "report.md").read_text()
    assert "Preset `race`" in report and "| threads, plain read-modify-write | thread |" in report
    assert "very likely (context switches)" in report and "lost updates per million, worst variant: coroutine" in report
    assert "Asynchronous Programming" in report and "seed" not in report.lower()
    assert any(v.preset == "race" and "per million" in v.text for v in doc.verdicts)


def test_compare_matches_cells_on_the_axes_that_vary_and_old_files_on_mode_and_mix() -> None:
    old = load_results(DATA / "v1-sweep-results.json")
    new = dataclasses.replace(old, cells=[dataclasses.replace(c, workers=2, concurrency=10) for c in old.cells])
    assert {(c.mode, c.mix) for c in compare_results(old, new, []).cells} == {(c.mode, c.mix_name) for c in old.cells}
    two = [dataclasses.replace(c, workers=w, concurrency=10) for c in old.cells for w in (1, 2)]
    swept = dataclasses.replace(old, cells=two)
    mixes = {c.mix for c in compare_results(swept, swept, []).cells}
    assert mixes == {f"{c.mix_name} (workers {w})" for c in old.cells for w in (1, 2)}
