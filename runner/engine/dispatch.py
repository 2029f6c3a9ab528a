"""How the closed-loop drivers take their work and hand it over: the next job, or -- where the
executor takes batches of a kind (``Executor.batch_size``) -- the next run of consecutive jobs of
that kind as one ``Batch`` (``BatchRun``), never so many that more than ``window``
(``--concurrency``) jobs are in flight; and the wait for the drivers to end, with its grace period.

One driver holds one job or one batch at a time, so without batches the window can never be full
and ``take`` is a few attribute reads per job. With batches a few drivers hold all the jobs in
flight; the others wait here, woken one at a time as room comes back (waking every waiter for
each finished batch would cost more than the jobs).
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

from runner.engine.calibration_check import ServiceSamples
from runner.engine.ledger import FAILED, TIMED_OUT, Ledger
from runner.engine.metrics import JobLatencies
from workers.base import Executor, JobReport
from workers.bulk import Batch
from workers.bulk import failure_reason as worded
from workers.errors import ServiceError
from workers.jobs import Job
from workers.urls import scrub

_GRACE_S = 2.0  # after a stop request, how long in-flight jobs may still finish


class Room(enum.Enum):
    FULL = "full"


FULL: Final = Room.FULL  # ``take``'s answer while the window is full: ``await room()`` and take again
_job = tuple.__new__  # a Job without ``Job.__new__``'s Python frame: a third of the cost, per job
_CHUNK = 64  # single jobs made at a time (see ``Units``)


class Units:
    """The workload as the closed-loop drivers take it (``take``), and the drivers waiting for room.

    Until the first batch goes out, single jobs are made ``_CHUNK`` at a time, in C (itertools), into
    ``ready``, which a driver pops itself (``ready.popleft()``, no Python frame) before it calls
    ``take``: the window needs no check then (one job per driver), and the executor's
    ``batch_size`` is asked once per kind per chunk, not per job."""

    def __init__(
        self,
        kinds: Iterator[str],
        params: dict[str, tuple[float, int, str]],
        batch_size: Callable[[str], int],
        window: int,
        in_flight: Callable[[], int],
        probe_limit: Callable[[str], int] = lambda _: 0,
    ) -> None:
        self._kinds, self._batch_size, self._probe_limit = kinds, batch_size, probe_limit
        self._params = params
        # kind -> io_ms, kind -> cpu_units, kind -> target: a Job's fields after id and kind
        self._fields = tuple({kind: values[i] for kind, values in params.items()} for i in range(3))
        self._window, self._in_flight = window, in_flight
        self._next_id = 0
        self._peeked: str | None = next(kinds, None)
        self._batched = False  # once a batch is out, single jobs too must find room in the window
        self.ready: deque[Job] = deque()  # single jobs made ahead (only before the first batch)
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take(self) -> Job | Batch | Room | None:
        """The next job or batch; None when the workload is exhausted; ``FULL``."""
        if self.ready:
            return self.ready.popleft()
        kind = self._peeked
        if kind is None:
            self._wake_all()  # drivers waiting for room would otherwise wait for ever
            return None
        first, size = self._next_id, self._batch_size(kind)
        io_ms, units, target = self._params[kind]
        if size <= 1:
            probing = self._probe_limit(kind)  # the executor may batch this kind once it knows its cost
            if not self._batched and not probing:
                if self.waiters:  # drivers held while the cost was measured: all free to take again
                    self._wake_all()
                return self._chunk(first, kind)
            in_flight = self._in_flight()
            if self._window <= in_flight or (probing and probing <= in_flight):
                return FULL
            self._next_id = first + 1
            self._peeked = next(self._kinds, None)
            job: Job = _job(Job, (first, kind, io_ms, units, target, None))
            return job
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

    def _chunk(self, first: int, kind: str) -> Job:
        """Up to ``_CHUNK`` single jobs from ``first`` (of ``kind``, which is not batched) into
        ``ready``, up to the first job of a kind the executor batches; the first is returned."""
        chunk = [kind, *itertools.islice(self._kinds, _CHUNK)]
        self._peeked = chunk.pop() if len(chunk) > _CHUNK else None
        cuts = [chunk.index(other) for other in set(chunk).difference((kind,)) if self._batch_size(other) > 1]
        if cuts:  # stop before the first job of a batched kind: it goes out as a batch
            cut = min(cuts)
            rest = chunk[cut + 1 :] + ([self._peeked] if self._peeked is not None else [])
            self._kinds = itertools.chain(rest, self._kinds)
            chunk, self._peeked = chunk[:cut], chunk[cut]
        self._next_id = first + len(chunk)
        # One tuple of fields per job, which zip reuses once ``tuple.__new__`` has copied it.
        io_ms, units, target = (map(field.__getitem__, chunk) for field in self._fields)
        fields = zip(itertools.count(first), chunk, io_ms, units, target, itertools.repeat(None))
        self.ready.extend(map(_job, itertools.repeat(Job), fields))
        return self.ready.popleft()

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


class BatchRun:
    """A driver's batch: its jobs are handed off together and end together (one latency each,
    from hand-off to the batch's report), each with its own outcome and service time; a batch
    that outlives the timeout times out as a whole. ``slots`` is the drivers' state the watchdog
    shares: when each slot's work began, whether the watchdog expired it, the driver tasks."""

    def __init__(
        self,
        executor: Executor,
        ledger: Ledger,
        latencies: JobLatencies | None,
        units: Units | None,
        slots: tuple[list[float], list[bool], list[asyncio.Task[None]]],
        timed_out: str,
        why: list[str],
        halt_with: Callable[[str], None],
        samples: ServiceSamples | None = None,
    ) -> None:
        self._executor, self._ledger, self._latencies, self._units = executor, ledger, latencies, units
        self._began_at, self._expired, self._drivers = slots
        self._timed_out, self._why, self._halt_with = timed_out, why, halt_with
        self._samples = samples if samples is not None and samples.kinds else None

    async def __call__(self, slot: int, batch: Batch) -> None:
        ledger, latencies, began_at = self._ledger, self._latencies, self._began_at
        first, count, kind = batch.first_id, batch.size, batch.kind
        ledger.submit_many(first, count)
        began = began_at[slot] = time.perf_counter()
        try:
            report = await self._executor.run_batch(batch)
        except asyncio.CancelledError:
            began_at[slot] = 0.0
            latency = time.perf_counter() - began
            if not self._expired[slot]:  # a stop, after its grace period
                reason = f"interrupted by {self._why[0]} before it finished" if self._why else "cancelled"
                ledger.end_many(first, count, FAILED, kind, latency, reason)
                raise
            self._expired[slot] = False
            self._drivers[slot].uncancel()
            if latencies is not None:
                latencies.timed_out.record_repeated(latency, count)
            ledger.end_many(first, count, TIMED_OUT, kind, latency, self._timed_out)
        except Exception as exc:  # the report holds the jobs' errors: this is the executor's own
            began_at[slot] = 0.0
            latency = time.perf_counter() - began
            if latencies is not None:
                latencies.failed.record_repeated(latency, count)
            ledger.end_many(first, count, FAILED, kind, latency, failure_reason(exc))
            if isinstance(exc, ServiceError):
                self._halt_with(str(exc))
        else:
            began_at[slot] = 0.0
            latency = time.perf_counter() - began
            failed = {index: scrub(reason) for index, reason in report.failed.items()}
            if latencies is not None:
                latencies.record_batch(latency, report.service_s, failed)
            if self._samples is not None and kind in self._samples.kinds:  # the calibration check's
                cpu = report.cpu_s
                for index, service in enumerate(report.service_s):
                    if index not in failed:
                        worker = report.workers[0 if len(report.workers) == 1 else index]
                        self._samples.add(kind, JobReport(service, worker, None if cpu is None else cpu[index]))
            ledger.finish_many(first, count, kind, latency, report.workers, failed)
        if self._units is not None:
            self._units.released()


