"""The outbox both pools use to send small jobs in batches (``process`` and ``celery``).

A job whose kind costs far less than one trip to a worker (a pool's pickling and queues, a broker
round trip) waits here instead of going out on its own. Batches leave while fewer than ``limit()``
of them are out -- enough to keep every worker slot busy with one running and one waiting -- so
jobs queue in the coordinator, where they can still join a batch, rather than in the pool's or the
broker's queue, where they cannot.

How many jobs go in a batch comes from each kind's measured cost (a moving average of service
times): about ``budget_s`` of work, at most ``MAX_BATCH`` jobs. Until ``BATCH_AFTER`` results of a
kind were seen its cost is unknown and jobs go one by one, since a slow job in a batch would hold up
its batch-mates. A fixed ``--batch N`` overrides all of this (1 turns batching off).

The outbox knows nothing about pools or brokers: the executor gives it a ``send`` callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

MAX_BATCH = 256
BATCH_AFTER = 8  # results of a kind seen before its cost is trusted enough to batch on
_MIN_COST_S = 1e-7  # a measured cost of 0 must not ask for an infinite batch


class Queued(Protocol):
    """What waits in the outbox: anything that knows its job's id (lower ids go first)."""

    @property
    def order(self) -> int: ...


Q = TypeVar("Q", bound=Queued)


class Outbox(Generic[Q]):
    """Jobs waiting to go out in batches, by kind, and the batches that are out.

    ``send(chunk)`` sends one batch and returns True, or returns False when it cannot send now
    (the chunk stays, and flushing waits for the next ``kick``). The executor calls ``task_done``
    once per batch (or single job counted with ``count_out``) that has finished."""

    def __init__(
        self, send: Callable[[list[Q]], bool], *, fixed: int, budget_s: float, limit: Callable[[], int]
    ) -> None:
        self._send = send
        self._fixed = fixed  # --batch: 0 = sized from measured cost
        self._budget_s = budget_s
        self._limit = limit
        self._boxes: dict[str, list[Q]] = {}
        self._costs: dict[str, tuple[float, int]] = {}  # kind -> (moving average of service time, results)
        self._scheduled = False
        self.out = 0  # batches (and counted single jobs) sent and not finished

    def reset_costs(self) -> None:
        self._costs.clear()

    def note_cost(self, kind: str, service_s: float) -> None:
        cost, seen = self._costs.get(kind, (service_s, 0))
        self._costs[kind] = (0.9 * cost + 0.1 * service_s, seen + 1)

    def measuring(self, kind: str) -> bool:
        """True while ``kind``'s cost is not yet known well enough to size batches (``--batch 0``)."""
        return self._fixed == 0 and self._costs.get(kind, (0.0, 0))[1] < BATCH_AFTER

    def batch_size(self, kind: str, budget_s: float = 0.0, most: int = MAX_BATCH) -> int:
        """Jobs of ``kind`` per batch: about ``budget_s`` (default: the outbox's) of work, at most ``most``."""
        if self._fixed > 0:
            return self._fixed
        cost, seen = self._costs.get(kind, (0.0, 0))
        if seen < BATCH_AFTER:
            return 1
        return max(1, min(most, int((budget_s or self._budget_s) / max(cost, _MIN_COST_S))))

    def full(self) -> bool:
        return self.out >= self._limit()

    def waiting(self, kind: str) -> bool:
        return bool(self._boxes.get(kind))

    def put(self, kind: str, item: Q) -> None:
        self._boxes.setdefault(kind, []).append(item)
        self.kick()

    def remove(self, kind: str, item: Q) -> None:
        """Take back a job that never left (it timed out, or the run stopped)."""
        self._boxes[kind].remove(item)

    def count_out(self) -> None:
        """A job sent on its own, outside the outbox, that takes a slot all the same."""
        self.out += 1

    def task_done(self) -> None:
        self.out -= 1
        self.kick()

    def kick(self) -> None:
        """Flush soon: the jobs that arrive in this turn of the event loop can share a batch."""
        if not self._scheduled and any(self._boxes.values()):
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        while self.out < self._limit():
            waiting = [(box[0].order, kind) for kind, box in self._boxes.items() if box]
            if not waiting:
                return
            kind = min(waiting)[1]  # the kind whose first job has waited longest: no kind starves
            box = self._boxes[kind]
            chunk = box[: self.batch_size(kind)]
            if not self._send(chunk):
                return
            del box[: len(chunk)]
            self.out += 1
