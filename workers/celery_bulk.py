"""The Celery executor's batches handed over whole (``Executor.run_batch``): one ``runner.run_compact``
task per batch carries only its first id, size, kind and parameters, and its one reply carries the
batch's service times and failures as arrays. The executor keeps one future per batch, not per
job; every job id is still marked answered on its own, so a batch run twice (a redelivery) counts
each of its jobs as a duplicate.

The reply is bytes (``workers.celery_compact``), and the task message goes out without blocking
the event loop (``workers.celery_publish``).

A batch's task is retried once if its worker process dies, like a job's; if that dies too, the
worker replies "worker died" for each of its jobs.
"""

from __future__ import annotations

import asyncio
from array import array
from typing import TYPE_CHECKING, Any

from workers.batching import BATCH_AFTER, Outbox
from workers.bulk import Batch, BatchReport
from workers.celery_outage import broker_errors
from workers.celery_publish import task_message
from workers.errors import ServiceError

if TYPE_CHECKING:
    from workers.base import ExecutorConfig
    from workers.celery_publish import Publisher

COMPACT_TASK_NAME = "runner.run_compact"
_BULK_MOST = 4096  # jobs in a batch handed over whole (bounded by the window's share, too)


class Pending:
    """A batch sent (or about to be) and the future its reply resolves."""

    __slots__ = ("batch", "future", "sent")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.future: asyncio.Future[BatchReport] = asyncio.get_running_loop().create_future()
        self.sent = False


def settle(
    answered: bytearray, extra: dict[int, int], waiting: dict[int, Pending], costs: Outbox[Any], reply: dict[str, Any]
) -> None:
    """Mark a compact reply's jobs answered (those already answered ran again: duplicates), and
    resolve its batch's future, noting the kind's cost."""
    first, size = reply["first"], reply["size"]
    end = first + size
    if end > len(answered):
        answered.extend(bytes(max(end - len(answered), 1024)))
    if answered.count(0, first, end) != size:  # some (all, for a redelivery) ran before
        for job_id in range(first, end):
            if answered[job_id]:
                extra[job_id] = extra.get(job_id, 0) + 1
        if answered.count(0, first, end) == 0:
            return
    answered[first:end] = b"\x01" * size
    pending = waiting.get(first)
    if pending is None or pending.future.done():
        return  # its batch timed out meanwhile
    service: array[float] = reply["service_s"]
    failed = {int(k): v for k, v in reply["failed"].items()}
    cpu: array[float] | None = reply.get("cpu_s")
    pending.future.set_result(BatchReport(service, failed, [str(reply["worker"])], cpu))
    costs.note_cost(pending.batch.kind, sum(service) / len(service))


class CompactSender:
    """The Celery executor's ``batch_size`` and ``run_batch`` (mixed into ``CeleryExecutor``,
    whose state these use)."""

    config: ExecutorConfig
    _app: Any
    _bulk: dict[int, Pending]
    _fatal: ServiceError | None
    _issued: int
    _jobs_sent: int
    _outage: Any
    _outbox: Outbox[Any]
    _publisher: Publisher | None
    _queue: str
    _reader: Any
    _run_id: str
    _slots: int
    _tasks_sent: int
    _time_limit: float
    _workload: int

    async def _broker_lost(self, exc: BaseException) -> None:
        raise NotImplementedError

    def batch_size(self, kind: str) -> int:
        share = max(1, self.config.concurrency // (2 * max(1, self._slots)))
        return min(self._outbox.batch_size(kind, most=_BULK_MOST), share) if self._fatal is None else 1

    def probe_limit(self, kind: str) -> int:
        measuring = self._fatal is None and self._outbox.measuring(kind)
        return max(BATCH_AFTER, 2 * max(1, self._slots)) if measuring else 0

    async def run_batch(self, batch: Batch) -> BatchReport:
        """One task for the whole batch, one reply for it (``workers.celery_bulk``)."""
        if self._fatal is not None:
            raise self._fatal
        pending = Pending(batch)
        self._bulk[batch.first_id] = pending
        self._issued = max(self._issued, batch.first_id + batch.size)
        try:
            while not pending.sent:
                assert self._outage is not None
                await self._outage.healthy.wait()
                if self._fatal is not None:
                    raise self._fatal
                try:
                    await self._send_compact(batch)
                    pending.sent = True
                except broker_errors() as exc:
                    await self._broker_lost(exc)
            return await pending.future
        finally:
            del self._bulk[batch.first_id]

    async def _send_compact(self, batch: Batch) -> None:
        assert self._reader is not None and self._publisher is not None, "run_batch before begin_workload"
        task_id = f"{self._run_id}-{self._workload}-{batch.first_id}*{batch.size}"
        args = [list(batch), self._reader.key]
        message = task_message(
            self._app, COMPACT_TASK_NAME, args, task_id=task_id, queue=self._queue, time_limit=self._time_limit
        )
        await self._publisher.publish(message)
        self._tasks_sent += 1
        self._jobs_sent += batch.size
