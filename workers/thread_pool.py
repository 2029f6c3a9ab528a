"""``thread``: a pool of ``--concurrency`` OS threads with pooled sync clients.

Threads overlap I/O well; pure-Python CPU work serialises on the GIL, GIL-releasing work
(``hash``) can use several cores.

A thread cannot be killed, so a job that hangs past its timeout keeps its thread. The pool writes
such a thread off -- it starts a replacement, and the stuck one retires if its job ever returns --
so a hung job costs one thread, never the pool's capacity. The threads are daemons: a stuck one
never holds up the coordinator's exit (``concurrent.futures.ThreadPoolExecutor`` joins its threads
at exit, which a hung job would block forever).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.clients import SyncClients
from workers.errors import JobFailed
from workers.jobs import Job, run_sync

_Work = tuple[Future[Any], Callable[[], Any]]


class _DaemonThreads:
    def __init__(self, size: int, prefix: str) -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._prefix = prefix
        self._started = 0
        self._alive = 0
        self._surplus = 0  # threads to retire: one per stuck thread that was replaced
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            name = f"{self._prefix}_{self._started}"
            self._started += 1
            self._alive += 1
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # delivered to the waiting coroutine, never lost
                    future.set_exception(exc)
            with self._lock:
                if self._surplus:
                    self._surplus -= 1
                    self._alive -= 1
                    return
        with self._lock:
            self._alive -= 1

    def replace_stuck(self) -> None:
        with self._lock:
            self._surplus += 1
        self._spawn()

    def shutdown(self) -> None:
        """Cancel queued work and let idle threads end; stuck ones end with their job or the process."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        with self._lock:
            alive = self._alive
        for _ in range(alive):
            self._queue.put(None)


class ThreadExecutor(Executor):
    name = "thread"
    summary = "a pool of OS threads sharing one interpreter (and its GIL)"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._clients = SyncClients(pool_size=config.concurrency)  # opens connections on first use
        self._pool: _DaemonThreads | None = None

    async def start(self) -> None:
        self._pool = _DaemonThreads(self.config.concurrency, prefix="runner-job")

    def _run(self, job: Job) -> JobReport:
        try:
            # own_process=False: a crash job must not kill the coordinator, whose threads these are
            return JobReport(run_sync(job, self._clients, own_process=False), threading.current_thread().name)
        except Exception:
            raise
        except BaseException as exc:  # SystemExit or KeyboardInterrupt raised by a job: its failure only
            raise JobFailed(f"{type(exc).__name__} raised by the job") from exc

    async def run(self, job: Job) -> JobReport:
        pool = self._pool
        assert pool is not None, "run before start"
        future = pool.submit(lambda: self._run(job))
        try:
            report: JobReport = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel() and not future.done():  # timed out mid-job: its thread is stuck
                pool.replace_stuck()
            raise
        return report

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, min(self.config.concurrency, cores))

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "threads": self.config.concurrency}
