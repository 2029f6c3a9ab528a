"""What the Celery executor waits on for jobs sent on their own or in a list task (``--batch 1``,
and each kind's first jobs with ``--batch 0``): one future per job, and per task how many of its
jobs still wait for their reply (batches handed over whole wait in ``workers.celery_bulk``)."""

from __future__ import annotations

import asyncio
from typing import Any

from workers.jobs import Job


class JobWait:
    """A job sent (or about to be) and the future its reply resolves."""

    __slots__ = ("batch", "future", "job", "queued", "sent")

    def __init__(self, future: asyncio.Future[dict[str, Any]], job: Job) -> None:
        self.future = future
        self.job = job
        self.sent = False
        self.queued = False  # waiting in the outbox to go out in a batch
        self.batch: TaskWait | None = None  # the task it went in

    @property
    def order(self) -> int:
        return self.job.id


class TaskWait:
    """A task sent: how many of its jobs are still waiting for their reply."""

    __slots__ = ("left",)

    def __init__(self, jobs: int) -> None:
        self.left = jobs

    @staticmethod
    def mark(chunk: list[JobWait]) -> None:
        batch = TaskWait(len(chunk))
        for p in chunk:
            p.sent, p.batch = True, batch
