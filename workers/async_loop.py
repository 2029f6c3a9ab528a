"""``async``: every job runs as a coroutine on the coordinator's uvloop event loop.

I/O waits natively (aiohttp session reuse, redis.asyncio); CPU phases run inline on purpose, so a
CPU-heavy job blocks the loop and the report's loop-lag figure shows it.

User jobs: the async form is awaited on the loop; a sync-only function runs inline, blocking the
loop as it would in any asyncio program; ``offload`` runs inline too. Module import and
``--setup`` run once, in the coordinator's process, when the executor starts.
"""

from __future__ import annotations

from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.clients import AsyncClients
from workers.jobs import Job, run_async
from workers.user_calls import Caller
from workers.user_jobs import prepare


class AsyncExecutor(Executor):
    name = "async"
    summary = "coroutines on one uvloop event loop; CPU work blocks the loop"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._clients = AsyncClients(pool_size=config.concurrency)  # opens connections on first use
        self._user: Caller | None = None

    async def start(self) -> None:
        if self.config.user_jobs is not None:
            jobs, figures = prepare(self.config.user_jobs)
            self._user = Caller(jobs, self.serialises)
            self.tally.note_worker("loop", figures)

    async def run(self, job: Job) -> JobReport:
        if job.kind in self.user_kinds:
            return await self._run_user(job)
        return JobReport(await run_async(job, self._clients), "loop")

    async def _run_user(self, job: Job) -> JobReport:
        assert self._user is not None, "run before start"
        service_s, form, nbytes = await self._user.call_async(job.kind, job.target, job.payload)
        self.tally.note(job.kind, form, "loop", nbytes)
        return JobReport(service_s, "loop")

    async def stop(self) -> None:
        await self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)  # one thread runs everything

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "loop": "uvloop"}
