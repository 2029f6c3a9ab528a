"""An in-process stub executor for the fast tier: the coordinator's accounting, timeouts, halts,
grace period and duplicates, exercised in milliseconds without any pool, broker or process.

It is plugged in through the executor registry (``workers.registry.registered``), so the
coordinator drives it exactly as it drives a real executor and never knows which it has. Each job
kind stands for one behaviour, with its service time taken from the spec:

    sleep, http, redis, mixed   wait ``io_ms`` (service time under the test's control)
    cpu, hash, noop             return at once
    fail                        raise ``JobFailed`` (a failure the worker reported)
    hang                        wait until cancelled (the coordinator's timeout or stop)
    crash                       raise ``ServiceError`` (the executor lost a service it needs)

``StubPlan`` adds what kinds cannot say: job ids whose run escapes the coordinator's accounting
(``vanish``: they end up ``lost``), runs beyond the first that the executor reports
(``extra_runs``: duplicates), a failing or slow start, a signal the stub sends its own process
while it starts or stops (as a user's Ctrl-C would land there), and batches whose ``run_batch`` raises an error of
the executor's own (``batch_raises``, by the batch's first job id) or hang (``batch_hangs``), batch
reports naming one runner (``one_runner``), CPU times for cpu jobs (``cpu_s``), and a limit on
jobs in flight until a kind's first job has ended (``probe``, as the batching executors measure a
kind's cost). The stub
records what it saw -- the peak number of jobs inside ``run`` at once, which jobs were cancelled --
so tests can check the coordinator against an independent count -- and whether its start was
cancelled, and the type of the event loop it ran on.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.bulk import Batch, BatchReport
from workers.errors import JobFailed, ServiceError
from workers.jobs import Job

if TYPE_CHECKING:
    from runner.engine.results import RunResult
    from runner.engine.spec import WorkloadSpec

NAME = "stub"
TARGET = "tests.stub_executor:StubExecutor"
FAILED_ON_PURPOSE = "stub: failed on purpose"
SERVICE_LOST = "stub: lost its service"


class Vanished(BaseException):  # not an error the coordinator may catch and account
    """Escapes the coordinator's ``except Exception``: the job is never given a final state."""


@dataclass(frozen=True)
class StubPlan:
    vanish: frozenset[int] = frozenset()
    extra_runs: dict[int, int] = field(default_factory=dict)
    fail_start: bool = False
    start_s: float = 0.0  # how long start takes (cancellable)
    signal_in_start: int = 0  # a signal it sends its own process as it starts (0: none)
    signal_in_stop: int = 0  # the same as it stops
    raise_for: dict[int, Exception] = field(default_factory=dict)  # job id -> what its run raises
    batch: int = 1  # jobs per batch it takes from the coordinator (``run_batch``: the base one)
    batch_raises: dict[int, Exception] = field(default_factory=dict)  # first id -> the executor's own error
    batch_hangs: frozenset[int] = frozenset()  # first ids of batches that hang as a whole
    one_runner: bool = False  # a batch's report names one runner for all its jobs (as a pool process does)
    cpu_s: float | None = None  # the CPU time it reports for each cpu job (the calibration check)
    nodes: tuple[str, ...] = ()  # names of nodes that describe themselves, as Celery nodes do
    probe: int = 0  # jobs of a kind it allows in flight until one of that kind has ended (``probe_limit``)


