"""``hybrid``: the advice everyone gives, as an executor -- I/O on the event loop, CPU in processes.

Each job's I/O phase runs as a coroutine on the coordinator's uvloop loop (aiohttp, redis.asyncio,
asyncio.sleep); its CPU phase, if any, goes to a process pool through ``run_in_executor``, so the
loop never blocks on CPU work. ``mixed`` jobs -- an I/O phase then a CPU phase -- are its home
ground: their waits overlap on the loop while their CPU work uses every core.

The CPU side is the process executor itself, so it inherits its fault handling (a dead pool
process is replaced and its job retried once; a job past its timeout gets its process killed).
"""

from __future__ import annotations

import time
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.calibration import Calibration
from workers.clients import AsyncClients
from workers.jobs import IO_KINDS, Job, io_phase_async
from workers.process_pool import ProcessExecutor


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

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._cpu = ProcessExecutor(config, services)
        self._clients = AsyncClients(pool_size=config.concurrency)  # opens connections on first use

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        ProcessExecutor.validate(config, external_redis)

    async def start(self) -> None:
        await self._cpu.start()

    async def begin_workload(self) -> None:
        await self._cpu.begin_workload()

    async def run(self, job: Job) -> JobReport:
        started = time.perf_counter()
        if job.kind in IO_KINDS:
            await io_phase_async(job, self._clients)
        cpu = cpu_part(job)
        if cpu is None:
            return JobReport(time.perf_counter() - started, "loop")
        report = await self._cpu.run(cpu)
        return JobReport(time.perf_counter() - started, report.worker, report.cpu_s)

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