async def until_done_or_halted(drivers: list[asyncio.Task[None]], halt: asyncio.Event, hurry: asyncio.Event) -> None:
    """Wait for every driver; after a halt, give in-flight jobs ``_GRACE_S`` (less on a second
    signal), then cancel the drivers, which account for their jobs. Every task is awaited, so no
    exception goes unretrieved and none outlives the run, even one cancelled from outside; a
    driver's own bug is re-raised."""
    everything = asyncio.gather(*drivers, return_exceptions=True)
    halted = asyncio.create_task(halt.wait())
    hurried = asyncio.create_task(hurry.wait())
    try:
        first: list[asyncio.Future[Any]] = [everything, halted]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if not everything.done():
            grace: list[asyncio.Future[Any]] = [everything, hurried]
            await asyncio.wait(grace, timeout=_GRACE_S, return_when=asyncio.FIRST_COMPLETED)
        for task in drivers:
            task.cancel()
        outcomes = await everything
    except asyncio.CancelledError:  # the run itself cancelled from outside: its drivers end, and account, first
        for task in drivers:
            task.cancel()
        await asyncio.wait([everything])
        raise
    finally:
        for helper in (halted, hurried):
            helper.cancel()
        await asyncio.gather(halted, hurried, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome


async def report_progress(status: Callable[[], Any], progress: Callable[[Any], None] | None) -> None:
    assert progress is not None
    while True:
        progress(status())
        await asyncio.sleep(0.2)


def failure_reason(exc: Exception) -> str:
    """What the ledger and the result record for a failed job: one line, secrets hidden."""
    return scrub(worded(exc))