class StubExecutor(Executor):
    name = NAME
    summary = "in-process stub for the fast tests"
    plan: ClassVar[StubPlan] = StubPlan()
    made: ClassVar[list[StubExecutor]] = []  # every instance, newest last, for the test to inspect
    external_redis: ClassVar[bool | None] = None  # what the last ``validate`` was told

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        cls.external_redis = external_redis

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self.script = type(self).plan  # what this instance was told to do
        self.started = self.stopped = self.start_cancelled = False
        self.loop_type: type[asyncio.AbstractEventLoop] | None = None  # the loop it was started on
        self.workloads = 0
        self.in_run = 0
        self.peak_in_run = 0
        self.runs: Counter[int] = Counter()
        self.cancelled: list[int] = []
        self.first_kinds: list[str] = []  # per workload, the kind of its job 0: shows the run order
        self.jobs: list[Job] = []  # every job handed to run, in order
        self.batches: list[int] = []  # the size of every batch handed to run_batch
        self.ended_kinds: set[str] = set()  # kinds one job of which has ended: their cost is known
        self.peak_probing = 0  # the most jobs inside ``run`` at once before their kind's cost was known
        type(self).made.append(self)

    async def start(self) -> None:
        self.loop_type = type(asyncio.get_running_loop())
        if self.script.signal_in_start:
            os.kill(os.getpid(), self.script.signal_in_start)
        if self.script.start_s:
            try:
                await asyncio.sleep(self.script.start_s)
            except asyncio.CancelledError:
                self.start_cancelled = True
                raise
        if self.script.fail_start:
            raise ServiceError("stub: cannot start")
        self.started = True

    async def begin_workload(self) -> None:
        self.workloads += 1
        self.runs.clear()

    async def run(self, job: Job) -> JobReport:
        self.in_run += 1
        self.peak_in_run = max(self.peak_in_run, self.in_run)
        if job.kind not in self.ended_kinds:
            self.peak_probing = max(self.peak_probing, self.in_run)
        self.runs[job.id] += 1
        self.jobs.append(job)
        if job.id == 0:
            self.first_kinds.append(job.kind)
        try:
            return await self._behave(job)
        except asyncio.CancelledError:
            self.cancelled.append(job.id)
            raise
        finally:
            self.in_run -= 1
            self.ended_kinds.add(job.kind)

    async def _behave(self, job: Job) -> JobReport:
        if job.id in self.script.vanish:
            raise Vanished(job.id)
        if job.id in self.script.raise_for:
            raise self.script.raise_for[job.id]
        if job.kind == "fail":
            raise JobFailed(FAILED_ON_PURPOSE)
        if job.kind == "crash":
            raise ServiceError(SERVICE_LOST)
        if job.kind == "hang":
            await asyncio.Event().wait()
        if job.kind in ("sleep", "http", "redis", "mixed") and job.io_ms > 0:
            await asyncio.sleep(job.io_ms / 1000)
        cpu = self.script.cpu_s if job.kind == "cpu" else None
        return JobReport(job.io_ms / 1000, f"stub-{job.id % max(1, self.config.workers)}", cpu)

    def batch_size(self, kind: str) -> int:
        return self.script.batch

    def probe_limit(self, kind: str) -> int:
        return self.script.probe if kind not in self.ended_kinds else 0

    async def run_batch(self, batch: Batch) -> BatchReport:
        self.batches.append(batch.size)
        if batch.first_id in self.script.batch_raises:  # not a job's failure: the batch's own
            raise self.script.batch_raises[batch.first_id]
        if batch.first_id in self.script.batch_hangs:
            await asyncio.Event().wait()
        report = await super().run_batch(batch)
        return report._replace(workers=["stub-batch"]) if self.script.one_runner else report

    async def stop(self) -> None:
        if self.script.signal_in_stop:
            os.kill(os.getpid(), self.script.signal_in_stop)
            await asyncio.sleep(0)
        self.stopped = True

    async def node_figures(self) -> list[dict[str, Any]]:
        facts = {"hostname": "h", "cpus": 1.0, "pool": "stub", "concurrency": 1, "python": "3", "cpu_model": "m"}
        return [{"name": name, **facts, "cpu_s": 0.5, "peak_rss_mb": 10.0} for name in self.script.nodes]

    def extra_runs(self) -> dict[int, int]:
        return dict(self.script.extra_runs)

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "stub": True}


def measured_on_stub(spec: WorkloadSpec, instrument: bool = True) -> RunResult:
    """``measure`` on a started stub, as ``run_mode`` calls it but with ``instrument`` chosen
    (``benchmarks/overhead.py``'s uninstrumented runs); returns the ``RunResult``."""
    from runner.engine.coordinator import executor_config, measure
    from runner.engine.services import LocalServices
    from tests.fast.conftest import CALIBRATION

    async def run() -> RunResult:
        with LocalServices() as services:
            executor = StubExecutor(executor_config(spec), services)
            async with executor:
                return await measure(executor, spec, CALIBRATION, services, instrument=instrument)

    return asyncio.run(run())
