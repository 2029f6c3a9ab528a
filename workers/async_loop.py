"""``async``: every job runs as a coroutine on the coordinator's uvloop event loop.

I/O waits natively (aiohttp session reuse, redis.asyncio); CPU phases run inline on purpose, so a
CPU-heavy job blocks the loop and the report's loop-lag figure shows it.

User jobs: the async form is awaited on the loop; a sync-only function runs inline, blocking the
loop as it would in any asyncio program; ``offload`` runs inline too. Module import and
``--setup`` run once, in the coordinator's process, when the executor starts.
"""

from __future__ import annotations

import time
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.clients import AsyncClients
from workers.jobs import CPU_PHASE_KINDS, IO_KINDS, Job, cpu_phase, crash, io_phase_async, run_async
from workers.user_calls import Caller
from workers.user_jobs import prepare

# Kinds whose CPU time the coordinator checks against --cpu-ms after the run. Only these read the
# thread's CPU clock: ``time.thread_time`` is a system call (2 us on a VM), twice a no-op job's cost.
_CPU_TIMED = frozenset({"cpu", "hash"})
_NOTHING = frozenset({"noop", "unserializable"})  # nothing to run on the loop (and no result to ship)
_clock = time.perf_counter
_report = tuple.__new__  # a JobReport without its constructor's Python frame


class AsyncExecutor(Executor):
    name = "async"
    summary = "coroutines on one uvloop event loop; CPU work blocks the loop"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._clients = AsyncClients(pool_size=config.concurrency)  # opens connections on first use
        self._user: Caller | None = None
        self._done: dict[str, list[int]] = {}  # kind -> its record in the tally

    async def start(self) -> None:
        if self.config.user_jobs is not None:
            jobs, figures = prepare(self.config.user_jobs)
            self._user = Caller(jobs, self.serialises)
            self.tally.note_worker("loop", figures)
            # The form a kind runs in here is known now (the coroutine if there is one): each
            # job then only adds one to its record.
            forms = {kind: "async" if job.async_ is not None else "sync" for kind, job in jobs.items()}
            self._done = {kind: self.tally.record(kind, form, "loop") for kind, form in forms.items()}

    async def run(self, job: Job) -> JobReport:
        # What ``run_async`` does, inline: for a job that does nothing (issue 15) each frame, each
        # named-tuple constructor and each clock read is a visible share of its cost.
        kind = job.kind
        if kind in _NOTHING:
            started = _clock()
            return _report(JobReport, (_clock() - started, "loop", None))
        if kind in self.user_kinds:
            assert self._user is not None, "run before start"
            service_s, _, _ = await self._user.call_async(kind, job.target, job.payload)
            self._done[kind][0] += 1
            return _report(JobReport, (service_s, "loop", None))
        if kind in _CPU_TIMED:
            cpu_began = time.thread_time()  # no I/O phase, so no other coroutine's CPU in it
            service_s = await run_async(job, self._clients)
            return _report(JobReport, (service_s, "loop", time.thread_time() - cpu_began))
        started = _clock()
        if kind in IO_KINDS:
            await io_phase_async(job, self._clients)
        elif kind == "crash":
            crash(own_process=False)  # the loop is the coordinator's
        if kind in CPU_PHASE_KINDS:
            cpu_phase(job)
        return _report(JobReport, (_clock() - started, "loop", None))

    async def stop(self) -> None:
        await self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)  # one thread runs everything

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "loop": "uvloop"}
