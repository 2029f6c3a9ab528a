"""How the closed-loop drivers take their work: the next job, or -- where the executor takes
batches of a kind (``Executor.batch_size``) -- the next run of consecutive jobs of that kind as one
``Batch``, never so many that more than ``window`` (``--concurrency``) jobs are in flight.

One driver holds one job or one batch at a time, so without batches the window can never be full
and ``take`` is a few attribute reads per job. With batches a few drivers hold all the jobs in
flight; the others wait here, woken one at a time as room comes back (waking every waiter for
each finished batch would cost more than the jobs).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator

from workers.bulk import Batch
from workers.jobs import Job

FULL = object()  # ``take``'s answer while the window is full: ``await room()`` and take again


class Units:
    def __init__(
        self,
        kinds: Iterator[str],
        params: dict[str, tuple[float, int, str]],
        batch_size: Callable[[str], int],
        window: int,
        in_flight: Callable[[], int],
    ) -> None:
        self._kinds, self._params, self._batch_size = kinds, params, batch_size
        self._window, self._in_flight = window, in_flight
        self._next_id = 0
        self._peeked: str | None = next(kinds, None)
        self._batched = False  # once a batch is out, single jobs too must find room in the window
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take(self) -> Job | Batch | object | None:
        """The next job or batch; None when the workload is exhausted; ``FULL``."""
        kind = self._peeked
        if kind is None:
            self._wake_all()  # drivers waiting for room would otherwise wait for ever
            return None
        size = self._batch_size(kind)
        first = self._next_id
        io_ms, units, target = self._params[kind]
        if size <= 1:
            if self._batched and self._window <= self._in_flight():
                return FULL
            self._next_id = first + 1
            self._peeked = next(self._kinds, None)
            return Job(first, kind, io_ms, units, target)
        room = self._window - self._in_flight()
        if room <= 0:
            return FULL
        count, limit, kinds = 1, min(size, room), self._kinds
        following = next(kinds, None)
        while following == kind and count < limit:
            count += 1
            following = next(kinds, None)
        self._peeked = following
        self._next_id = first + count
        self._batched = True
        if room > count and self.waiters:
            self._wake_one()  # room for another batch: the next waiter takes it
        return Batch(first, count, kind, io_ms, units, target) if count > 1 else Job(first, kind, io_ms, units, target)

    async def room(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter

    def released(self) -> None:
        """Jobs left the window (a batch ended, or a job while drivers wait)."""
        if self.waiters:
            self._wake_one()

    def _wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self.waiters:
            self._wake_one()
