"""runner bench, report and compare, run for real on a tiny sweep."""

from __future__ import annotations

import copy
import csv
import json
import math
import statistics
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats

from runner.cli.main import cli
from runner.experiments.sweep import Mix, build_sweep
from tests.cli import run_cli, spawn_cli
from workers.errors import InputError


def _doc(sweep_dir: Path) -> dict[str, Any]:
    return json.loads((sweep_dir / "results.json").read_text())  # type: ignore[no-any-return]


def test_results_hold_every_cell_with_repeats_and_metadata(sweep_dir: Path) -> None:
    doc = _doc(sweep_dir)
    assert doc["schema_version"] == 1 and doc["kind"] == "runner-bench"
    assert {(c["mode"], c["mix_name"]) for c in doc["cells"]} == {
        ("async", "io"),
        ("process", "io"),
        ("async", "cpu"),
        ("process", "cpu"),
    }
    assert len(doc["warmup"]) == 2
    for cell in doc["cells"]:
        assert len(cell["repeats"]) == 3
        s = cell["summary"]
        # The mean and its 95 % interval are those of the repeats (Student's t, n - 1 degrees of freedom).
        runs = [r["throughput_jobs_per_s"] for r in cell["repeats"]]
        half = scipy_stats.t.ppf(0.975, 2) * statistics.stdev(runs) / math.sqrt(3)
        assert s["throughput"]["mean"] == pytest.approx(statistics.fmean(runs))
        assert s["throughput"]["ci95"] == pytest.approx([statistics.fmean(runs) - half, statistics.fmean(runs) + half])
        assert s["jobs"]["lost"] == 0
        assert s["jobs"]["submitted"] == s["jobs"]["done"] == 3 * cell["jobs_per_run"]
        assert s["bound"]["jobs_per_s"] > 0 and 0 < s["efficiency"] < 1.5
        assert s["latency_ms"]["p50"] <= s["latency_ms"]["p99"] <= s["latency_ms"]["max"]
    assert doc["machine"]["cpus"] >= 1 and "spin_iterations_per_ms" in doc["calibration"]
    assert doc["sweep"]["modes"] == ["async", "process"]


def test_bounds_follow_the_executor(sweep_dir: Path) -> None:
    cells = {(c["mode"], c["mix_name"]): c["summary"]["bound"] for c in _doc(sweep_dir)["cells"]}
    # I/O: 100 coroutines vs 2 processes, 20 ms each.
    assert cells[("async", "io")]["jobs_per_s"] == pytest.approx(100 / 0.020)
    assert cells[("process", "io")]["jobs_per_s"] == pytest.approx(2 / 0.020)
    # GIL-bound CPU: one core for the loop, two for two processes (on a machine with >= 2 cores).
    assert cells[("async", "cpu")]["jobs_per_s"] == pytest.approx(1 / 0.010)
    assert cells[("async", "cpu")]["limited_by"] == "gil"


def test_verdicts_name_the_winners(sweep_dir: Path) -> None:
    verdicts = {v.get("mix"): v for v in _doc(sweep_dir)["verdicts"] if v["kind"] == "mix"}
    assert verdicts["io"]["winner"] == "async"
    assert verdicts["io"]["text"].startswith("I/O only (io): async")
    assert any(v["kind"] == "loop" for v in _doc(sweep_dir)["verdicts"])


