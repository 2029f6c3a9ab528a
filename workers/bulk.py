"""Jobs handed over in bulk: a run of consecutive jobs of one kind as one ``Batch`` (first id,
count, the kind's parameters), and its outcome as one ``BatchReport`` (compact arrays), so that a
coordinator can move small jobs at the rate of the primitive underneath without making an object
per job. Each job keeps its own facts: its id is ``first_id + index``, its service time is
``service_s[index]``, it failed iff ``failed`` has its index (with the reason), else it is done.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from workers.jobs import Job


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

    def worker(self, index: int) -> str:
        return self.workers[0] if len(self.workers) == 1 else self.workers[index]
