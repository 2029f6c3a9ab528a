"""A cluster's Celery nodes, for real: an external Redis (embedded, exported as REDIS_URL) and worker
processes started the way a cluster starts them (``celery -A workers.celery_app worker``), with
the coordinator using them through ``--celery-workers 0``.

- nodes describe and measure themselves: ``nodes[]`` in the result (issue 14, point 1);
- the bound comes from the nodes' pools and cores, not the coordinator's (point 2);
- ``--expect-workers N`` waits for N nodes, or exits 1 with one line (point 3);
- the coordinator's ``--timeout`` governs redelivery on nodes started without
  RUNNER_VISIBILITY_TIMEOUT: a job whose node is killed runs on another in time (point 4).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engine.services import LocalServices
from workers.base import Capacity, ExecutorConfig
from workers.celery_executor import CeleryExecutor
from workers.node_survey import capacity_of

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(240)


def _submit(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", "celery", "--celery-workers", "0", "--quiet", "--json"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def _start_node(redis_url: str, name: str, concurrency: int = 1) -> subprocess.Popen[bytes]:
    """A node as a cluster starts one; RUNNER_VISIBILITY_TIMEOUT is left unset (3600 s)."""
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_VISIBILITY_TIMEOUT"}
    env.update(REDIS_URL=redis_url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "prefork"]
    cmd += [
        "--concurrency",
        str(concurrency),
        "-n",
        name,
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "WARNING",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture()
def two_nodes(redis_url: str) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    host = socket.gethostname()
    nodes = {f"{n}@{host}": _start_node(redis_url, f"{n}@%h") for n in ("alpha", "beta")}
    try:
        yield nodes
    finally:
        for proc in nodes.values():
            _stop(proc)


def test_nodes_describe_and_measure_themselves(cluster_worker: subprocess.Popen[bytes]) -> None:
    done = _submit("--expect-workers", "1", "--wait-s", "90", "--jobs", "60", "--mix", "sleep=0.5,cpu=0.5")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (node,) = result["nodes"]
    host = socket.gethostname()
    assert node["name"] == f"cluster-test@{host}" and node["hostname"] == host
    assert (node["pool"], node["concurrency"]) == ("prefork", 2)
    assert node["python"] == platform.python_version() and node["cpu_model"]
    assert 0 < node["cpus"] <= (os.cpu_count() or 1)
    assert node["jobs"] == result["jobs"]["done"] == 60 == result["by_worker"][node["name"]]
    # 30 cpu jobs of 10 ms each, calibrated on this machine, ran in the node's pool children
    assert node["cpu_s"] >= 0.2, node
    assert node["peak_rss_mb"] > 20, node  # the main process and both children
    assert f"cluster-test@{host}" in done.stderr, "the nodes found are printed"


def test_the_bound_comes_from_the_nodes_not_the_coordinator(cluster_worker: subprocess.Popen[bytes]) -> None:
    config = ExecutorConfig(
        concurrency=10, workers=1, timeout_s=20, expect_workers=1, wait_s=90, options={"celery_workers": 0}
    )

    async def capacity() -> tuple[Capacity, float]:
        with LocalServices() as services:
            executor = CeleryExecutor(config, services)
            try:
                await executor.start()
                (node,) = await executor.node_figures()
                return executor.capacity(cores=64), float(node["cpus"])
            finally:
                await executor.stop()

    cap, cpus = asyncio.run(capacity())
    assert cap == Capacity(slots=2, gil_cores=min(2, cpus), free_cores=min(2, cpus), cores=cpus)


def test_capacity_sums_hosts_of_different_sizes_and_caps_each_by_its_cores() -> None:
    def node(host: str, cpus: float, pool: str = "prefork", concurrency: int = 2) -> dict[str, object]:
        return {"hostname": host, "cpus": cpus, "pool": pool, "concurrency": concurrency}

    big, small = node("big", 1.0), node("small", 0.5)
    assert capacity_of([big, small]) == Capacity(slots=4, gil_cores=1.5, free_cores=1.5, cores=1.5)
    # two nodes on one 2-core host share its cores; a threads node is one process
    shared = [node("h", 2.0, concurrency=2), node("h", 2.0, concurrency=2), node("t", 4.0, "threads", 8)]
    assert capacity_of(shared) == Capacity(slots=12, gil_cores=3.0, free_cores=6.0, cores=6.0)


def test_expect_workers_exits_1_with_one_line_when_they_do_not_come(cluster_worker: subprocess.Popen[bytes]) -> None:
    begun = time.monotonic()
    done = _submit("--expect-workers", "2", "--wait-s", "4", "--jobs", "10")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runner: error: --expect-workers 2:"), done.stderr
    assert "answered" in lines[0] and "Traceback" not in done.stderr
    assert time.monotonic() - begun < 60
    assert done.stdout == ""


def test_expect_workers_is_for_a_clusters_nodes_only(redis_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "submit",
            "--mode",
            "celery",
            "--celery-workers",
            "2",
            "--expect-workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "runner: error: --expect-workers waits for a cluster's nodes: use it with --celery-workers 0"
    ]


def test_the_coordinators_timeout_governs_redelivery(
    redis_url: str, two_nodes: dict[str, subprocess.Popen[bytes]]
) -> None:
    """Nodes started with the default visibility timeout (an hour): the run's --timeout 30 sets it
    to 15 s on them, so the job of a node killed mid-job runs on the other well within 30 s."""
    from workers.celery_app import make_app

    args = ["--expect-workers", "2", "--wait-s", "90", "--jobs", "1", "--mix", "sleep=1", "--io-ms", "3000"]
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", "celery", "--celery-workers", "0", "--quiet", "--json"]
    run = subprocess.Popen(
        [*cmd, *args, "--timeout", "30", "--batch", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    app = make_app(redis_url)
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            active = app.control.inspect(timeout=0.5).active() or {}
            busy = [name for name, tasks in active.items() if tasks]
            if busy:
                killed = busy[0]
                _stop(two_nodes[killed], signal.SIGKILL)  # the node and its pool child, mid-job
        assert killed is not None, "the job never started on a node"
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        app.close()
    assert run.returncode == 0, err
    result = json.loads(out)
    survivor = next(name for name in two_nodes if name != killed)
    assert result["jobs"] | {"duplicates": 0} == {
        "submitted": 1,
        "done": 1,
        "failed": 0,
        "timed_out": 0,
        "lost": 0,
        "duplicates": 0,
    }, result["jobs"]
    assert result["by_worker"] == {survivor: 1}
    assert {n["name"]: n["visibility_timeout_s"] for n in result["nodes"]} == {survivor: 15.0}


def test_the_report_shows_each_node(tmp_path: Path) -> None:
    from runner.engine.bench_results import BenchResults
    from runner.report.export import write_report

    data = json.loads((ROOT / "tests" / "data" / "v1-sweep-results.json").read_text())
    node = {"name": "celery@small", "hostname": "small", "cpus": 0.5, "pool": "prefork", "concurrency": 2}
    node |= {"python": "3.12.1", "cpu_model": "Test CPU", "jobs": 7, "cpu_s": 1.5, "peak_rss_mb": 88.5}
    data["cells"][0]["repeats"][0]["nodes"] = [node]
    write_report(BenchResults.from_json(data), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "## Celery nodes" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| celery@small"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # "-": this node recorded no calibration of its own (results from before nodes calibrated)
    assert cells == ["celery@small", "small", "0.5", "prefork x 2", "3.12.1", "Test CPU", "7", "1.5", "88.5", "-"]
    assert "celery@small" in (tmp_path / "report.html").read_text()
