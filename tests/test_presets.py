"""The seed-article presets, run for real at --quick size: the document's shape, the properties the
article claims (which must hold on any machine), and the report section each one renders."""

from __future__ import annotations

from typing import Any

import pytest

from runner import __version__
from runner.engine.results import BenchResults
from runner.experiments.presets import expand, run_presets
from runner.experiments.spawn_cost import measure_in_child
from runner.report.charts import preset_charts
from runner.report.presets import markdown
from runner.report.verdicts import with_verdicts
from workers.errors import InputError


def _run(name: str) -> tuple[BenchResults, list[tuple[int, int, str]]]:
    steps: list[tuple[int, int, str]] = []
    doc = run_presets([name], quick=True, step=lambda done, total, label: steps.append((done, total, label)))
    return with_verdicts(doc), steps


def _check_document(typed: BenchResults, name: str, steps: list[tuple[int, int, str]]) -> dict[str, Any]:
    doc = typed.to_json()
    assert doc["schema_version"] == 1 and doc["kind"] == "runner-bench"
    assert doc["runner_version"] == __version__
    assert doc["cells"] == [] and list(doc["presets"]) == [name]
    assert doc["machine"]["cpus"] >= 1 and doc["wall_s"] > 0 and doc["started_at"]
    (verdict,) = doc["verdicts"]
    assert verdict["kind"] == "preset" and verdict["preset"] == name
    assert any(ch.isdigit() for ch in verdict["text"]) and "+/-" in verdict["text"]
    # Progress counts up to a total that stays fixed and ends with done == total.
    totals = {total for _, total, _ in steps}
    assert len(totals) == 1 and [done for done, _, _ in steps] == list(range(len(steps)))
    assert steps[-1][0] == steps[-1][1]
    text = markdown(typed)
    assert text.startswith("## ") and text.count("\n## ") == 0 and verdict["text"] in text and "| --- |" in text
    (chart,) = preset_charts(typed)
    assert chart.title and chart.png.startswith(b"\x89PNG") and len(chart.png) > 5000
    fig: dict[str, Any] = doc["presets"][name]
    return fig


def test_requests_concurrent_calls_take_about_one_call() -> None:
    doc, steps = _run("requests")
    fig = _check_document(doc, "requests", steps)
    plan, variants = fig["plan"], fig["variants"]
    call_s = plan["call_ms"] / 1000
    seq = variants["sequential"]["wall_s"]
    assert seq["n"] == plan["repeats"] >= 3
    # Calls one after another cannot beat the sum of their delays; at once they cannot beat one delay.
    assert seq["mean"] >= plan["calls"] * call_s
    for name in ("coroutines", "threads"):
        wall = variants[name]["wall_s"]
        assert call_s <= wall["mean"] < 0.6 * seq["mean"], (name, wall, seq)
        assert fig["ratios"][name]["vs_sequential"] < 0.6
    assert "11.4 s" in markdown(doc)  # the article's figure beside ours


def test_spawn_costs_rise_from_coroutine_to_thread_to_process() -> None:
    doc, steps = _run("spawn")
    fig = _check_document(doc, "spawn", steps)
    kinds = fig["kinds"]
    order = ("coroutine", "thread", "process")
    for key in ("time_per_unit_us", "memory_per_unit_kib"):
        means = [kinds[k][key]["mean"] for k in order]
        assert 0 < means[0] < means[1] < means[2], (key, means)
    assert fig["order_holds"] == {"time": True, "memory": True}
    for kind, figures in kinds.items():
        assert figures["n"] == fig["plan"][kind.replace("-", "_")] > 0  # the measured N is stated
        assert figures["million"]["extrapolated"] is True
        assert len(figures["samples"]) == fig["plan"]["repeats"]
    assert kinds["process"]["samples"][0]["children_uss_bytes"] > 0
    text = markdown(doc)
    assert "extrapolat" in text and f"{kinds['coroutine']['n']:,}" in text and "1,112 MB" in text


def test_blocking_inline_cpu_lags_the_loop_more_than_offloaded() -> None:
    doc, steps = _run("blocking")
    fig = _check_document(doc, "blocking", steps)
    inline, offloaded = fig["modes"]["inline"], fig["modes"]["offloaded"]
    assert inline["loop_lag_p99_ms"]["mean"] > offloaded["loop_lag_p99_ms"]["mean"]
    # A job run inline holds the loop for as long as it runs: the lag reaches at least one job's length.
    assert inline["loop_lag_p99_ms"]["mean"] >= 0.8 * inline["job_ms_p50"]["mean"]
    assert inline["probe_p99_ms"]["mean"] > offloaded["probe_p99_ms"]["mean"]
    for mode in (inline, offloaded):
        assert len(mode["repeats"]) == fig["plan"]["repeats"]
        assert all(r["probes"] > 0 and r["jobs_per_s"] > 0 for r in mode["repeats"])


def test_preset_names_expand_and_are_checked() -> None:
    assert expand(["all"]) == ["requests", "spawn", "blocking", "race"]
    assert expand(["blocking", "requests", "blocking"]) == ["requests", "blocking"]
    with pytest.raises(InputError, match="unknown preset 'nope'"):
        expand(["nope"])
    with pytest.raises(InputError):
        expand([])
    with pytest.raises(InputError, match="unknown unit kind"):
        measure_in_child("fiber", 1)
