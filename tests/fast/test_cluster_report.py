"""The report's Celery-node and container sections, and ``runner cluster sample``'s merge, on a real
cluster's results: ``tests/data/cluster-results.json`` is the document of ``make cluster-test``
(compose cluster, two Celery worker containers limited to 1 and 0.5 cores, containers sampled by
``runner cluster sample``), run on 2026-11-28, cut to the process and celery cells of the mixes
``cpu 0%`` and ``cpu 100%`` (and its verdicts, which named the cells cut) to stay small.

Expected figures are computed here from the raw JSON, not through the typed results, so a report
that summed, maxed or matched wrongly would differ. The Markdown and HTML are rendered without
charts (drawing them is most of ``runner report``'s time; ``tests/test_cluster_figures.py`` runs
the whole command on a sweep of its own)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner.cli.cluster import ContainerFigures, write_figures
from runner.engine.bench_results import load_results
from runner.report.export import exporters

CLUSTER = Path(__file__).parents[1] / "data" / "cluster-results.json"


def _raw() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(CLUSTER.read_text())
    return doc


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]  # past the header


def _num(value: float) -> str:  # the report's table figures: no decimals from 100 up, else one
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def _render(path: Path, fmt: str = "markdown") -> str:
    return exporters()[fmt].render(load_results(path), [])


@pytest.fixture(scope="module")
def report() -> str:
    return _render(CLUSTER)


def test_celery_nodes_are_summed_over_every_measured_run(report: str) -> None:
    totals: dict[str, dict[str, Any]] = {}
    for cell in _raw()["cells"]:
        for run in cell["repeats"]:
            for node in run.get("nodes") or []:
                t = totals.setdefault(node["name"], {**node, "jobs": 0, "cpu_s": 0.0, "peak_rss_mb": 0.0})
                t["jobs"] += node["jobs"]
                t["cpu_s"] += node["cpu_s"]
                t["peak_rss_mb"] = max(t["peak_rss_mb"], node["peak_rss_mb"])
    assert len(totals) == 2  # the cluster's two worker containers
    expected = [
        [n["name"], n["hostname"], _num(n["cpus"]), f"{n['pool']} x {n['concurrency']}", n["python"], n["cpu_model"],
         f"{n['jobs']:,}", _num(n["cpu_s"]), _num(n["peak_rss_mb"]),
         _num(n["calibration"]["spin_iterations_per_ms"]) if n.get("calibration") else "-"]
        for _, n in sorted(totals.items())
    ]  # fmt: skip
    assert _rows(_section(report, "Celery nodes (all measured runs)")) == expected
    assert {n["cpus"] for n in totals.values()} == {1.0, 0.5}  # each container's CPU limit, as the node saw it


def test_jobs_per_celery_worker_agree_with_the_nodes_own_counts(report: str) -> None:
    by_worker: dict[str, int] = {}
    for cell in _raw()["cells"]:
        if cell["mode"] == "celery":
            for run in cell["repeats"]:
                for name, jobs in run["by_worker"].items():
                    by_worker[name] = by_worker.get(name, 0) + jobs
    rows = _rows(_section(report, "Jobs per celery worker (all measured runs)"))
    assert rows == [[name, f"{jobs:,}"] for name, jobs in sorted(by_worker.items())]
    nodes = {row[0]: row[6] for row in _rows(_section(report, "Celery nodes (all measured runs)"))}
    assert nodes == {name: f"{jobs:,}" for name, jobs in by_worker.items()}  # the ledger and the nodes agree
    done = sum(run["jobs"]["done"] for cell in _raw()["cells"] if cell["mode"] == "celery" for run in cell["repeats"])
    assert sum(by_worker.values()) == done


def test_containers_are_listed_as_sampled_and_link_to_the_nodes(report: str) -> None:
    containers = _raw()["containers"]
    rows = _rows(_section(report, "Containers"))
    assert rows == [
        [c["name"], c["service"], c["hostname"], _num(c["cpu_percent_mean"]), _num(c["cpu_percent_max"]),
         _num(c["mem_peak_mb"]), str(c["samples"])]
        for c in containers
    ]  # fmt: skip
    workers = {c["hostname"] for c in containers if c["service"].startswith("worker")}
    nodes = {row[1] for row in _rows(_section(report, "Celery nodes (all measured runs)"))}
    assert nodes == workers and len(workers) == 2  # celery@<hostname>: each node is a sampled container


def test_sampled_figures_replace_the_containers_of_a_real_results_file(tmp_path: Path) -> None:
    # What `runner cluster sample` does once the coordinator exits: its rows go into containers.json
    # and into the sweep's results.json, which `runner report` then shows.
    shutil.copy(CLUSTER, tmp_path / "results.json")
    worker = ContainerFigures("again_worker_1", "worker", "0ea223af988c")
    worker.add({
        "cpu_stats": {"cpu_usage": {"total_usage": 3 * 10**9}, "system_cpu_usage": 14 * 10**9, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 2 * 10**9}, "system_cpu_usage": 10 * 10**9},
        "memory_stats": {"usage": 200 << 20, "stats": {"inactive_file": 40 << 20}},
    })  # fmt: skip
    rows = [worker.to_dict()]
    assert write_figures(tmp_path, "again", rows) == tmp_path / "results.json"
    assert json.loads((tmp_path / "containers.json").read_text()) == {"project": "again", "containers": rows}
    merged = json.loads((tmp_path / "results.json").read_text())
    before = _raw()
    assert merged["containers"] == rows and merged["cells"] == before["cells"] and merged["sweep"] == before["sweep"]
    section = _section(_render(tmp_path / "results.json"), "Containers")
    assert _rows(section) == [["again_worker_1", "worker", "0ea223af988c", "50.0", "50.0", "160", "1"]]
    html = _render(tmp_path / "results.json", "html")
    assert re.search(r"again_worker_1.*0ea223af988c", html, re.S) and "Celery nodes" in html
