"""Batching in plain sight: jobs per task in the terminal table, report.md/html and summary.csv of
real runs, and ``bench --batch`` through the command line (stub executor, fast)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.cli import invoke, run_cli
from tests.stub_executor import StubExecutor


def _bench(out: Path, *args: str) -> dict[str, Any]:
    result = invoke("bench", "--quiet", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())  # type: ignore[no-any-return]


def test_bench_batch_flag_reaches_every_run_and_the_report(stub: type[StubExecutor], tmp_path: Path) -> None:
    small = ("--modes", "stub", "--mix", "io:sleep=1", "--run-s", "0.02", "--io-ms", "1", "--repeats", "2")
    doc = _bench(tmp_path / "one", *small, "--batch", "1")
    assert doc["sweep"]["batch"] == 1
    assert [made.config.batch for made in stub.made] == [1]
    assert all(run["spec"]["batch"] == 1 for cell in doc["cells"] for run in cell["repeats"])
    assert "This sweep set `--batch 1` for every executor." in (tmp_path / "one" / "report.md").read_text()
    # No flag: each executor's own default, said so in the report.
    stub.made.clear()
    doc = _bench(tmp_path / "default", *small)
    assert "batch" not in doc["sweep"] and [made.config.batch for made in stub.made] == [None]
    assert "left `--batch` at each executor's default" in (tmp_path / "default" / "report.md").read_text()
    # The environment variable, as for every option.
    stub.made.clear()
    result = invoke("bench", "--quiet", *small, "--out", str(tmp_path / "env"), env={"RUNNER_BENCH_BATCH": "7"})
    assert result.exit_code == 0, result.output
    assert [made.config.batch for made in stub.made] == [7]
    bad = invoke("bench", *small, "--batch", "-1", "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "--batch" in bad.stderr


def test_report_and_csv_show_jobs_per_task_beside_the_figures(tmp_path: Path) -> None:
    # A real process pool batching cheap jobs (sized from cost), and threads, which send no tasks.
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'modes = ["process", "thread"]\nrepeats = 2\nrun_s = 0.05\nmin_jobs = 600\nmax_jobs = 600\n'
        'workers = 1\nconcurrency = 50\n[[mixes]]\nname = "tiny"\nmix = { noop = 1 }\n'
    )
    doc = _bench(tmp_path / "out", "--sweep", str(sweep))
    cells = {c["mode"]: c for c in doc["cells"]}
    per_task = cells["process"]["summary"]["jobs_per_task"]
    assert per_task > 1 and cells["process"]["summary"]["batch"] == "auto"
    assert "jobs_per_task" not in cells["thread"]["summary"]
    rows = {r["mode"]: r for r in csv.DictReader(io.StringIO((tmp_path / "out" / "summary.csv").read_text()))}
    assert float(rows["process"]["jobs_per_task"]) == per_task and rows["process"]["batch"] == "auto"
    assert rows["thread"]["jobs_per_task"] == "" and rows["thread"]["batch"] == ""
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Jobs per task" in report and "(batch auto)" in report
    for section in ("## Throughput", "## Latency"):  # beside the figures batching changed
        assert "(batched: " in report.split(section)[1].split("##")[0]
    assert "batched: " in (tmp_path / "out" / "report.html").read_text()
    (verdict,) = [v["text"] for v in doc["verdicts"] if v["kind"] == "mix"]
    assert "(batched: process " in verdict and "jobs/task)" in verdict  # beside the verdict too


def test_submit_table_says_how_many_jobs_went_per_task() -> None:
    common = ("submit", "--mode", "process,thread", "--workers", "1", "--jobs", "600", "--mix", "noop=1")
    batched = run_cli(*common)
    assert batched.returncode == 0, batched.stderr
    assert "jobs per task" in batched.stderr and "batching changed these figures" in batched.stderr
    assert "jobs/task" in batched.stderr  # the comparison table's column
    one = run_cli(*common, "--batch", "1")
    assert one.returncode == 0, one.stderr
    assert "1 (--batch 1, 600 tasks): one task per job" in one.stderr
    assert "batching changed" not in one.stderr


def test_a_pool_that_took_no_task_shows_a_dash_not_zero_jobs_per_task() -> None:
    # Hybrid runs I/O jobs on its loop: its CPU pool took no task, so "0 jobs/task" would be wrong.
    run = run_cli("submit", "--mode", "hybrid", "--workers", "1", "--jobs", "40", "--mix", "sleep=1", "--io-ms", "1")
    assert run.returncode == 0, run.stderr
    assert "- (no job was sent as a task)" in run.stderr
    assert "0 (--batch" not in run.stderr
