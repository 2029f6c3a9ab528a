"""``runner bench --preset NAME`` as a user runs it (a real ``python -m runner``), for each preset at
``--quick`` size: exit 0, a results file holding that preset alone, its verdict printed and written,
the report's section for it, and the preset's own real components (the HTTP target for requests
and blocking, forked processes for spawn and race) stopped afterwards. What each preset measures is
checked in ``tests/test_presets.py`` (through the Python API); here it is the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.experiments.presets import PRESETS
from tests.cli import invoke, run_cli

TITLES = {
    "requests": "Preset `requests`",
    "spawn": "Preset `spawn`",
    "blocking": "Preset `blocking`",
    "race": "Preset `race`",
}


@pytest.mark.parametrize("name", PRESETS)
def test_each_preset_through_the_command_line(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    proc = run_cli("bench", "--preset", name, "--quick", "--quiet", "--out", str(out), timeout=280)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # everything a bench says goes to stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["kind"] == "runner-bench" and doc["quick"] is True and doc["cells"] == []
    assert list(doc["presets"]) == [name]
    (verdict,) = doc["verdicts"]
    assert verdict["preset"] == name and f"- {verdict['text']}" in proc.stderr.replace("\n", " ").replace("  ", " ")
    report = (out / "report.md").read_text()
    assert f"## {TITLES[name]}" in report and verdict["text"] in report
    assert (out / "report.html").is_file()
    assert not (out / "summary.csv").exists()  # no cells, no CSV
    assert sorted(TITLES) == sorted(PRESETS)  # a preset added without a title here is caught


def test_presets_given_twice_run_once_each_in_canonical_order(tmp_path: Path) -> None:
    proc = run_cli(
        "bench", "--preset", "race", "--preset", "spawn", "--preset", "race", "--quick", "--quiet",
        "--out", str(tmp_path), timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert list(doc["presets"]) == ["spawn", "race"]
    assert [v["preset"] for v in doc["verdicts"]] == ["spawn", "race"]


@pytest.mark.fast
def test_an_unknown_preset_is_bad_input_before_anything_is_written(tmp_path: Path) -> None:
    result = invoke("bench", "--preset", "nope", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "'nope' is not one of" in result.stderr
    assert not (tmp_path / "out").exists()
