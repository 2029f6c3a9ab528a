"""examples/: each module imports and each of its functions runs on one input (against the real
target where it fetches), and one example goes through ``runner submit --mode all`` for real."""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runner.engine.services import LocalServices
from runner.target import make_orders
from tests.cli import ROOT, cli_env, run_cli
from workers.celery_nodes import LocalNodes, NodeSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MODULES = ("orders", "checksums", "logstats", "enrich")


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture()
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with LocalServices() as services:
        url = services.target_url()
        monkeypatch.setenv("TARGET_URL", url)
        yield url


@pytest.mark.parametrize("name", MODULES)
def test_each_example_has_a_docstring_and_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _load(name, monkeypatch)
    assert module.__doc__ and len(module.__doc__.split()) > 30, f"{name}: say what it shows"


def test_checksums_compresses_and_hashes_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    checksums = _load("checksums", monkeypatch)
    checksums.load_archive()
    first, again, other = checksums.block_digest(0), checksums.block_digest(0), checksums.block_digest(1)
    assert first == again and first["sha256"] != other["sha256"]
    assert 2 < first["ratio"] < 10  # log text: compressible, not trivially


def test_logstats_summarises_every_line_of_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    logstats = _load("logstats", monkeypatch)
    batches = list(logstats.batches(jobs=3, count=500))
    assert batches[1] == {"start": 500, "count": 500}
    summary = logstats.summarise(**batches[0])
    assert sum(row["requests"] for row in summary.values()) == 500
    assert all(row["p50_ms"] <= row["p99_ms"] for row in summary.values())
    assert "GET /api/orders/{id}" in summary


def test_orders_sync_and_async_forms_agree_with_the_target(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _load("orders", monkeypatch)
    expected = orders.totals(make_orders(7, orders.PER_PAGE))
    assert expected and set(expected) <= {"eu", "us", "apac", "latam"}
    assert orders.region_totals_sync(7) == expected
    assert asyncio.run(orders.region_totals(7)) == expected
    lines = (EXAMPLES / "orders_pages.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines[:2]] == [{"page": 0}, {"page": 1}]


def test_the_async_session_is_closed_with_its_loop(
    target: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    orders = _load("orders", monkeypatch)

    async def twice() -> Any:
        first = await orders.session()
        await orders.region_totals(1)
        assert await orders.session() is first  # one session per loop, reused
        return first

    session = asyncio.run(twice())
    assert session.closed and not orders._sessions
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "Unclosed" not in caplog.text


def test_enrich_forms_agree_and_offload_runs_inline_outside_hybrid(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrich = _load("enrich", monkeypatch)
    expected = enrich.duplicates(make_orders(3, enrich.PER_PAGE))
    assert expected["orders"] == enrich.PER_PAGE and 0 < expected["best"] <= 1
    assert enrich.find_duplicates_sync(3) == expected
    assert asyncio.run(enrich.find_duplicates(3)) == expected


def test_an_example_through_every_executor(tmp_path: Path) -> None:
    """One real ``--mode all`` run, small: every executor runs the user's kind and accounts for every job."""
    jobs = 8
    done = run_cli(
        "submit",
        "--mode",
        "all",
        "--path",
        str(EXAMPLES),
        "--job",
        "logstats=logstats:summarise",
        "--inputs",
        "logstats:batches",
        "--jobs",
        str(jobs),
        "--workers",
        "2",
        "--json",
        "--quiet",
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["mode"] for r in results] == ["async", "thread", "process", "celery", "hybrid", "gevent"]
    for result in results:
        assert result["jobs"] == {
            "submitted": jobs,
            "done": jobs,
            "failed": 0,
            "timed_out": 0,
            "lost": 0,
            "duplicates": 0,
        }, result["mode"]
        assert result["kinds"] == {"logstats": jobs}


def test_the_cluster_tests_user_job_on_a_node_started_on_its_own(redis_url: str, target: str, tmp_path: Path) -> None:
    """What ``make cluster-test`` does with a user job, without Docker: a Celery node started as the
    cluster starts one, allowed the examples folder only (RUNNER_JOBS_DIR), runs orders from there;
    deploy/check_user_job.py accepts the result, and refuses it when the figures do not match."""
    nodes = LocalNodes({"REDIS_URL": redis_url, "RUNNER_JOBS_DIR": str(EXAMPLES)})
    try:
        nodes.start(NodeSpec("jobsdir@%h", concurrency=2, heartbeat=True), 1)
        done = run_cli(
            *("submit", "--mode", "celery", "--celery-workers", "0", "--expect-workers", "1", "--quiet"),
            *("--path", str(EXAMPLES), "--job", "orders=orders:region_totals_sync,region_totals"),
            *("--inputs", str(EXAMPLES / "orders_pages.jsonl"), "--jobs", "12", "--out", str(tmp_path)),
            timeout=240,
        )
    finally:
        nodes.stop(grace_s=10.0)
    assert done.returncode == 0, done.stderr[-2000:]

    def check(workers: int) -> subprocess.CompletedProcess[str]:
        script = str(ROOT / "deploy" / "check_user_job.py")
        args = [script, str(tmp_path / "result.json"), "--kind", "orders", "--jobs", "12", "--workers", str(workers)]
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=cli_env(), timeout=60)

    ok, wrong = check(1), check(2)
    assert ok.returncode == 0 and "12/12 done on the cluster" in ok.stdout, ok.stdout + ok.stderr
    assert wrong.returncode == 1 and "expected 2 Celery nodes" in wrong.stderr
