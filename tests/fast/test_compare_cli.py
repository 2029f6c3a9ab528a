"""``runner compare`` through the command line on small hand-made results: each metric's rule,
signed thresholds (``-`` for a fall, ``+`` for a rise), the significance gate, exit codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import invoke


@pytest.fixture(scope="module", autouse=True)
def _template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A real results file (a tiny bench on the stub executor) whose cells the tests fill in: results
    files are validated, so hand-made ones would test the validator, not compare."""
    from tests.stub_executor import NAME, TARGET
    from workers.registry import registered

    out = tmp_path_factory.mktemp("template")
    with registered(NAME, TARGET):
        result = invoke(
            "bench", "--modes", "stub", "--mix", "io:sleep=1", "--repeats", "3", "--run-s", "0.01",
            "--io-ms", "1", "--out", str(out),
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    _TEMPLATE.update(json.loads((out / "results.json").read_text()))


_TEMPLATE: dict[str, Any] = {}


def _doc(cells: dict[tuple[str, str], list[tuple[float, float, float, float]]]) -> dict[str, Any]:
    """Results with, per (mode, mix), repeats of (throughput, p50, p95, p99)."""
    doc = copy.deepcopy(_TEMPLATE)
    model = doc["cells"][0]
    doc["cells"] = []
    for (mode, mix), runs in cells.items():
        cell = copy.deepcopy(model)
        cell["mode"], cell["mix_name"] = mode, mix
        repeats = []
        for t, p50, p95, p99 in runs:
            run = copy.deepcopy(model["repeats"][0])
            run["throughput_jobs_per_s"] = t
            run["latency_ms"].update({"p50": p50, "p95": p95, "p99": p99})
            repeats.append(run)
        cell["repeats"] = repeats
        doc["cells"].append(cell)
    return doc


BASE = [(100.0, 10.0, 20.0, 30.0), (101.0, 10.1, 20.2, 30.3), (99.0, 9.9, 19.8, 29.7)]


def _scaled(factor: dict[int, float]) -> list[tuple[float, float, float, float]]:
    out = []
    for run in BASE:
        values = list(run)
        for index, f in factor.items():
            values[index] *= f
        out.append((values[0], values[1], values[2], values[3]))
    return out


def _compare(tmp_path: Path, new: list[tuple[float, float, float, float]], *rules: str) -> tuple[int, dict[str, Any]]:
    base_path, new_path = tmp_path / "base.json", tmp_path / "new.json"
    base_path.write_text(json.dumps(_doc({("async", "io"): BASE})))
    new_path.write_text(json.dumps(_doc({("async", "io"): new})))
    args = [arg for rule in rules for arg in ("--fail-if", rule)]
    result = invoke("compare", str(base_path), str(new_path), *args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(("metric", "index"), [("p50", 1), ("p95", 2), ("p99", 3)])
def test_a_latency_rise_past_its_threshold_fails(tmp_path: Path, metric: str, index: int) -> None:
    code, outcome = _compare(tmp_path, _scaled({index: 1.2}), f"{metric}:+10%")
    assert code == 1
    (regression,) = outcome["regressions"]
    assert regression["rule"] == f"{metric}:+10%" and regression["change_pct"] == pytest.approx(20)
    assert (regression["mode"], regression["mix"]) == ("async", "io") and regression["significant"]
    # The same rise under the threshold, a fall, or a rise in another metric: no regression.
    assert _compare(tmp_path, _scaled({index: 1.08}), f"{metric}:+10%")[0] == 0
    assert _compare(tmp_path, _scaled({index: 0.5}), f"{metric}:+10%")[0] == 0
    other = 1 + index % 3
    assert _compare(tmp_path, _scaled({other: 1.5}), f"{metric}:+10%")[0] == 0


def test_throughput_fall_against_a_minus_threshold(tmp_path: Path) -> None:
    code, outcome = _compare(tmp_path, _scaled({0: 0.9}), "throughput:-5%")
    assert code == 1 and outcome["regressions"][0]["change_pct"] == pytest.approx(-10)
    assert outcome["regressions"][0]["base"] == pytest.approx(100) and outcome["regressions"][0][
        "new"
    ] == pytest.approx(90)
    assert _compare(tmp_path, _scaled({0: 0.96}), "throughput:-5%")[0] == 0
    assert _compare(tmp_path, _scaled({0: 1.5}), "throughput:-5%")[0] == 0  # faster is never a regression
    # A '+' rule on throughput fails on a rise (e.g. to catch a too-good-to-be-true run).
    assert _compare(tmp_path, _scaled({0: 1.5}), "throughput:+20")[0] == 1


def test_a_change_within_the_noise_is_not_a_regression(tmp_path: Path) -> None:
    noisy = [(50.0, 10.0, 20.0, 30.0), (150.0, 10.0, 20.0, 30.0), (70.0, 10.0, 20.0, 30.0)]
    code, outcome = _compare(tmp_path, noisy, "throughput:-5%")
    assert code == 0 and outcome["regressions"] == []
    figure = outcome["cells"][0]["metrics"]["throughput"]
    assert figure["change_pct"] == pytest.approx(-10) and figure["p_value"] > 0.05 and not figure["significant"]


def test_every_metric_is_reported_and_rules_listed(tmp_path: Path) -> None:
    code, outcome = _compare(tmp_path, BASE, "throughput:-5%", "p99:+10%")
    assert code == 0 and outcome["rules"] == ["throughput:-5%", "p99:+10%"] and outcome["missing"] == []
    metrics = outcome["cells"][0]["metrics"]
    assert set(metrics) == {"throughput", "p50", "p95", "p99"}
    p95 = {key: metrics["p95"][key] for key in ("base", "new", "change_pct", "p_value", "significant", "ratio")}
    assert p95 == {"base": 20.0, "new": 20.0, "change_pct": 0.0, "p_value": 1.0, "significant": False, "ratio": 1.0}


def test_cells_in_one_file_only_are_listed(tmp_path: Path) -> None:
    base, new = tmp_path / "b.json", tmp_path / "n.json"
    base.write_text(json.dumps(_doc({("async", "io"): BASE, ("thread", "io"): BASE, ("process", "cpu"): BASE})))
    new.write_text(json.dumps(_doc({("process", "cpu"): BASE, ("async", "io"): BASE, ("gevent", "io"): BASE})))
    outcome = json.loads(invoke("compare", str(base), str(new), "--json").stdout)
    assert [(c["mode"], c["mix"]) for c in outcome["cells"]] == [("async", "io"), ("process", "cpu")]  # base's order
    assert outcome["missing"] == ["gevent x io", "thread x io"]
    # base's order, not the alphabet's
    base.write_text(json.dumps(_doc({("thread", "io"): BASE, ("async", "io"): BASE})))
    new.write_text(json.dumps(_doc({("async", "io"): BASE, ("thread", "io"): BASE})))
    outcome = json.loads(invoke("compare", str(base), str(new), "--json").stdout)
    assert [c["mode"] for c in outcome["cells"]] == ["thread", "async"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("throughput:5%", "--fail-if: 'throughput:5%' is not METRIC:+/-PCT, e.g. throughput:-5% or p99:+10%"),
        ("p99", "--fail-if: 'p99' is not METRIC:+/-PCT, e.g. throughput:-5% or p99:+10%"),
        ("latency:+5%", "--fail-if: unknown metric 'latency'; choose from: throughput, p50, p95, p99, vs_bare"),
    ],
)
def test_bad_rules_are_one_line_and_exit_2(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_doc({("async", "io"): BASE})))
    result = invoke("compare", str(path), str(path), "--fail-if", rule)
    assert result.exit_code == 2 and result.stderr == f"runner: error: {message}\n"


