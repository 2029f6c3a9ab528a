"""Shared fixtures: real services started for the tests that need them, and a check that no test
leaves a process behind."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from runner.engine import codec
from runner.engine.services import LocalServices
from runner.experiments.sweep import Mix, build_sweep, run_sweep
from runner.report.export import write_report
from runner.report.verdicts import with_verdicts
from tests.stub_executor import NAME, TARGET, StubExecutor, StubPlan
from workers.celery_nodes import LocalNodes, NodeSpec
from workers.registry import registered

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test must stop what it started: pools, Celery workers, embedded Redis, the target."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 5
    while True:
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        left = [p for p in left if _alive(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    names = [" ".join(p.cmdline()[:4]) for p in left if _alive(p)]
    for proc in left:
        proc.kill()
    assert not names, f"processes left behind: {names}"


def _alive(proc: psutil.Process) -> bool:
    """Running, and not multiprocessing's resource tracker (one per parent, ends with it)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return False


@pytest.fixture()
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real Redis (the embedded one), exported as REDIS_URL for the test."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    services = LocalServices()
    try:
        url = services.redis_url()
        monkeypatch.setenv("REDIS_URL", url)
        yield url
    finally:
        services.close()


@pytest.fixture()
def cluster_worker(redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker started the way a cluster starts one: ``celery -A workers.celery_app worker``."""
    nodes = LocalNodes({"REDIS_URL": redis_url})
    try:
        nodes.start(NodeSpec("cluster-test@%h", concurrency=2, heartbeat=True), 1)
        yield nodes.procs[0]
    finally:
        nodes.stop(grace_s=10.0)


@pytest.fixture(autouse=True)
def no_external_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide for themselves whether REDIS_URL/TARGET_URL are set."""
    monkeypatch.delenv("TARGET_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One real sweep: async vs process on I/O only and CPU only, written with its report."""
    sweep = build_sweep(
        {
            "modes": ("async", "process"),
            "mixes": (Mix("io", {"sleep": 1.0}), Mix("cpu", {"cpu": 1.0})),
            "repeats": 3,
            "io_ms": 20.0,
            "cpu_ms": 10.0,
            "concurrency": 100,
            "workers": 2,
            "run_s": 0.25,
            "min_jobs": 10,
            "max_jobs": 1000,
        },
        quick=False,
    )
    doc = with_verdicts(run_sweep(sweep))
    out = tmp_path_factory.mktemp("bench")
    (out / "results.json").write_text(codec.dumps(doc))
    write_report(doc, out)
    yield out


@pytest.fixture()
def stub() -> Iterator[type[StubExecutor]]:
    """The in-process stub executor, registered as mode ``stub`` for the test; set ``stub.plan``
    to script it, read ``stub.made[-1]`` for what the instance saw."""
    StubExecutor.plan = StubPlan()
    StubExecutor.made = []
    StubExecutor.external_redis = None
    with registered(NAME, TARGET):
        yield StubExecutor
    StubExecutor.plan = StubPlan()
    StubExecutor.made = []


_FAST = ROOT / "tests" / "fast"
# The slow tier (``make test-slow``: ``pytest -m slow``; CI runs it after ``make test``): faults
# that need whole runs of real services killed, restarted or left to time out, and sweeps through
# the command line. Each module here takes tens of seconds to minutes on 2 cores; together they
# would push the default run past 15 minutes.
_SLOW = frozenset(
    {
        "tests/faults/test_broker.py",
        "tests/faults/test_celery_workers.py",
        "tests/faults/test_hung_workers.py",
        "tests/faults/test_job_faults.py",
        "tests/faults/test_orphans_workers.py",
        "tests/faults/test_parallel_runs.py",
        "tests/faults/test_signals.py",
        "tests/faults/test_visibility.py",
        "tests/test_bench_presets_cli.py",
        "tests/test_scaling_sweep.py",
        "tests/test_streaming.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/fast is the fast tier (``make test-fast``: ``pytest -m fast``); the
    modules in ``_SLOW`` are the slow tier, left out of ``make test``."""
    for item in items:
        if item.path.is_relative_to(_FAST):
            item.add_marker(pytest.mark.fast)
        elif item.path.relative_to(ROOT).as_posix() in _SLOW:
            item.add_marker(pytest.mark.slow)
    if "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        _cheapest_files_first(items)


def _cheapest_files_first(items: list[pytest.Item]) -> None:
    """Under ``make mutate`` (``-x``), a mutant's tests run file by file, the files whose tests
    took least in mutmut's clean run first: most mutants die in their own module's quick tests,
    which otherwise could come after the whole tier. A file's tests stay together (its fixtures)."""
    stats = ROOT / "mutmut-stats.json"  # ROOT is mutants/ there
    if not stats.exists():
        return
    durations: dict[str, float] = json.loads(stats.read_text())["duration_by_test"]
    cost: dict[Path, float] = {}
    for item in items:
        cost[item.path] = cost.get(item.path, 0.0) + durations.get(item.nodeid, 1.0)
    items.sort(key=lambda item: cost[item.path])
