"""A real scaling sweep through the command line: ``runner bench --workers 1,2,3,4 --concurrency
2,8`` on the process pool with 20 ms waits (at concurrency 8 throughput grows with the pool, at 2
it cannot: the fit and the knee have something to find, whatever else the machine is doing). Its
results carry each cell's axes and the USL fit; its report has the scaling chart with the fitted
curve, the USL in words, the concurrency chart with its knee and the runs over time -- opened in
Chromium when it is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, inspect_page


@pytest.fixture(scope="module")
def scaling_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("scaling")
    args = [
        *("--modes", "process", "--workers", "1,2,3,4", "--concurrency", "2,8"),
        *("--mix", "io:sleep=1", "--io-ms", "20", "--repeats", "2", "--run-s", "0.2"),
        *("--quiet", "--out", str(out)),
    ]
    proc = subprocess.run([sys.executable, "-m", "runner", "bench", *args], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    (out / "stderr.txt").write_text(proc.stderr)
    yield out


def _doc(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())  # type: ignore[no-any-return]


def test_every_combination_is_a_cell_with_its_axes(scaling_dir: Path) -> None:
    doc = _doc(scaling_dir)
    at = sorted((c["workers"], c["concurrency"], c["rate_per_s"]) for c in doc["cells"])
    assert at == [(w, c, 0.0) for w in (1, 2, 3, 4) for c in (2, 8)]
    assert doc["sweep"]["workers_axis"] == [1, 2, 3, 4] and doc["sweep"]["concurrency_axis"] == [2, 8]
    for cell in doc["cells"]:
        assert all(r["executor"]["workers"] == cell["workers"] for r in cell["repeats"])  # separate instances
        assert cell["summary"]["peak_in_flight"] <= cell["concurrency"]
        assert "cv" in cell["summary"] and cell["summary"]["busy_runs"] >= 0
        assert all(r["timeseries"] for r in cell["repeats"])


def test_usl_is_stored_beside_the_points_and_said_in_words(scaling_dir: Path) -> None:
    doc = _doc(scaling_dir)
    fits = {s["concurrency"]: s for s in doc["scaling"]}
    assert set(fits) == {2, 8}
    for fit in fits.values():
        assert [p["workers"] for p in fit["points"]] == [1, 2, 3, 4]
        assert set(fit["usl"]) == {"sigma", "kappa", "lambda", "peak_workers", "peak_jobs_per_s", "r2"}
        assert 0 <= fit["usl"]["sigma"] <= 1 and fit["usl"]["kappa"] >= 0
    report = (scaling_dir / "report.md").read_text()
    section = report.split("## Scaling with workers", 1)[1].split("\n## ", 1)[0]
    words = [line for line in section.splitlines() if line.startswith("- process on io (concurrency")]
    assert len(words) == 2
    assert fits[8]["usl"]["r2"] >= 0.9  # 8 in flight: throughput follows the pool, as the model can say
    for line, fit in zip(sorted(words), (fits[2], fits[8]), strict=True):
        if fit["usl"]["r2"] >= 0.9:
            assert "contention" in line and "coherency" in line and ("predicted peak" in line or "no predicted" in line)
        else:
            assert "fits poorly" in line and "contention" not in line
    assert "## Throughput and latency vs concurrency" in report
    assert "- process on io, 1 worker: " in report and ("knee near concurrency 2" in report or "no knee" in report)
    charts = {p.name for p in (scaling_dir / "charts").glob("*.png")}
    assert {"scaling_io_c2.png", "scaling_io_c8.png", "concurrency_io_w1.png", "timeseries_process.png"} <= charts


def test_fitted_curve_is_drawn_through_the_points(scaling_dir: Path) -> None:
    from runner.engine.results import load_results
    from runner.report.curves import scaling_charts

    doc = load_results(scaling_dir / "results.json")
    assert doc.scaling is not None and all(s.usl is not None for s in doc.scaling)
    from runner.report.scaling import good_fit, usl_model

    (linear,) = [s for s in doc.scaling if s.concurrency == 8]
    assert good_fit(linear) and linear.usl is not None
    for point in linear.points:  # the curve drawn passes near the points it was fitted to
        fitted = usl_model(point.workers, linear.usl.lambda_, linear.usl.sigma, linear.usl.kappa)
        assert fitted == pytest.approx(point.jobs_per_s, rel=0.3)
    charts = {c.name: c for c in scaling_charts(doc)}
    assert set(charts) == {"scaling_io_c2", "scaling_io_c8"} and all(c.png[:4] == b"\x89PNG" for c in charts.values())


@pytest.mark.skipif(
    chromium() is None and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install chromium); .ci/run installs it",
)
def test_scaling_report_opens_in_chromium_with_every_chart(scaling_dir: Path, tmp_path: Path) -> None:
    page = inspect_page((scaling_dir / "report.html").resolve().as_uri(), tmp_path / "shot.png")
    assert page["errors"] == []
    charts = list((scaling_dir / "charts").glob("*.png"))
    assert len(page["images"]) == len(charts) >= 5
    for image in page["images"]:
        assert image["complete"] and image["width"] > 300 and image["height"] > 200, image


def test_open_loop_capacity_through_the_cli(tmp_path: Path) -> None:
    """A rate axis with a p99 target: each cell labelled closed or open loop, and the capacity verdict."""
    args = [
        *("--modes", "async,thread", "--mix", "io:sleep=1", "--io-ms", "5", "--concurrency", "20"),
        *("--rate", "0,100,200", "--slo-p99-ms", "1000", "--repeats", "2", "--run-s", "0.3"),
        *("--quiet", "--out", str(tmp_path)),
    ]
    proc = subprocess.run([sys.executable, "-m", "runner", "bench", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = _doc(tmp_path)
    assert sorted({c["rate_per_s"] for c in doc["cells"]}) == [0.0, 100.0, 200.0]
    for cell in doc["cells"]:
        load = cell["repeats"][0]["load"]
        assert load["model"] == ("open" if cell["rate_per_s"] else "closed")
    (capacity,) = [v for v in doc["verdicts"] if v["kind"] == "capacity"]
    assert capacity["text"].startswith("At p99 <= 1,000 ms on io: ")
    assert set(capacity["sustained"]) == {"async", "thread"}
    report = (tmp_path / "report.md").read_text()
    assert "io (closed loop)" in report and "io (open loop at 100 jobs/s)" in report
    assert "closed loop, peak in flight" in report and "## Latency vs offered load (open loop)" in report
    assert "![p99 vs offered rate](charts/rate_io" in report
    assert capacity["text"][:40] in " ".join(proc.stderr.split())  # said in the terminal too