def test_results_without_cells_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_doc({})))
    result = invoke("compare", str(path), str(path))
    message = "runner: error: runner compare needs two sweep results with cells (presets alone have none)\n"
    assert result.exit_code == 2 and result.stderr == message
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_doc({("async", "io"): BASE})))
    for pair in ((other, path), (path, other)):  # one side without cells is enough to refuse
        assert invoke("compare", *map(str, pair)).stderr == message


def test_the_table_names_a_regression(tmp_path: Path) -> None:
    base, new = tmp_path / "b.json", tmp_path / "n.json"
    base.write_text(json.dumps(_doc({("async", "io"): BASE})))
    new.write_text(json.dumps(_doc({("async", "io"): _scaled({3: 2.0})})))
    result = invoke("compare", str(base), str(new), "--fail-if", "p99:+10%")
    assert result.exit_code == 1
    assert "REGRESSION async x io: p99:+10% breached (+100.0%" in result.stderr
    ok = invoke("compare", str(base), str(base), "--fail-if", "p99:+10%")
    assert ok.exit_code == 0 and "no significant regression (p99:+10%)" in ok.stderr


def _constant(throughput: float, p99: float) -> list[tuple[float, float, float, float]]:
    return [(throughput, 10.0, 20.0, p99)] * 3  # no spread: any difference is significant (p = 0)


