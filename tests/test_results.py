"""The typed result documents: the committed JSON Schema is the one the types generate, real outputs
of ``runner submit --json`` and ``runner bench`` validate against it, results files written before
the types existed (schema_version 1) still load, and nothing written contains Infinity or NaN."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from runner.cli.main import cli
from runner.engine import codec
from runner.engine.results import BenchResults, RunResult, load_results
from runner.engine.schema import SCHEMA_FILE, render

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).with_name("data")
# Real results files written by runner at da10920, before the typed models: a 2 x 2 sweep with one
# repeat per cell (so Infinity half-widths) and `bench --preset spawn --quick`.
OLD_SWEEP, OLD_PRESETS = DATA / "v1-sweep-results.json", DATA / "v1-presets-results.json"


def _validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator({**schema, "oneOf": [{"$ref": f"#/$defs/{definition}"}]})


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), "run: python -m runner.engine.schema"


def test_real_submit_output_validates(tmp_path: Path) -> None:
    args = ["--mode", "async,thread", "--jobs", "60", "--mix", "sleep=1,cpu=1", "--io-ms", "2", "--cpu-ms", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "submit", *args, "--json", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    validator = _validator("RunResult")
    for line, mode in zip(lines, ("async", "thread"), strict=True):
        printed = _strict_json(line)
        validator.validate(printed)
        written = _strict_json((tmp_path / mode / "result.json").read_text())
        assert written == printed
        typed = RunResult.from_json(printed)
        assert typed.mode == mode and typed.jobs.done == 60 and typed.jobs.adds_up()
        assert typed.to_json() == printed  # every key read is written back, in the same order
        assert list(printed)[:3] == ["schema_version", "runner_version", "mode"]


def test_real_bench_output_validates(sweep_dir: Path) -> None:
    text = (sweep_dir / "results.json").read_text()
    data = _strict_json(text)
    _validator("BenchResults").validate(data)
    doc = BenchResults.from_json(data)
    assert doc.cells and all(cell.summary.jobs.adds_up() for cell in doc.cells)
    assert codec.encode(doc) == data


def test_real_bench_command_output_validates(tmp_path: Path) -> None:
    args = ["--modes", "async,thread", "--mix", "io:sleep=1", "--repeats", "2", "--io-ms", "1", "--run-s", "0.05"]
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "bench", *args, "--quiet", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stderr
    data = _strict_json((tmp_path / "results.json").read_text())
    _validator("BenchResults").validate(data)
    doc = BenchResults.from_json(data)
    assert [c.mode for c in doc.cells] == ["async", "thread"] and doc.warmup and doc.sweep is not None
    assert [v.kind for v in doc.verdicts] == ["mix"]


def test_results_of_schema_version_1_written_before_the_types_still_load(tmp_path: Path) -> None:
    raw = OLD_SWEEP.read_text()
    assert "Infinity" in raw  # the old writer let non-finite numbers through; they must still read
    doc = load_results(OLD_SWEEP)
    assert math.isinf(doc.cells[0].summary.throughput.half_width)  # one repeat: an unbounded interval
    assert {v.kind for v in doc.verdicts} >= {"mix", "loop"}
    rewritten = codec.dumps(doc)
    assert "Infinity" not in rewritten and "NaN" not in rewritten
    _validator("BenchResults").validate(_strict_json(rewritten))
    for old in (OLD_SWEEP, OLD_PRESETS):
        result = CliRunner().invoke(cli, ["report", str(old), "--out", str(tmp_path / old.stem)])
        assert result.exit_code == 0, result.output
        assert "## Verdicts" in (tmp_path / old.stem / "report.md").read_text()
    compared = CliRunner().invoke(cli, ["compare", str(OLD_SWEEP), str(OLD_SWEEP), "--json"])
    assert compared.exit_code == 0, compared.output
    outcome = _strict_json(compared.stdout)
    assert [c["mode"] for c in outcome["cells"]] == ["async", "thread", "async", "thread"]


def test_presets_document_round_trips() -> None:
    data = json.loads(OLD_PRESETS.read_text())
    doc = BenchResults.from_json(data)
    assert doc.presets is not None and doc.presets.names() == ["spawn"]
    assert doc.presets.spawn is not None and doc.presets.spawn.order_holds.memory in (True, False)
    again = codec.encode(doc)
    assert BenchResults.from_json(again) == doc  # typed -> JSON -> typed loses nothing
    # Every key the old writer wrote is written back (newer fields, e.g. the machine's state, add keys).
    assert set(data) <= set(again) and set(data["machine"]) <= set(again["machine"])
    assert again["presets"] == data["presets"] and again["verdicts"] == data["verdicts"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["cells"][1]["summary"]["throughput"].update(mean="fast"), "cells[1].summary.throughput.mean"),
        (lambda d: d["cells"][0]["repeats"][0]["jobs"].pop("done"), "cells[0].repeats[0].jobs.done: missing"),
        (lambda d: d.update(cells={"a": 1}), "cells: expected a list"),
        (lambda d: d["machine"].update(cpus=True), "machine.cpus: expected a whole number"),
    ],
)
def test_a_bad_value_is_named_by_its_path(change: Any, message: str) -> None:
    data = json.loads(OLD_SWEEP.read_text())
    change(data)
    with pytest.raises(Exception) as caught:
        BenchResults.from_json(data, "results.json")
    assert type(caught.value).__name__ == "InputError"
    assert str(caught.value).startswith("results.json: ") and message in str(caught.value)


def test_non_finite_numbers_are_written_as_null() -> None:
    assert codec.dumps({"a": [math.inf, -math.inf, math.nan, 1.5]}) == '{"a": [null, null, null, 1.5]}'
    interval = codec.decode(
        type(load_results(OLD_SWEEP).cells[0].summary.throughput),
        json.loads('{"mean": 2.0, "ci95": [null, null], "half_width": null, "n": 1}'),
    )
    assert math.isinf(interval.half_width) and interval.mean == 2.0


def test_measuring_never_imports_the_report() -> None:
    """Data flows cli -> experiments -> engine -> workers, and results -> report: nothing that
    measures imports presentation (or the command line)."""
    import ast

    offenders = []
    for layer in ("engine", "experiments"):
        for path in sorted((ROOT / "runner" / layer).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                offenders += [f"{path.name}: {n}" for n in names if n.startswith(("runner.report", "runner.cli"))]
    assert offenders == []
