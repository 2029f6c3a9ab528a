"""The per-container figures of ``runner cluster sample``, from stats documents shaped like the
Docker engine's (cgroup v1 and v2), and their merge into a sweep's results.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runner.cli.cluster import ContainerFigures, cpu_percent, memory_mb, write_figures
from tests.cli import run_cli


def _stats(total: int, pre_total: int, system: int, pre_system: int, cpus: int = 2) -> dict[str, object]:
    return {
        "cpu_stats": {"cpu_usage": {"total_usage": total}, "system_cpu_usage": system, "online_cpus": cpus},
        "precpu_stats": {"cpu_usage": {"total_usage": pre_total}, "system_cpu_usage": pre_system},
    }


def test_cpu_percent_is_of_one_core_like_docker_stats() -> None:
    # the container used 1.5 s of CPU while the 2-core host's clock advanced 2 s of CPU time: 150 %
    assert cpu_percent(_stats(2_500_000_000, 1_000_000_000, 12_000_000_000, 10_000_000_000)) == pytest.approx(150.0)


def test_cpu_percent_is_unknown_for_a_first_sample_or_a_stopped_container() -> None:
    first = _stats(1, 0, 10, 0)
    first["precpu_stats"] = {"cpu_usage": {"total_usage": 0}}  # no system_cpu_usage yet
    assert cpu_percent(first) is None
    assert cpu_percent({"cpu_stats": {}, "precpu_stats": {}}) is None
    assert cpu_percent(_stats(5, 5, 10, 10)) is None  # no time passed


def test_memory_leaves_out_the_inactive_file_cache() -> None:
    v1 = {"memory_stats": {"usage": 300 << 20, "stats": {"total_inactive_file": 100 << 20}}}
    v2 = {"memory_stats": {"usage": 300 << 20, "stats": {"inactive_file": 50 << 20}}}
    assert memory_mb(v1) == pytest.approx(200.0)
    assert memory_mb(v2) == pytest.approx(250.0)
    assert memory_mb({"memory_stats": {}}) is None


def test_figures_keep_mean_max_and_peak() -> None:
    figures = ContainerFigures("p_worker_1", "worker", "abc123")
    for total, mem in ((1_000_000_000, 100), (1_500_000_000, 180), (1_600_000_000, 120)):
        sample = _stats(total, 0, 2_000_000_000, 0) | {"memory_stats": {"usage": mem << 20, "stats": {}}}
        figures.add(sample)
    row = figures.to_dict()
    assert row["cpu_percent_max"] == pytest.approx(160.0)
    assert row["cpu_percent_mean"] == pytest.approx((100 + 150 + 160) / 3, abs=0.01)
    assert row["mem_peak_mb"] == pytest.approx(180.0)
    assert row["samples"] == 3


def test_figures_merge_into_results_json(tmp_path: Path) -> None:
    rows = [ContainerFigures("p_redis_1", "redis", "def456").to_dict()]
    assert write_figures(tmp_path, "p", rows) is None  # no sweep results yet: containers.json only
    assert json.loads((tmp_path / "containers.json").read_text()) == {"project": "p", "containers": rows}
    machine = {"cpus": 2, "cpu_model": "x", "memory_gb": 1.0, "os": "Linux", "python": "3.11"}
    sweep = {"schema_version": 1, "kind": "runner-bench", "runner_version": "0", "started_at": "", "wall_s": 1.0}
    sweep |= {"machine": machine, "cells": [], "verdicts": []}
    (tmp_path / "results.json").write_text(json.dumps(sweep))
    assert write_figures(tmp_path, "p", rows) == tmp_path / "results.json"
    merged = json.loads((tmp_path / "results.json").read_text())
    assert merged["containers"] == rows and merged["cells"] == [] and merged["machine"]["cpus"] == 2


def test_report_shows_nodes_and_containers_of_a_real_sweep(sweep_dir: Path, tmp_path: Path) -> None:
    # Outside the cluster script: a real sweep's results, container figures merged in as
    # `runner cluster sample` merges them, then `runner report` as a user runs it.
    shutil.copy(sweep_dir / "results.json", tmp_path / "results.json")
    worker = ContainerFigures("p-worker-1", "worker", "node7")
    for total, mem in ((1_000_000_000, 100), (1_500_000_000, 180)):
        worker.add(_stats(total, 0, 2_000_000_000, 0) | {"memory_stats": {"usage": mem << 20, "stats": {}}})
    assert write_figures(tmp_path, "p", [worker.to_dict()]) == tmp_path / "results.json"
    proc = run_cli("report", str(tmp_path / "results.json"), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "report" / "report.md").read_text()
    containers = md.split("## Containers", 1)[1]
    assert "| p-worker-1 | worker | node7 | 125 | 150 | 180 | 2 |" in containers.replace("  ", " ")
    # The process pool's two workers, with every job of every measured run between them.
    doc = json.loads((sweep_dir / "results.json").read_text())
    per_pid: dict[str, int] = {}
    for cell in doc["cells"]:
        if cell["mode"] == "process":
            for run in cell["repeats"]:
                for pid, jobs in run["by_worker"].items():
                    per_pid[pid] = per_pid.get(pid, 0) + jobs
    assert len(per_pid) == 2
    section = md.split("## Jobs per process worker", 1)[1].split("##", 1)[0]
    for pid, jobs in per_pid.items():
        assert pid in section and f"{jobs:,}" in section