def test_a_change_exactly_at_the_threshold_breaches_it(tmp_path: Path) -> None:
    base, new = tmp_path / "b.json", tmp_path / "n.json"
    base.write_text(json.dumps(_doc({("async", "io"): _constant(100.0, 40.0)})))
    new.write_text(json.dumps(_doc({("async", "io"): _constant(50.0, 60.0)})))  # exactly -50 % and +50 %

    def code(*rule: str) -> int:
        return invoke("compare", str(base), str(new), "--fail-if", *rule).exit_code

    assert code("throughput:-50%") == 1 and code("throughput:-50.5%") == 0
    assert code("p99:+50%") == 1 and code("p99:+50.5%") == 0
    assert code("p99:+0.5%") == 1 and code("p99:+0%") == 1  # small and zero '+' thresholds: any rise
    # p50 did not change: it reaches +0 %, but without spread or difference Welch's test says p = 1.
    assert code("p50:+0%") == 0


def test_a_base_of_zero_is_an_infinite_change(tmp_path: Path) -> None:
    base, new = tmp_path / "b.json", tmp_path / "n.json"
    base.write_text(json.dumps(_doc({("async", "io"): _constant(0.0, 40.0)})))
    new.write_text(json.dumps(_doc({("async", "io"): _constant(5.0, 40.0)})))
    outcome = json.loads(invoke("compare", str(base), str(new), "--json").stdout)
    assert outcome["cells"][0]["metrics"]["throughput"]["change_pct"] is None  # infinite: JSON has no inf


def test_the_table_as_a_user_reads_it(tmp_path: Path) -> None:
    base, new = tmp_path / "b.json", tmp_path / "n.json"
    base.write_text(json.dumps(_doc({("async", "io"): _constant(100.0, 40.0), ("thread", "io"): BASE})))
    new.write_text(json.dumps(_doc({("async", "io"): _constant(50.0, 60.0), ("thread", "io"): BASE})))
    result = invoke("compare", str(base), str(new), env={"COLUMNS": "120"})  # wide enough, whatever the CI's
    assert result.exit_code == 0
    assert [line.rstrip() for line in result.stderr.splitlines()] == [
        "new vs base: change of the mean (Holm-adjusted p of Welch's test on log ratios)",
        "┏━━━━━━━━┳━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓",
        "┃ mode   ┃ mix ┃      throughput ┃            p50 ┃            p95 ┃             p99 ┃",
        "┡━━━━━━━━╇━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩",
        "│ async  │ io  │ -50.0% (p=0.00) │ +0.0% (p=1.00) │ +0.0% (p=1.00) │ +50.0% (p=0.00) │",
        "│ thread │ io  │  +0.0% (p=1.00) │ +0.0% (p=1.00) │ +0.0% (p=1.00) │  +0.0% (p=1.00) │",
        "└────────┴─────┴─────────────────┴────────────────┴────────────────┴─────────────────┘",
    ]


def test_vs_bare_compares_the_ratio_to_the_bare_primitive_where_recorded(tmp_path: Path) -> None:
    # benchmarks/overhead.py's files: each repeat carries the bare primitive's rate of its round. A
    # busier machine slows both alike (throughput falls, the ratio holds); runner's own slow-down
    # shows in the ratio.
    def doc(runs: list[tuple[float, float]]) -> dict[str, Any]:
        out = _doc({("process", "noop vs bare"): [(t, 1.0, 2.0, 3.0) for t, _ in runs]})
        for run, (_, bare) in zip(out["cells"][0]["repeats"], runs, strict=True):
            run["bare_jobs_per_s"] = bare
        return out

    base = [(100.0, 1000.0), (101.0, 1000.0), (99.0, 1000.0)]
    cases = {
        "busier": [(50.0, 500.0), (50.5, 500.0), (49.5, 500.0)],
        "slower": [(80.0, 1000.0), (80.8, 1000.0), (79.2, 1000.0)],
    }
    (tmp_path / "base.json").write_text(json.dumps(doc(base)))
    outcomes = {}
    for name, runs in cases.items():
        (tmp_path / "new.json").write_text(json.dumps(doc(runs)))
        result = invoke(
            "compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"), "--fail-if", "vs_bare:-10%", "--json"
        )
        outcomes[name] = (result.exit_code, json.loads(result.stdout))
    assert outcomes["busier"][0] == 0
    assert outcomes["busier"][1]["cells"][0]["metrics"]["vs_bare"]["change_pct"] == pytest.approx(0)
    assert outcomes["slower"][0] == 1
    assert outcomes["slower"][1]["regressions"][0]["rule"] == "vs_bare:-10%"
    # A sweep's file has no bare rates: no vs_bare figure, and a vs_bare rule has nothing to judge.
    code, outcome = _compare(tmp_path, BASE, "vs_bare:-10%")
    assert code == 0 and "vs_bare" not in outcome["cells"][0]["metrics"]


