"""``hybrid``: the advice everyone gives, as an executor -- I/O on the event loop, CPU in processes.

Each job's I/O phase runs as a coroutine on the coordinator's uvloop loop (aiohttp, redis.asyncio,
asyncio.sleep); its CPU phase, if any, goes to a process pool through ``run_in_executor``, so the
loop never blocks on CPU work. ``mixed`` jobs -- an I/O phase then a CPU phase -- are its home
ground: their waits overlap on the loop while their CPU work uses every core.

The CPU side is the process executor itself, so it inherits its fault handling (a dead pool
process is replaced and its job retried once; a job past its timeout gets its process killed).

User jobs: the async form is awaited on the loop, and ``offload(fn, *args)`` inside it runs in the
process pool -- the user's own "await the I/O, offload the CPU". A sync-only function goes whole to
the pool, like a CPU kind. Imports and ``--setup`` run in the coordinator (for the loop side) and
in every pool process.
"""

from __future__ import annotations

import time
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.calibration import Calibration
from workers.clients import AsyncClients
from workers.jobs import IO_KINDS, Job, io_phase_async
from workers.offload import offloading_to
from workers.process_pool import ProcessExecutor
from workers.user_calls import Caller
from workers.user_jobs import prepare


def cpu_part(job: Job) -> Job | None:
    """The job that does only ``job``'s CPU phase (None if it has none). Kinds without an I/O
    phase go whole; a mixed job's CPU phase is a cpu job of the same size."""
    if job.kind == "mixed":
        return job._replace(kind="cpu", io_ms=0.0)
    if job.kind in IO_KINDS:
        return None
    return job


class HybridExecutor(Executor):
    name = "hybrid"
    summary = "I/O as coroutines on one uvloop loop, CPU phases in a process pool"
    serialises = "pickle"  # what goes to the pool; results of jobs awaited on the loop stay there

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._cpu = ProcessExecutor(config, services)
        self._clients = AsyncClients(pool_size=config.concurrency)  # opens connections on first use
        self._cpu.tally = self.tally  # one record of user jobs, wherever they ran
        self._user: Caller | None = None
        self._on_loop: frozenset[str] = frozenset()  # user kinds with an async form: awaited here

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        ProcessExecutor.validate(config, external_redis)

    async def start(self) -> None:
        if self.config.user_jobs is not None:
            jobs, figures = prepare(self.config.user_jobs)
            self._user = Caller(jobs, "none")
            self._on_loop = frozenset(kind for kind, job in jobs.items() if job.async_ is not None)
            self.tally.note_worker("loop", figures)
        await self._cpu.start()

    async def begin_workload(self) -> None:
        await self._cpu.begin_workload()

    async def run(self, job: Job) -> JobReport:
        if job.kind in self._on_loop:
            return await self._run_on_loop(job)
        started = time.perf_counter()
        if job.kind in IO_KINDS:
            await io_phase_async(job, self._clients)
        cpu = cpu_part(job)
        if cpu is None:
            return JobReport(time.perf_counter() - started, "loop")
        report = await self._cpu.run(cpu)
        return JobReport(time.perf_counter() - started, report.worker, report.cpu_s)

    async def _run_on_loop(self, job: Job) -> JobReport:
        assert self._user is not None
        with offloading_to(self._cpu.call):
            service_s, form, nbytes = await self._user.call_async(job.kind, job.target, job.payload)
        self.tally.note(job.kind, form, "loop", nbytes)
        return JobReport(service_s, "loop")

    async def stop(self) -> None:
        try:
            await self._clients.close()
        finally:
            await self._cpu.stop()

    def worker_pids(self) -> list[int]:
        return self._cpu.worker_pids()

    def worker_calibrations(self) -> dict[str, Calibration]:
        return self._cpu.worker_calibrations()

    def capacity(self, cores: int) -> Capacity:
        cpu = self._cpu.capacity(cores)
        return Capacity(self.config.concurrency, cpu.gil_cores, cpu.free_cores)

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "loop": "uvloop", "cpu_pool": self._cpu.describe()}
