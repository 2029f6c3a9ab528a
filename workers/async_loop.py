"""``async``: every job runs as a coroutine on the coordinator's uvloop event loop.

I/O waits natively (aiohttp session reuse, redis.asyncio); CPU phases run inline on purpose, so a
CPU-heavy job blocks the loop and the report's loop-lag figure shows it.
"""

from __future__ import annotations

import time
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.clients import AsyncClients
from workers.jobs import Job, run_async


class AsyncExecutor(Executor):
    name = "async"
    summary = "coroutines on one uvloop event loop; CPU work blocks the loop"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._clients = AsyncClients(pool_size=config.concurrency)  # opens connections on first use

    async def run(self, job: Job) -> JobReport:
        cpu_began = time.thread_time()  # other coroutines' CPU too while the job awaits I/O
        service_s = await run_async(job, self._clients)
        return JobReport(service_s, "loop", time.thread_time() - cpu_began)

    async def stop(self) -> None:
        await self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)  # one thread runs everything

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "loop": "uvloop"}