def test_a_regression_carries_the_holm_adjusted_p_and_the_ratio_its_interval(tmp_path: Path) -> None:
    code, outcome = _compare(tmp_path, _scaled({0: 0.5}), "throughput:-10%")
    figure = outcome["cells"][0]["metrics"]["throughput"]
    assert code == 1 and outcome["regressions"][0]["p_value"] == figure["p_holm"]
    # four figures compared: Holm multiplies the smallest p by 4
    assert figure["p_holm"] == pytest.approx(4 * figure["p_value"]) and figure["p_holm"] != figure["p_value"]
    low, high = figure["ci95"]
    assert figure["ratio"] == pytest.approx(0.5) and low < figure["ratio"] < high


def test_a_zero_figure_has_no_ratio_nor_interval(tmp_path: Path) -> None:
    from runner.engine.bench_results import BenchResults
    from runner.report.compare import compare_results

    base = BenchResults.from_json(_doc({("async", "io"): BASE}))
    new = BenchResults.from_json(_doc({("async", "io"): _scaled({1: 0.0})}))
    figure = compare_results(base, new, []).cells[0].metrics["p50"]
    assert (figure.change_pct, figure.ratio, figure.ci95) == (-100.0, None, None)


def test_significance_is_judged_on_the_holm_adjusted_p(tmp_path: Path) -> None:
    # 2.5 % slower with the same spread: Welch's p is about 0.036 alone, but four figures are
    # compared, so Holm's is about 0.14 -- not significant, and no rule can breach on it.
    code, outcome = _compare(tmp_path, _scaled({0: 0.975}), "throughput:-1%")
    figure = outcome["cells"][0]["metrics"]["throughput"]
    assert figure["p_value"] == pytest.approx(0.0362, abs=1e-3) and figure["p_holm"] == pytest.approx(0.1448, abs=4e-3)
    assert not figure["significant"] and code == 0 and outcome["regressions"] == []


def test_a_rule_on_a_missing_figure_does_not_hide_the_rules_after_it(tmp_path: Path) -> None:
    code, outcome = _compare(tmp_path, _scaled({0: 0.5}), "vs_bare:-10%", "throughput:-10%")
    assert code == 1 and [r["rule"] for r in outcome["regressions"]] == ["throughput:-10%"]


def test_machine_warnings_are_part_of_the_comparison(tmp_path: Path) -> None:
    base, new = _doc({("async", "io"): BASE}), _doc({("async", "io"): BASE})
    new["machine"]["cpus"] = base["machine"]["cpus"] + 6
    (tmp_path / "b.json").write_text(json.dumps(base))
    (tmp_path / "n.json").write_text(json.dumps(new))
    outcome = json.loads(invoke("compare", str(tmp_path / "b.json"), str(tmp_path / "n.json"), "--json").stdout)
    cores = base["machine"]["cpus"]
    assert outcome["warnings"] == [f"the machines differ: cores {cores} vs {cores + 6}"]


@pytest.mark.parametrize("side", ["base", "new"])
def test_a_cell_without_repeats_cannot_be_compared(side: str) -> None:
    from runner.engine.bench_results import BenchResults
    from runner.report.compare import compare_results
    from workers.errors import InputError

    docs = {"base": _doc({("async", "io"): BASE}), "new": _doc({("async", "io"): BASE})}
    docs[side]["cells"][0]["repeats"] = []
    with pytest.raises(InputError) as raised:
        compare_results(BenchResults.from_json(docs["base"]), BenchResults.from_json(docs["new"]), [])
    assert str(raised.value) == "runner compare: a cell without repeats cannot be compared"


def test_the_help_names_every_metric_a_rule_may_use() -> None:
    from runner.report.compare import METRICS

    text = " ".join(invoke("compare", "--help").output.split())
    assert f"METRIC ({', '.join(METRICS)})" in text
