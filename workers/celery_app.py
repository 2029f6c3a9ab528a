"""The Celery app that runner's workers run: ``celery -A workers.celery_app worker``.

Configured from the environment: ``REDIS_URL`` (broker; replies go to the same Redis),
``RUNNER_QUEUE`` (default ``runner``), ``RUNNER_CELERY_PREFETCH`` (default 1) and
``RUNNER_VISIBILITY_TIMEOUT`` (seconds an unacknowledged job stays invisible before Redis hands it
to another worker; sized to the job timeout by the coordinator).

Messages are JSON only: a pickled message is rejected, never run. Jobs are acknowledged late and
rejected (so requeued) when the worker process dies, so a crash loses no job -- at the price of a
possible second run, which the coordinator counts as a duplicate.

The task does not use Celery's result backend: it pushes a small JSON reply onto a Redis list the
coordinator named, so the coordinator's ledger sees every run of every job, duplicates included.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from celery import Celery, Task

from workers.clients import SyncClients
from workers.jobs import Job, run_sync

TASK_NAME = "runner.run_job"
DEFAULT_QUEUE = "runner"

_clients = SyncClients(pool_size=4)  # per worker process; connections open on first use


def make_app(
    broker_url: str,
    *,
    queue: str = DEFAULT_QUEUE,
    prefetch: int = 1,
    visibility_timeout_s: float = 3600.0,
) -> Celery:
    app = Celery("runner", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=prefetch,
        task_ignore_result=True,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": int(visibility_timeout_s)},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.task(name=TASK_NAME, bind=True)(run_job)
    return app


def run_job(task: Task, wire: list[Any], reply_key: str) -> None:
    """Run one job and push its outcome to ``reply_key``; failures are data, not exceptions."""
    job = Job.from_wire(wire)
    worker = task.request.hostname or socket.gethostname()
    reply: dict[str, Any] = {"id": job.id, "worker": worker}
    try:
        reply["service_s"] = run_sync(job, _clients)
    except Exception as exc:  # reported to the coordinator's ledger, not raised into Celery
        reply["error"] = f"{type(exc).__name__}: {exc}"
    broker = task.app.conf.broker_url
    _clients.redis(broker).rpush(reply_key, json.dumps(reply))


app = make_app(
    os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
    queue=os.environ.get("RUNNER_QUEUE", DEFAULT_QUEUE),
    prefetch=int(os.environ.get("RUNNER_CELERY_PREFETCH", "1")),
    visibility_timeout_s=float(os.environ.get("RUNNER_VISIBILITY_TIMEOUT", "3600")),
)
