"""Issue 12, security: a broker message never decides which code a Celery node imports or calls.
Access to Redis must not amount to running ``os:system``. Real nodes, real Redis: a node started
on its own (no table) refuses every user job unless RUNNER_JOBS_DIR is set, and then loads only
modules under it; a node runner started with a table runs the table's function for a kind, never
the reference in the message, and refuses kinds outside it."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from workers.celery_app import TASK_NAME, make_app
from workers.celery_nodes import LocalNodes, NodeSpec, wait_until_answering
from workers.errors import JobFailed
from workers.user_calls import Caller
from workers.user_jobs import ENV, JOBS_DIR_ENV, JobTable, Refused, load_confined, parse_ref


@pytest.fixture()
def jobs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "jobs"
    root.mkdir()
    (root / "legit_jobs_mod.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "json.py").write_text("def loads(x):\n    return x\n")  # would shadow the standard library
    return root


def _node(redis_url: str, queue: str, env: dict[str, str]) -> LocalNodes:
    clean = {key: "" for key in (ENV, JOBS_DIR_ENV)} | env  # nothing inherited from the test's environment
    nodes = LocalNodes({"REDIS_URL": redis_url, "RUNNER_QUEUE": queue, **clean})
    nodes.start(NodeSpec(f"sec-{queue}@%h", queue=queue), 1)
    app = make_app(redis_url, queue=queue)
    try:
        assert wait_until_answering(app, 1, 60, nodes=nodes, marker=f"sec-{queue}") is not None
    finally:
        app.close()
    return nodes


@pytest.fixture()
def send(redis_url: str) -> Iterator[Any]:
    app = make_app(redis_url)
    client = redis.Redis.from_url(redis_url)

    def send(queue: str, kind: str, ref: str, payload: Any) -> dict[str, Any]:
        key = f"runner:replies:sec:{queue}:{kind}"
        app.send_task(TASK_NAME, args=[[1, kind, 0.0, 0, ref, payload], key], queue=queue)
        reply = client.blpop([key], timeout=60)
        assert reply is not None, "the node sent no reply"
        answer: dict[str, Any] = json.loads(reply[1])
        return answer

    yield send
    client.close()
    app.close()


def test_a_node_without_a_table_or_jobs_dir_refuses_os_system(redis_url: str, send: Any, tmp_path: Path) -> None:
    proof = tmp_path / "ran"
    nodes = _node(redis_url, "sec-none", {})
    try:
        reply = send("sec-none", "evil", "os:system", [f"touch {proof}"])
        assert "refused" in reply["error"] and JOBS_DIR_ENV in reply["error"]
        assert nodes.procs[0].poll() is None
    finally:
        nodes.stop()
    assert not proof.exists()


def test_a_node_with_a_jobs_dir_loads_only_modules_under_it(
    redis_url: str, send: Any, jobs_dir: Path, tmp_path: Path
) -> None:
    proof = tmp_path / "ran"
    nodes = _node(redis_url, "sec-dir", {JOBS_DIR_ENV: str(jobs_dir)})
    try:
        assert send("sec-dir", "ok", "legit_jobs_mod:double", 21)["service_s"] >= 0  # the dir's own: runs
        refused = send("sec-dir", "evil", "os:system", [f"touch {proof}"])
        assert "refused" in refused["error"] and "not under" in refused["error"]
        shadow = send("sec-dir", "shadow", "json:loads", "x")  # json.py there, json imported from elsewhere
        assert "refused" in shadow["error"]
    finally:
        nodes.stop()
    assert not proof.exists()


def test_a_node_with_a_table_runs_the_tables_function_only(
    redis_url: str, send: Any, jobs_dir: Path, tmp_path: Path
) -> None:
    proof = tmp_path / "ran"
    table = JobTable({"ok": parse_ref("legit_jobs_mod:double", "test")}, (str(jobs_dir),))
    nodes = _node(redis_url, "sec-table", {ENV: table.to_json(), JOBS_DIR_ENV: str(jobs_dir)})
    try:
        # A kind in the table runs the table's function, whatever reference the message names.
        ran = send("sec-table", "ok", "os:system", 21)
        assert "error" not in ran and ran["form"] == "sync" and ran["bytes"] == len("42")
        refused = send("sec-table", "evil", "os:system", [f"touch {proof}"])  # not in the table
        assert "not in this worker's job table" in refused["error"]
    finally:
        nodes.stop()
    assert not proof.exists()


def test_confined_loading_in_process(jobs_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(Refused, match="not set"):
        load_confined("evil", "os:system", "")
    with pytest.raises(Refused, match="not under"):
        load_confined("evil", "os:system", str(jobs_dir))
    with pytest.raises(Refused, match="not under"):
        load_confined("evil", "subprocess:run", str(jobs_dir))
    with pytest.raises(Refused, match="not under"):
        load_confined("shadow", "json:loads", str(jobs_dir))
    with pytest.raises(Refused):
        load_confined("dunder", "legit_jobs_mod:__import__", str(jobs_dir))
    loaded = load_confined("ok", "legit_jobs_mod:double", str(jobs_dir))
    assert loaded.sync is not None and loaded.sync(4) == 8
    assert str(jobs_dir) == sys.path[-1]  # appended: never shadows a library
    caller = Caller({}, "json")  # a table-only caller (runner started it) refuses what it lacks
    with pytest.raises(JobFailed, match="not in this worker's job table"):
        caller.call_sync("ok", "legit_jobs_mod:double", 1)
    assert os.environ.get(ENV) is None
    sys.modules.pop("legit_jobs_mod", None)
