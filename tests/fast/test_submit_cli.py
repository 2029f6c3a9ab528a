"""``runner submit`` in-process (click's CliRunner) on the stub executor and the in-process ones:
exit codes, short flags, defaults, where --out writes with several modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runner.engine.machine import usable_cpus
from tests.cli import invoke
from tests.stub_executor import StubExecutor, StubPlan
from workers.registry import MODES


def _json(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_a_lost_job_makes_the_run_exit_1_with_its_result(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(vanish=frozenset({2}))
    result = invoke("submit", "--mode", "stub", "--jobs", "10", "--mix", "noop=1", "--json")
    assert result.exit_code == 1, result.output
    (doc,) = _json(result.stdout)
    assert doc["jobs"]["lost"] == 1 and doc["jobs"]["done"] == 9


def test_no_lost_job_exits_0(stub: type[StubExecutor]) -> None:
    result = invoke("submit", "--mode", "stub", "--jobs", "10", "--mix", "noop=1", "--json")
    assert result.exit_code == 0, result.output
    assert _json(result.stdout)[0]["jobs"]["lost"] == 0


def test_an_executor_that_cannot_start_is_one_line_and_exit_1(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(fail_start=True)
    result = invoke("submit", "--mode", "stub", "--jobs", "5", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "runner: error: stub: cannot start\n"
    assert stub.made[-1].stopped  # stop() runs after a failed start


def test_a_stopped_run_still_prints_and_writes_its_partial_result(stub: type[StubExecutor], tmp_path: Path) -> None:
    result = invoke(
        "submit", "--mode", "stub", "--jobs", "500", "--mix", "sleep=9,crash=1", "--io-ms", "1", "--json",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("runner: error: run stopped: stub: lost its service;")
    (doc,) = _json(result.stdout)
    assert json.loads((tmp_path / "result.json").read_text()) == doc
    assert doc["stopped"]["not_submitted"] == 500 - doc["jobs"]["submitted"] > 0


def test_out_with_several_modes_writes_one_folder_per_mode(stub: type[StubExecutor], tmp_path: Path) -> None:
    result = invoke(
        "submit", "--mode", "stub,async,thread", "--jobs", "8", "--mix", "sleep=1", "--io-ms", "1", "--json",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    docs = _json(result.stdout)
    assert [d["mode"] for d in docs] == ["stub", "async", "thread"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".runner.lock") == ["async", "stub", "thread"]
    for doc in docs:
        folder = tmp_path / doc["mode"]
        assert json.loads((folder / "result.json").read_text()) == doc
        ledger = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
        assert sorted(r["id"] for r in ledger) == list(range(8))


def test_out_with_one_mode_writes_into_the_folder_itself(stub: type[StubExecutor], tmp_path: Path) -> None:
    result = invoke("submit", "-m", "stub", "-n", "4", "--mix", "noop=1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".runner.lock") == ["ledger.jsonl", "result.json"]


def test_short_flags_mean_their_long_names(stub: type[StubExecutor]) -> None:
    result = invoke("submit", "-m", "stub", "-n", "12", "-c", "3", "-w", "5", "--mix", "sleep=1", "--io-ms", "2", "-h")
    assert result.exit_code == 0 and "Usage:" in result.stdout  # -h wins, as --help would
    result = invoke(
        "submit", "-m", "stub", "-n", "12", "-c", "3", "-w", "5", "--mix", "sleep=1", "--io-ms", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    (doc,) = _json(result.stdout)
    assert doc["mode"] == "stub" and doc["spec"]["jobs"] == 12 and doc["jobs"]["done"] == 12
    assert doc["spec"]["concurrency"] == 3 and doc["peak_in_flight"] == 3
    assert doc["spec"]["workers"] == 5 and doc["spec"]["celery_workers"] == 5
    assert invoke("submit", "-h").stdout == invoke("submit", "--help").stdout


@pytest.mark.parametrize(
    ("flags", "workers", "celery_workers"),
    [
        ((), None, None),  # both default to the CPU count
        (("--workers", "3"), 3, 3),  # Celery nodes follow --workers
        (("--celery-workers", "1"), None, 1),
        (("--workers", "4", "--celery-workers", "2"), 4, 2),
    ],
)
def test_defaults_of_workers_and_celery_workers(
    stub: type[StubExecutor], flags: tuple[str, ...], workers: int | None, celery_workers: int | None
) -> None:
    result = invoke("submit", "-m", "stub", "-n", "1", "--mix", "noop=1", "--json", *flags)
    assert result.exit_code == 0, result.output
    spec = _json(result.stdout)[0]["spec"]
    cpus = usable_cpus()
    assert spec["workers"] == (workers or cpus)
    assert spec["celery_workers"] == (celery_workers or workers or cpus)


def test_batch_and_celery_pool_reach_the_spec(stub: type[StubExecutor]) -> None:
    result = invoke("submit", "-m", "stub", "-n", "1", "--batch", "7", "--celery-pool", "threads", "--json")
    assert result.exit_code == 0, result.output
    spec = _json(result.stdout)[0]["spec"]
    assert spec["batch"] == 7 and spec["celery_pool"] == "threads"
    bad = invoke("submit", "-m", "stub", "-n", "1", "--celery-pool", "solo")
    assert bad.exit_code == 2 and "--celery-pool" in bad.stderr


def test_mode_all_means_the_six_executors(stub: type[StubExecutor]) -> None:
    # Asked of every executor before any run: celery without local nodes needs REDIS_URL, so the
    # check fails -- which shows celery is in 'all' -- before anything starts.
    result = invoke("submit", "--mode", "all", "--celery-workers", "0", "--jobs", "1")
    assert result.exit_code == 2 and "--celery-workers 0" in result.stderr
    assert MODES == ("async", "thread", "process", "celery", "hybrid", "gevent")
    assert "stub" not in MODES  # a test executor, registered now, does not join 'all'