def test_report_files_and_csv(sweep_dir: Path) -> None:
    md = (sweep_dir / "report.md").read_text()
    assert "## Verdicts" in md and "## Throughput" in md and "charts/crossover.png" in md
    html = (sweep_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "http://" not in html and "https://" not in html
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert len(rows) == 4 and {r["mode"] for r in rows} == {"async", "process"}
    assert all(float(r["throughput_mean"]) > 0 for r in rows)


def test_report_rerenders_the_same_from_json(sweep_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(sweep_dir / "results.json"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.md").read_text() == (sweep_dir / "report.md").read_text()
    assert (tmp_path / "summary.csv").read_text() == (sweep_dir / "summary.csv").read_text()


def test_compare_same_file_passes_and_halved_throughput_fails(sweep_dir: Path, tmp_path: Path) -> None:
    base = sweep_dir / "results.json"
    same = CliRunner().invoke(cli, ["compare", str(base), str(base), "--fail-if", "throughput:-5%"])
    assert same.exit_code == 0, same.output
    halved = copy.deepcopy(_doc(sweep_dir))
    for cell in halved["cells"]:
        for run in cell["repeats"]:
            run["throughput_jobs_per_s"] /= 2
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(halved))
    proc = run_cli("compare", str(base), str(slow), "--fail-if", "throughput:-5%", "--json", timeout=60)
    assert proc.returncode == 1, proc.stderr
    outcome = json.loads(proc.stdout)
    # Every cell halved; a cell whose repeats are too noisy to call it is reported but not failed.
    assert outcome["regressions"]
    assert all(r["change_pct"] == pytest.approx(-50) and r["p_value"] < 0.05 for r in outcome["regressions"])
    flagged = {(r["mode"], r["mix"]) for r in outcome["regressions"]}
    for cell in outcome["cells"]:
        if (cell["mode"], cell["mix"]) not in flagged:
            assert not cell["metrics"]["throughput"]["significant"]


def test_compare_rejects_bad_rules_and_files(sweep_dir: Path, tmp_path: Path) -> None:
    base = str(sweep_dir / "results.json")
    for args in (["--fail-if", "throughput:5"], ["--fail-if", "speed:-5%"]):
        proc = run_cli("compare", base, base, *args, timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    proc = run_cli("report", str(junk), timeout=60)
    assert proc.returncode == 2 and "not a results file" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"repeats": 0}, "--repeats"),
        ({"modes": ("async", "warp")}, "--mode"),
        ({"run_s": -1}, "--run-s"),
        ({"concurrency": 0}, "--concurrency"),
        ({"min_jobs": 10, "max_jobs": 5}, "--min-jobs"),
    ],
)
def test_bad_sweeps_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError, match=field):
        build_sweep(overrides, quick=True)


def test_sweep_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text('modes = ["async"]\nrepeats = 4\n[[mixes]]\nname = "io"\nmix = { sleep = 1 }\n')
    sweep = build_sweep({}, quick=True, sweep_file=path)
    assert sweep.modes == ("async",) and sweep.repeats == 4 and sweep.mixes == (Mix("io", {"sleep": 1.0}),)
    path.write_text("repeats = 3\nbogus = 1\n")
    with pytest.raises(InputError, match="'bogus'"):
        build_sweep({}, quick=True, sweep_file=path)


def test_ctrl_c_mid_sweep_keeps_the_measured_cells_and_stops_everything(tmp_path: Path) -> None:
    import os
    import signal
    import time

    import psutil

    proc = spawn_cli(
        *[
            "bench",
            "--modes",
            "async,celery",
            "--mix",
            "io:sleep=1",
            "--mix",
            "cpu:cpu=1",
            "--repeats",
            "20",
            "--run-s",
            "0.2",
            "--celery-workers",
            "1",
            "--out",
            str(tmp_path),
        ],
        text=True,
    )
    # A run's line is printed as it starts: the second one means the first measured run has ended
    # (on a loaded machine a fixed pause after the first line is not enough).
    deadline, runs = time.monotonic() + 120, 0
    while runs < 2 and time.monotonic() < deadline:
        runs += sum("x io" in line or "x cpu" in line for line in _lines(proc))
        time.sleep(0.2)
    assert runs >= 2, "no measured run ended within 120 s"
    time.sleep(0.5)
    descendants = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["stopped"]["reason"].startswith("interrupted by SIGINT")
    assert doc["cells"] and all(c["summary"]["jobs"]["lost"] == 0 for c in doc["cells"])
    assert (tmp_path / "report.html").exists()
    time.sleep(1)
    assert not [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _lines(proc: subprocess.Popen[str]) -> list[str]:
    """Progress lines printed so far (stderr is not a terminal, so each run prints one)."""
    import select

    assert proc.stderr is not None
    out = []
    while select.select([proc.stderr], [], [], 0)[0]:
        line = proc.stderr.readline()
        if not line:
            break
        out.append(line)
    return out
