"""``process``: a ProcessPoolExecutor with ``--workers`` processes (default: CPU count).

Each process has its own interpreter and GIL, so CPU work scales with cores; every job pays for
pickling and a trip through the pool's queues. Processes are started with ``spawn`` so they never
inherit the coordinator's event loop or threads.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import psutil

from runner.errors import InputError
from workers.base import Capacity, Executor, ExecutorConfig, JobReport
from workers.clients import SyncClients
from workers.jobs import Job, run_sync

_clients: SyncClients | None = None  # one per pool process, made by the initializer


def _init_process() -> None:
    global _clients
    _clients = SyncClients(pool_size=4)


def _run_wire(wire: list[Any]) -> tuple[float, int]:
    assert _clients is not None, "pool process started without its initializer"
    return run_sync(Job.from_wire(wire), _clients), os.getpid()


def _warm_up(delay_s: float) -> int:
    time.sleep(delay_s)  # long enough that each warm-up task lands on its own process
    return os.getpid()


class ProcessExecutor(Executor):
    name = "process"
    summary = "a pool of worker processes, one interpreter and GIL each"

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        if config.workers < 1:
            raise InputError("--workers: the process pool needs at least 1 worker process")

    async def start(self) -> None:
        self._pids: set[int] = set()
        self._pool = ProcessPoolExecutor(
            max_workers=self.config.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_process,
        )
        loop = asyncio.get_running_loop()
        warm = [loop.run_in_executor(self._pool, _warm_up, 0.05) for _ in range(self.config.workers)]
        self._pids.update(await asyncio.gather(*warm))

    async def run(self, job: Job) -> JobReport:
        loop = asyncio.get_running_loop()
        service_s, pid = await loop.run_in_executor(self._pool, _run_wire, job.to_wire())
        self._pids.add(pid)
        return JobReport(service_s, f"pid-{pid}")

    async def stop(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is None:
            return
        # Jobs that outlived --timeout may still be running: give them a moment, then kill.
        pool.shutdown(wait=False, cancel_futures=True)
        procs = [p for p in (_process(pid) for pid in self._pids) if p is not None]
        _, alive = await asyncio.to_thread(psutil.wait_procs, procs, 2.0)
        for proc in alive:
            proc.kill()
        await asyncio.to_thread(psutil.wait_procs, alive, 2.0)

    def worker_pids(self) -> list[int]:
        return sorted(self._pids)

    def capacity(self, cores: int) -> Capacity:
        usable = min(self.config.workers, cores)
        return Capacity(self.config.workers, usable, usable)

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "workers": self.config.workers, "start": "spawn"}


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
