"""The command line as users meet it: a real subprocess, and click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli.main import cli
from tests.cli import run_cli


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--mode", "nope"], "--mode"),
        (["--jobs", "-1"], "--jobs"),
        (["--jobs", "abc"], "--jobs"),
        (["--mix", "cpu=abc"], "--mix"),
        (["--mix", "teleport=1"], "--mix"),
        (["--mix", "cpu=-1"], "--mix"),
        (["--mix", "cpu=0"], "--mix"),
        (["--timeout", "0"], "--timeout"),
        (["--concurrency", "0"], "--concurrency"),
        (["--io-ms", "nan"], "--io-ms"),
        (["--mode", "process", "--workers", "0"], "--workers"),
        (["--mode", "celery", "--celery-workers", "0"], "--celery-workers"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(args: list[str], names: str) -> None:
    proc = run_cli("submit", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert names in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("jobs = 10\ncolour = 'red'\n", "'colour'"),
        ("jobs = 'ten'\n", "--jobs"),
        ("jobs = 1.5\n", "--jobs"),
        ("mix = { sleep = 'x' }\n", "--mix"),
        ("mode = 3\n", "'mode'"),
        ("mode = 'warp'\n", "--mode"),
        ("jobs = [\n", "not valid TOML"),
    ],
)
def test_bad_spec_files_are_one_line_and_exit_2(tmp_path: Path, text: str, names: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    proc = run_cli("submit", "--spec", str(spec))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], proc.stderr


def test_submit_json_is_one_object_on_stdout(tmp_path: Path) -> None:
    proc = run_cli(
        "submit",
        "--mode",
        "thread",
        "--jobs",
        "50",
        "--mix",
        "sleep=1,cpu=1",
        "--io-ms",
        "2",
        "--cpu-ms",
        "1",
        "--json",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["jobs"]["done"] == 50
    assert json.loads((tmp_path / "result.json").read_text())["jobs"] == result["jobs"]
    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in ledger) == list(range(50))
    assert {r["status"] for r in ledger} == {"done"}


def test_spec_file_with_flag_overrides(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('mode = "thread"\njobs = 500\nmix = { sleep = 1 }\nio_ms = 1\n')
    result = CliRunner().invoke(cli, ["submit", "--spec", str(spec), "--jobs", "30", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["mode"] == "thread" and doc["jobs"]["submitted"] == 30 and doc["kinds"] == {"sleep": 30}


def test_environment_sets_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_SUBMIT_JOBS", "7")
    result = CliRunner().invoke(cli, ["submit", "--mix", "sleep=1", "--io-ms", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["jobs"]["done"] == 7


def test_several_modes_print_one_json_line_each() -> None:
    result = CliRunner().invoke(
        cli, ["submit", "--mode", "async,thread", "--jobs", "20", "--mix", "sleep=1", "--io-ms", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["mode"] for d in docs] == ["async", "thread"]


def test_help_everywhere() -> None:
    for args in ([], ["submit"], ["target"]):
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_table_goes_to_stderr() -> None:
    proc = run_cli("submit", "--mode", "async", "--jobs", "20", "--mix", "sleep=1", "--io-ms", "1")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "throughput" in proc.stderr and "done 20" in proc.stderr
