"""The per-container figures of ``runner cluster sample``, from stats documents shaped like the
Docker engine's (cgroup v1 and v2), and their merge into a sweep's results.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

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


# Real documents of a Docker engine (tests/data/docker-stats-v1.json says how they were captured).
_REAL = json.loads((Path(__file__).parent / "data" / "docker-stats-v1.json").read_text())


def test_real_stream_cpu_is_percent_of_one_core_and_its_first_document_says_nothing() -> None:
    busy = _REAL["busy"]
    assert cpu_percent(busy[0]) is None  # the first of a stream: precpu has no system_cpu_usage yet
    # (2587153820 - 1973810458) ns of the container's CPU over (48934700000000 - 48932680000000) ns
    # of the 2-core host's: 613343362 / 2.02e9 * 2 cores * 100
    assert cpu_percent(busy[1]) == pytest.approx(60.727, abs=0.001)
    assert cpu_percent(busy[2]) == pytest.approx(51.260, abs=0.001)  # 517726653 / 2.02e9 * 200
    assert cpu_percent(busy[3]) == pytest.approx(54.087, abs=0.001)  # 543578968 / 2.01e9 * 200


def test_real_v1_memory_leaves_out_the_page_cache_the_container_wrote() -> None:
    # usage 104927232 B holds 32 MiB of page cache (total_inactive_file 33554432): 71372800 B left,
    # as `docker stats` shows it -- the 64 MiB the container holds plus the interpreter
    for document in _REAL["busy"]:
        assert document["memory_stats"]["stats"]["cache"] == 33554432
        assert memory_mb(document) == pytest.approx(71372800 / (1 << 20))


def test_real_stopped_container_gives_no_figures() -> None:
    stopped = _REAL["busy_stopped"]  # stats(stream=False) of a killed container: zeroed, no memory
    assert stopped["memory_stats"] == {} and "system_cpu_usage" not in stopped["cpu_stats"]
    assert cpu_percent(stopped) is None
    assert memory_mb(stopped) is None


def test_a_stream_past_its_containers_exit_adds_nothing() -> None:
    # The engine's stream does not end when the container exits: it goes on with zeroed documents
    # (total_usage 0, the last real figures as precpu). They must not count as samples.
    stream = _REAL["to_exit"]
    assert [d["read"] for d in stream[4:]] == ["0001-01-01T00:00:00Z"] * 2
    figures = ContainerFigures("c", "worker", "h")
    for document in stream:
        figures.add(document)
    row = figures.to_dict()
    assert row["samples"] == 3  # not the first (no precpu), not the two after the exit
    assert row["cpu_percent_max"] == pytest.approx(59.66, abs=0.01)  # 611504324 / 2.05e9 * 200
    assert row["cpu_percent_mean"] == pytest.approx((59.659 + 59.438 + 40.779) / 3, abs=0.01)
    assert row["mem_peak_mb"] == pytest.approx(3.0)  # 3100672 B, no inactive file cache


def _as_cgroup_v2(document: dict[str, Any]) -> dict[str, Any]:
    """A real v1 document in the layout an engine on a cgroup v2 host sends (moby's ``statsV2``):
    no ``percpu_usage``, no ``max_usage``; ``memory_stats.stats`` holds memory.stat's keys (``anon``,
    ``file``, ``inactive_file``, ...) -- no ``cache``, no ``total_*``. No v2 host was at hand to
    capture one; the figures are the captured ones."""
    v2: dict[str, Any] = json.loads(json.dumps(document))
    for key in ("cpu_stats", "precpu_stats"):
        v2[key]["cpu_usage"].pop("percpu_usage", None)
    memory = v2["memory_stats"]
    v1 = memory.pop("stats")
    memory.pop("max_usage")
    memory["stats"] = {
        "anon": v1["total_rss"],
        "file": v1["total_cache"],
        "inactive_anon": v1["total_inactive_anon"],
        "active_anon": v1["total_active_anon"],
        "inactive_file": v1["total_inactive_file"],
        "active_file": v1["total_active_file"],
        "pgfault": v1["total_pgfault"],
    }
    return v2


def test_cgroup_v2_memory_uses_inactive_file_and_cpu_needs_no_percpu() -> None:
    v2 = _as_cgroup_v2(_REAL["busy"][1])
    assert "cache" not in v2["memory_stats"]["stats"] and "percpu_usage" not in v2["cpu_stats"]["cpu_usage"]
    assert memory_mb(v2) == pytest.approx(71372800 / (1 << 20))
    assert cpu_percent(v2) == pytest.approx(60.727, abs=0.001)
    del v2["cpu_stats"]["online_cpus"]  # an engine that does not say: one core, not a crash
    assert cpu_percent(v2) == pytest.approx(30.364, abs=0.001)
