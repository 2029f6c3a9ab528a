"""The executor interface: the one thing the coordinator knows about an offload strategy.

An executor is started once, asked to ``run`` many jobs concurrently from the coordinator's event
loop (at most ``concurrency`` at a time), and stopped. Whatever it needs -- a pool, worker
processes, an embedded Redis -- it starts in ``start`` and cleans up in ``stop``. It reports the
local processes that do the work so the coordinator can measure their CPU and memory.

Executors are looked up by name in ``workers.registry``; nothing outside ``workers/`` branches on
which one is in use.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, Protocol, Self

from workers.bulk import Batch, BatchReport, failure_reason
from workers.calibration import Calibration
from workers.errors import ServiceError
from workers.jobs import Job
from workers.options import Option, OptionValue
from workers.user_calls import Tally
from workers.user_jobs import JobTable


class Services(Protocol):
    """Where the shared services are; asking for one may start an embedded instance."""

    def redis_url(self) -> str: ...


@dataclass(frozen=True)
class ExecutorConfig:
    concurrency: int  # jobs the coordinator keeps in flight (and threads, for the thread pool)
    workers: int  # worker processes of a local pool
    timeout_s: float  # per-job timeout, which some executors need (e.g. broker visibility)
    # jobs per pool/broker task for small jobs: 0 = sized from measured cost, 1 = off, None = the
    # executor's own default (``Executor.default_batch``)
    batch: int | None = None
    expect_workers: int = 0  # a cluster's nodes to wait for before timing starts (celery_workers 0)
    wait_s: float = 30.0  # how long to wait for them
    options: Mapping[str, OptionValue] = field(default_factory=dict)  # the executors' own (``Executor.options``)
    user_jobs: JobTable | None = None  # the user's own kinds (``--job``), which every worker loads


class JobReport(NamedTuple):
    service_s: float  # time the job itself ran, measured where it ran
    worker: str  # who ran it: "loop", a thread name, a pid, a Celery node name
    cpu_s: float | None = None  # CPU time of the thread that ran it, during it (the calibration check)


def cpu_seconds(value: object) -> float | None:
    """A worker's reported ``cpu_s``, if it is a number (a worker of an older runner sends none)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Capacity(NamedTuple):
    """What an executor can do at best, for the report's bound: ``slots`` jobs in service at once
    (waiting on I/O included); ``gil_cores`` cores for Python code that holds the GIL;
    ``free_cores`` cores for work that releases it (hashing); ``cores`` all the cores its work runs
    on, where that is not the coordinator's machine (a cluster's nodes), else None."""

    slots: int
    gil_cores: float
    free_cores: float
    cores: float | None = None


class Executor(ABC):
    """Use as ``async with executor:`` -- started on entry, always stopped on exit (a failed
    start included) -- or call ``start``/``stop`` yourself."""

    name: ClassVar[str]
    summary: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()  # options of its own, listed in ``workers.registry``
    default_batch: ClassVar[int] = 0  # --batch when not set: 0 sizes batches from measured cost
    serialises: ClassVar[str] = "none"  # how user jobs' inputs and results cross to its workers

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        self.config = config
        self.services = services
        self.user_kinds = frozenset(config.user_jobs.jobs) if config.user_jobs else frozenset()
        self.tally = Tally(self.serialises)  # filled as user jobs run (workers.user_jobs)

    @property
    def batch(self) -> int:
        """Jobs per task for small jobs, as set or as this executor defaults: 0 = sized from cost."""
        return self.default_batch if self.config.batch is None else self.config.batch

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        """Raise ``InputError`` if this executor cannot run with ``config``; called before any run."""

    async def start(self) -> None:
        """Bring up pools and processes before timing starts."""

    async def begin_workload(self) -> None:
        """Forget per-workload state (job ids restart at 0); the executor stays started."""

    @abstractmethod
    async def run(self, job: Job) -> JobReport:
        """Run one job; raise on failure (``JobFailed`` when the worker reported the reason)."""

    def batch_size(self, kind: str) -> int:
        """How many consecutive jobs of ``kind`` the coordinator may hand over as one ``Batch``
        (``run_batch``) now: 1 (the default) means one by one, through ``run``."""
        return 1

    def probe_limit(self, kind: str) -> int:
        """Jobs in flight allowed while ``kind``'s cost is still being measured, for an executor
        that batches once it is known: the jobs beyond it wait for that answer and then go out in
        batches, instead of a whole window going one by one first. 0 (the default): no limit."""
        return 0

    async def run_batch(self, batch: Batch) -> BatchReport:
        """Run a batch's jobs; every job's own outcome and service time in the report. This
        default runs each through ``run`` at once (an executor's fallback for a batch it cannot
        run in one piece); it raises only what would stop the run (``ServiceError``)."""
        reports = await asyncio.gather(*(self.run(job) for job in batch.jobs()), return_exceptions=True)
        service, cpu = array("d", bytes(8 * batch.size)), array("d", bytes(8 * batch.size))
        failed: dict[int, str] = {}
        workers = [""] * batch.size
        for index, report in enumerate(reports):
            if isinstance(report, ServiceError):
                raise report
            if isinstance(report, BaseException):
                if not isinstance(report, Exception):
                    raise report  # a cancellation
                failed[index] = failure_reason(report)
            else:
                service[index], workers[index], cpu[index] = report.service_s, report.worker, report.cpu_s or 0.0
        timed = any(not isinstance(r, BaseException) and r.cpu_s is not None for r in reports)
        return BatchReport(service, failed, workers, cpu if timed else None)

    async def stop(self) -> None:
        """Stop everything ``start`` started; must be safe to call after a failed start."""

    def worker_pids(self) -> list[int]:
        """Local processes, other than the coordinator, that run jobs (for resource figures)."""
        return []

    def worker_calibrations(self) -> dict[str, Calibration]:
        """Worker -> the rate it measured itself as it started, for executors whose jobs run outside
        the coordinator's process (empty: they run in it, and its calibration is theirs)."""
        return {}

    def extra_runs(self) -> dict[int, int]:
        """Job id -> runs beyond the first in the current workload, for executors that can run a
        job twice (duplicates)."""
        return {}

    async def node_figures(self) -> list[dict[str, Any]]:
        """For executors whose work runs on nodes that measure themselves (Celery): each node's
        facts and its CPU seconds and peak RSS since the workload began. Called after it ends."""
        return []

    @abstractmethod
    def capacity(self, cores: int) -> Capacity:
        """Upper limits of this executor as configured (after ``start``) on ``cores`` cores."""

    def user_job_figures(self) -> dict[str, Any] | None:
        """User jobs only: per worker its import and setup time, which form ran where, result sizes."""
        return self.tally.figures() if self.user_kinds else None

    def describe(self) -> dict[str, Any]:
        """Settings worth recording in the result."""
        return {"concurrency": self.config.concurrency}
