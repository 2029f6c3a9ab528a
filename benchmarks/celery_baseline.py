"""The hand-written Celery equivalent for benchmarks/overhead.py: a no-op task with a Redis result
backend, so a plain ``apply_async`` loop can wait for every result. Workers:
``celery -A celery_baseline worker`` with ``benchmarks/`` on PYTHONPATH and REDIS_URL set."""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, signals

from workers import lifeline

_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("baseline", broker=_URL, backend=_URL, set_as_current=False)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    worker_hijack_root_logger=False,
)


def _job(job: int) -> None:
    return None


@app.task(name="baseline.noop")  # type: ignore[untyped-decorator]  # celery ships no types
def noop(job: int) -> None:
    return _job(job)


@app.task(name="baseline.noop_batch")  # type: ignore[untyped-decorator]
def noop_batch(jobs: list[int]) -> None:
    """A user's own batching: one task that runs a list of jobs."""
    for job in jobs:
        _job(job)


def user_batches(jobs: int, chunk: int) -> float:
    """A user's own batching, from the client: one ``noop_batch`` per list of ``chunk`` jobs, every
    result fetched; jobs/s."""
    began = time.perf_counter()
    results = [noop_batch.apply_async((list(range(i, min(i + chunk, jobs))),)) for i in range(0, jobs, chunk)]
    for result in results:
        result.get(timeout=300)
    return jobs / (time.perf_counter() - began)


def _hold_node(**_: Any) -> None:
    """A node that a benchmark started dies with it, killed or not (and takes its prefork child)."""
    lifeline.hold_if_child()


def _hold_child(**_: Any) -> None:
    if os.environ.get(lifeline.ENV):
        lifeline.hold()


signals.worker_init.connect(_hold_node, weak=False)
signals.worker_process_init.connect(_hold_child, weak=False)
