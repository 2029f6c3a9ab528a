"""The process pool's batches handed over whole (``Executor.run_batch``), mixed into
``workers.process_pool.ProcessExecutor``, whose pool, tickets and rebuilds these use: one pool task
per batch, its jobs made in the pool process (``compact_task``) and answered in arrays.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from workers.base import ExecutorConfig
from workers.batching import BATCH_AFTER, Outbox
from workers.bulk import Batch, BatchReport

# A batch handed over whole costs the coordinator one task, however many jobs it holds: larger
# than the outbox's, bounded by the window's share.
_BULK_BUDGET_S, _BULK_MOST = 0.005, 4096


class WholeBatches:
    config: ExecutorConfig
    compact_task: Callable[..., Any]
    _generation: int
    _jobs_sent: int
    _outbox: Outbox[Any]
    _pids: set[int]
    _tasks_sent: int
    _tickets: itertools.count[int]

    def _started_pool(self) -> ProcessPoolExecutor:
        raise NotImplementedError

    async def _rebuild(self, generation: int) -> set[int]:
        raise NotImplementedError

    def _abandon(self, ticket: int, future: Any) -> None:
        raise NotImplementedError

    async def _one_by_one(self, batch: Batch) -> BatchReport:
        raise NotImplementedError

    def batch_size(self, kind: str) -> int:
        """Batches for kinds measured cheap, no bigger than a share of the window that keeps two
        batches per process out."""
        share = max(1, self.config.concurrency // (2 * self.config.workers))
        return min(self._outbox.batch_size(kind, _BULK_BUDGET_S, _BULK_MOST), share)

    def probe_limit(self, kind: str) -> int:
        return max(BATCH_AFTER, 2 * self.config.workers) if self._outbox.measuring(kind) else 0

    async def run_batch(self, batch: Batch) -> BatchReport:
        """The batch in one pool task, sent as it is and answered in arrays. If the pool breaks
        meanwhile, every job of it runs again on its own, with the usual retries and blame."""
        ticket, generation = next(self._tickets), self._generation
        try:
            future = self._started_pool().submit(self.compact_task, batch, ticket)
        except RuntimeError:
            return await self._one_by_one(batch)
        self._tasks_sent, self._jobs_sent = self._tasks_sent + 1, self._jobs_sent + batch.size
        try:
            service, failed, pid, cpu = await asyncio.wrap_future(future)
        except RuntimeError as exc:
            if not isinstance(exc, BrokenProcessPool) and generation == self._generation:
                raise
            await self._rebuild(generation)
            return await self._one_by_one(batch)
        except asyncio.CancelledError:
            if not future.cancel():
                self._abandon(ticket, future)  # a process is stuck in it: killed, the others retried
            raise
        self._pids.add(pid)
        self._outbox.note_cost(batch.kind, sum(service) / batch.size)
        return BatchReport(service, failed, [f"pid-{pid}"], cpu)
