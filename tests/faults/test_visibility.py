"""``RUNNER_VISIBILITY_TIMEOUT`` on a cluster's nodes, really exercised: two nodes started the way a
cluster starts them (``celery -A workers.celery_app worker``, the variable in their environment),
one job sent, the node that holds it killed (SIGKILL to its process group, so it never
acknowledges), and the job then runs on the other node -- not before the visibility timeout has
passed since it was first delivered (the late ack keeps it in Redis's ``unacked`` set until then),
and exactly once to the end.

Without the variable the nodes keep Celery's hour and the job would wait that long: the test's
deadline fails it. The coordinator's own use of redelivery (it sets every node's timeout to half
its ``--timeout``, and counts a job that ran twice as a duplicate) is in
``tests/faults/test_celery_workers.py``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.faults.helpers import kill_group
from workers.celery_app import TASK_NAME, make_app
from workers.celery_nodes import LocalNodes, NodeSpec, wait_until_answering
from workers.jobs import Job

VISIBILITY_S = 4.0
JOB_S = 2.0  # the job sleeps this long: long enough to kill its first node mid-run


@pytest.fixture()
def two_nodes(redis_url: str) -> Iterator[tuple[LocalNodes, str]]:
    queue = f"vt-{uuid.uuid4().hex[:8]}"
    env = {"REDIS_URL": redis_url, "RUNNER_QUEUE": queue, "RUNNER_VISIBILITY_TIMEOUT": f"{VISIBILITY_S:g}"}
    nodes = LocalNodes(env)
    try:
        nodes.start(NodeSpec("vt{i}@%h", queue=queue), 2)
        yield nodes, queue
    finally:
        nodes.stop(grace_s=2.0)


def test_a_dead_nodes_job_runs_again_after_the_visibility_timeout(
    redis_url: str, two_nodes: tuple[LocalNodes, str]
) -> None:
    nodes, queue = two_nodes
    # The sender's own setting is an hour: only the nodes' environment can make the job come back.
    app = make_app(redis_url, queue=queue, visibility_timeout_s=3600.0)
    names = wait_until_answering(app, 2, 120.0, nodes=nodes, marker="vt")
    assert names is not None and len(names) == 2
    r = redis.Redis.from_url(redis_url)
    reply_key = f"runner:replies:vt-test:{uuid.uuid4().hex[:8]}"
    app.send_task(TASK_NAME, args=[Job(7, "sleep", JOB_S * 1000).to_wire(), reply_key], queue=queue)

    # Delivered and unacknowledged: kombu keeps it in 'unacked', its delivery time in 'unacked_index'.
    deadline = time.monotonic() + 60
    while not r.hlen("unacked") and time.monotonic() < deadline:
        time.sleep(0.02)
    entries: list[tuple[bytes, float]] = r.zrange("unacked_index", 0, -1, withscores=True)  # type: ignore[assignment]
    ((tag, delivered_at),) = entries
    holder = None
    while holder is None and time.monotonic() < deadline:
        active = app.control.inspect(destination=names, timeout=1.0).active() or {}
        holder = next((name for name, tasks in active.items() if tasks), None)
    assert holder is not None, "no node reported the job active"
    assert time.time() < delivered_at + JOB_S, "the job finished before its node could be killed"
    index = int(holder.split("@")[0].removeprefix("vt"))
    kill_group(nodes.procs[index].pid)
    nodes.procs[index].wait(10)
    assert r.hexists("unacked", tag)  # never acknowledged by the dead node

    popped = None
    deadline = time.monotonic() + VISIBILITY_S + JOB_S + 60
    while popped is None and time.monotonic() < deadline:
        popped = r.blpop([reply_key], timeout=1)
    arrived = time.time()
    assert popped is not None, "the job never ran again: the nodes did not take RUNNER_VISIBILITY_TIMEOUT"
    reply = json.loads(popped[1])
    survivor = names[1 - index]
    assert reply["id"] == 7 and reply["worker"] == survivor and "error" not in reply
    began_again = arrived - reply["service_s"]
    assert began_again >= delivered_at + VISIBILITY_S, (began_again - delivered_at, VISIBILITY_S)
    # Ran once to the end (the killed run pushed nothing), and acknowledged this time.
    time.sleep(1.0)
    assert r.llen(reply_key) == 0
    deadline = time.monotonic() + 10
    while r.hexists("unacked", tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not r.hexists("unacked", tag)
    app.close()
    r.close()
