"""``thread``: a ThreadPoolExecutor with ``--concurrency`` threads and pooled sync clients.

Threads overlap I/O well; pure-Python CPU work serialises on the GIL, GIL-releasing work
(``hash``) can use several cores.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workers.base import Capacity, Executor, JobReport
from workers.clients import SyncClients
from workers.jobs import Job, run_sync


class ThreadExecutor(Executor):
    name = "thread"
    summary = "a pool of OS threads sharing one interpreter (and its GIL)"

    async def start(self) -> None:
        self._clients = SyncClients(pool_size=self.config.concurrency)
        self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="runner-job")

    def _run(self, job: Job) -> JobReport:
        return JobReport(run_sync(job, self._clients), threading.current_thread().name)

    async def run(self, job: Job) -> JobReport:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, job)

    async def stop(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            # Jobs that timed out may still be running; don't wait for them.
            pool.shutdown(wait=False, cancel_futures=True)
            self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, min(self.config.concurrency, cores))

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "threads": self.config.concurrency}
