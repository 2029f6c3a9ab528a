"""Jobs handed over in bulk: a run of consecutive jobs of one kind as one ``Batch`` (first id,
count, the kind's parameters), and its outcome as one ``BatchReport`` (compact arrays), so that a
coordinator can move small jobs at the rate of the primitive underneath without making an object
per job. Each job keeps its own facts: its id is ``first_id + index``, its service time is
``service_s[index]``, it failed iff ``failed`` has its index (with the reason), else it is done.
"""

from __future__ import annotations

import pickle
import time
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from workers.errors import JobFailed
from workers.jobs import Job, cpu_phase, result_of, run_sync

if TYPE_CHECKING:
    from workers.clients import SyncClients

# Built-in kinds whose whole job is its CPU phase, the same for every id, and whose result is
# None: a batch of them runs as one job run ``size`` times, each run timed on its own.
_CPU_ONLY = frozenset({"noop", "cpu", "hash", "fail"})
_CPU_TIMED = frozenset({"cpu", "hash"})  # their CPU time is checked against --cpu-ms after the run


class Batch(NamedTuple):
    first_id: int
    size: int
    kind: str
    io_ms: float = 0.0
    cpu_units: int = 0
    target: str = ""

    def jobs(self) -> list[Job]:
        kind, io_ms, units, target = self.kind, self.io_ms, self.cpu_units, self.target
        return [Job(job_id, kind, io_ms, units, target) for job_id in range(self.first_id, self.first_id + self.size)]


class BatchReport(NamedTuple):
    service_s: array[float]  # per job, in the batch's order
    failed: dict[int, str]  # index in the batch -> why that job failed; the others are done
    workers: list[str]  # who ran each job; one name for the whole batch where it had one runner
    cpu_s: array[float] | None = None  # per job, its thread's CPU time (cpu and hash kinds: the calibration check)


def failure_reason(exc: Exception) -> str:
    """A failed job's reason, as the coordinator words it for a job run on its own."""
    if isinstance(exc, JobFailed):
        return exc.reason
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def run_batch_sync(
    batch: Batch, clients: SyncClients, check: Callable[[Any], object] = pickle.dumps
) -> tuple[array[float], dict[int, str], array[float] | None]:
    """Run a batch's jobs one after the other in this thread, in a process of their own: each
    one's service time, the failed ones' reasons (a result that ``check`` cannot serialise fails
    its own job) and, for the kinds the calibration check reads, each one's CPU time."""
    service = array("d", bytes(8 * batch.size))
    failed: dict[int, str] = {}
    if batch.kind in _CPU_ONLY:
        job, clock = Job(batch.first_id, batch.kind, batch.io_ms, batch.cpu_units, batch.target), time.perf_counter
        cpu = array("d", bytes(8 * batch.size)) if batch.kind in _CPU_TIMED else None
        started, cpu_began = clock(), time.thread_time()
        for index in range(batch.size):
            try:
                cpu_phase(job)
            except Exception as exc:
                failed[index] = failure_reason(exc)
            ended = clock()  # this job's end is the next one's start: one clock read per job
            service[index] = ended - started
            started = ended
            if cpu is not None:
                cpu_ended = time.thread_time()
                cpu[index], cpu_began = cpu_ended - cpu_began, cpu_ended
        return service, failed, cpu
    for index, job in enumerate(batch.jobs()):
        try:
            service[index] = run_sync(job, clients)
            result = result_of(job)
            if result is not None:
                check(result)
        except Exception as exc:
            failed[index] = failure_reason(exc)
    return service, failed, None
