"""The batch task message runner LPUSHes itself (``workers.celery_publish``) against the one
``app.send_task`` makes, both in a real Redis: the same envelope, headers, properties and body, so
a worker acks, times out and redelivers it like any Celery message. Then one real worker runs
tasks published that way, several in one command."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import redis

from workers.celery_app import make_app
from workers.celery_bulk import COMPACT_TASK_NAME
from workers.celery_nodes import LocalNodes, NodeSpec, wait_until_answering
from workers.celery_publish import Publisher, task_message
from workers.celery_replies import parse_reply

_QUEUE = "runner.publish-test"
_ARGS = [[0, 250, "noop", 0.0, 0, ""], "runner:replies:publish-test:1"]


def _decoded(raw: bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_the_raw_message_is_what_send_task_would_have_queued(redis_url: str) -> None:
    app = make_app(redis_url, queue=_QUEUE)
    with app.connection_for_write() as conn:
        app.amqp.queues[_QUEUE].bind(conn.default_channel).declare()
    app.send_task(COMPACT_TASK_NAME, args=_ARGS, queue=_QUEUE, task_id="t-1", time_limit=24.0, retry=False)
    client = redis.Redis.from_url(redis_url)
    theirs = _decoded(client.rpop(_QUEUE))  # type: ignore[arg-type]
    ours = _decoded(task_message(app, COMPACT_TASK_NAME, _ARGS, task_id="t-1", queue=_QUEUE, time_limit=24.0).encode())
    assert ours.keys() == theirs.keys() and ours["body"] == theirs["body"]
    assert ours["properties"].keys() == theirs["properties"].keys()
    for key in ("correlation_id", "delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][key] == theirs["properties"][key], key
    assert ours["headers"].keys() == theirs["headers"].keys()
    differ = {"origin"}  # who sent it
    assert {k: v for k, v in ours["headers"].items() if k not in differ} == {
        k: v for k, v in theirs["headers"].items() if k not in differ
    }
    assert ours["headers"]["timelimit"] == [24.0, None]  # the worker's hard limit, before redelivery could
    assert ours["properties"]["delivery_tag"] != theirs["properties"]["delivery_tag"]
    app.close()


def test_a_worker_runs_batches_published_raw_in_one_command(redis_url: str) -> None:
    app = make_app(redis_url, queue=_QUEUE)
    nodes = LocalNodes({"REDIS_URL": redis_url, "RUNNER_QUEUE": _QUEUE})
    try:
        nodes.start(NodeSpec("publish-test@%h", queue=_QUEUE), 1)
        assert wait_until_answering(app, 1, 60.0, nodes=nodes, marker="publish-test") is not None
        replies = asyncio.run(_publish_three(redis_url, app))
    finally:
        nodes.stop()
        app.close()
    got = sorted((r["first"], r["size"], len(r["service_s"]), sorted(r["failed"])) for r in replies)
    assert got == [(0, 5, 5, []), (5, 5, 5, ["0", "1", "2", "3", "4"]), (10, 5, 5, [])]


async def _publish_three(redis_url: str, app: Any) -> list[dict[str, Any]]:
    import redis.asyncio as redis_async

    client = redis_async.Redis.from_url(redis_url)
    key = "runner:replies:publish-test:2"
    publisher = Publisher(client, _QUEUE)
    messages = [
        task_message(
            app,
            COMPACT_TASK_NAME,
            [[first, 5, kind, 0.0, 0, ""], key],
            task_id=f"p-{first}",
            queue=_QUEUE,
            time_limit=20.0,
        )
        for first, kind in ((0, "noop"), (5, "fail"), (10, "noop"))
    ]
    await asyncio.gather(*(publisher.publish(m) for m in messages))  # one LPUSH: one loop turn
    replies = []
    for _ in range(3):
        popped = await client.blpop([key], timeout=30)
        assert popped is not None, "a task published raw was not run"
        replies.append(parse_reply(popped[1], 15))
    await client.aclose()
    return replies
