"""``process``: a ProcessPoolExecutor with ``--workers`` processes (default: CPU count).

Each process has its own interpreter and GIL, so CPU work scales with cores; every job pays for
pickling and a trip through the pool's queues. Processes are started with ``spawn`` so they never
inherit the coordinator's event loop or threads.

Faults. When a pool process dies (a crash, the OOM killer) the pool breaks (``BrokenProcessPool``)
and every job in it fails; this executor builds a new pool and sends those jobs again. A shared
table says which job each process was running, and survivors mark themselves when the broken pool
terminates them, so the job whose process died on its own is known: it is retried once, then
fails with "worker died"; jobs that were merely in the pool at the time are retried freely. A job
that outlives its timeout is written off by killing the process running it (nothing else can stop
it), which the same mechanism turns into a fresh pool.

Small jobs go in batches: once results show that jobs of a kind cost far less than a trip through
the pool (tens of microseconds), the jobs of that kind that arrive in one turn of the event loop go
to a process together (about 2 ms of work, at most 256 jobs; ``--batch`` fixes the size), while at
most two batches per process are out. Each job keeps its own ticket, result, error and retries.

User jobs: the initializer imports them and runs ``--setup`` before timing (times reported by the
warm-up); the sync form runs, else the coroutine in the process's own loop; results are pickled,
measured, dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import psutil

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.batching import Outbox
from workers.bulk import Batch, BatchReport
from workers.calibration import Calibration, all_measured, measured
from workers.errors import InputError, JobFailed, ServiceError
from workers.jobs import WORKER_DIED, Job
from workers.process_bulk import WholeBatches
from workers.process_child import COLS, Outcome, init_process, run_batch, run_compact, run_wire, warm_up
from workers.user_jobs import SetupFailed

_FREE_RETRIES = 5  # bound on retries of a job that was only a bystander of other processes' deaths
_BATCH_BUDGET_S = 0.002  # a batch should take about this long in a pool process
_SHUTDOWN_GRACE_S = 5.0  # for a broken pool's manager to reap its processes before they are killed
_WARM_UP_ROUNDS = 20  # more rounds of warm-ups until every started process has answered one


async def _shut_down(pool: ProcessPoolExecutor, grace_s: float = _SHUTDOWN_GRACE_S) -> None:
    """Shut a broken pool down. Its manager terminates the survivors and joins them; a process it
    spawned while breaking (a submit racing the break) never got that signal and waits for work
    forever, and the join with it: after ``grace_s``, every process of the old pool is killed."""
    shutdown = asyncio.ensure_future(asyncio.to_thread(pool.shutdown, wait=True))
    done, _ = await asyncio.wait({shutdown}, timeout=grace_s)
    if not done:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
    await shutdown


class _Queued:
    """A job waiting in the outbox to go to a pool process in a batch."""

    __slots__ = ("batch_future", "order", "sent", "ticket", "waiter", "wire")

    def __init__(self, wire: list[Any], ticket: int, waiter: asyncio.Future[Outcome]) -> None:
        self.wire, self.ticket, self.waiter = wire, ticket, waiter
        self.order = int(wire[0])  # the job id: first come, first sent
        self.sent = False
        self.batch_future: Future[Any] | None = None


class ProcessExecutor(WholeBatches, Executor):
    name = "process"
    summary = "a pool of worker processes, one interpreter and GIL each"
    compact_task = staticmethod(run_compact)
    serialises = "pickle"

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        if config.workers < 1:
            raise InputError("--workers: the process pool needs at least 1 worker process")

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._pids: set[int] = set()
        self._tickets = itertools.count(1)
        self._generation = 0
        self._blamed: dict[int, set[int]] = {}  # generation -> tickets whose process died on its own
        self._abandoned: set[int] = set()  # tickets timed out before they started: kill when they do
        self._rebuild_lock = asyncio.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._table: Any = []
        self._rate_rows: list[tuple[Any, Any]] = []  # (table, rates) of the pools whose processes measured
        self._measuring: Any = None  # the current pool's rates array while its processes measure
        self._watchdog: asyncio.Task[None] | None = None
        self._tasks_sent = self._jobs_sent = 0  # pool submissions, and jobs in them: shows batching
        self._outbox: Outbox[_Queued] = Outbox(
            self._send_batch, fixed=self.batch, budget_s=_BATCH_BUDGET_S, limit=lambda: 2 * self.config.workers
        )

    async def start(self) -> None:
        self._pool, self._table = self._new_pool()
        try:
            await self._warm_up()
        except BrokenProcessPool:  # a process died while starting (killed from outside): once more
            await self._rebuild(self._generation)
            await self._warm_up()
        self._watchdog = asyncio.create_task(self._watch_abandoned(), name="process-watchdog")

    async def _warm_up(self) -> None:
        """Start every process now, before timing starts, and hear from each one: its pid, and its
        import and setup (one that failed fails the start). A process ready early can take two
        warm-ups while another still starts, so rounds go on until every started one answered."""
        heard: set[int] = set()
        await self._warm_round(heard)
        await all_measured(self._measuring)  # so that no process calibrates while timed
        self._measuring = None
        for _ in range(_WARM_UP_ROUNDS):  # a broken pool raises here, as in the first round
            started = self._table_pids()
            if len(started) >= self.config.workers and started <= heard:
                break
            await self._warm_round(heard)
        self._pids |= heard | self._table_pids()

    async def _warm_round(self, heard: set[int]) -> None:
        loop = asyncio.get_running_loop()
        warm = [loop.run_in_executor(self._pool, warm_up, 0.05) for _ in range(self.config.workers)]
        for pid, figures in await asyncio.gather(*warm):
            if isinstance(figures, str):
                raise SetupFailed(figures)
            if pid not in heard:
                heard.add(pid)
                self.tally.note_worker(f"pid-{pid}", figures)

    def _new_pool(self) -> tuple[ProcessPoolExecutor, Any]:
        ctx = multiprocessing.get_context("spawn")
        table = ctx.Array("q", COLS * self.config.workers, lock=False)
        measure = not self._rate_rows or self._measuring is not None  # until one pool has measured
        rates = ctx.Array("d", 2 * self.config.workers, lock=False) if measure else None  # per process: spin, hash
        pool = ProcessPoolExecutor(
            max_workers=self.config.workers,
            mp_context=ctx,
            initializer=init_process,
            initargs=(table, ctx.Value("i", 0), self.config.user_jobs, rates),
        )
        if rates is not None:
            self._rate_rows.append((table, rates))
            self._measuring = rates
        return pool, table

    async def begin_workload(self) -> None:
        self._tasks_sent = self._jobs_sent = 0  # jobs per task is a figure of each run

    async def run(self, job: Job) -> JobReport:
        wire, blamed, bystander = job.to_wire(), 0, 0
        while True:
            ticket, generation = next(self._tickets), self._generation
            future: Future[Any] | None = None
            queued: _Queued | None = None
            try:
                if self._outbox.batch_size(job.kind) > 1:
                    queued = _Queued(wire, ticket, asyncio.get_running_loop().create_future())
                    self._outbox.put(job.kind, queued)
                    service_s, pid, extra, cpu_s = await queued.waiter
                else:
                    future = self._started_pool().submit(run_wire, wire, ticket)
                    self._tasks_sent, self._jobs_sent = self._tasks_sent + 1, self._jobs_sent + 1
                    service_s, pid, extra, cpu_s = await asyncio.wrap_future(future)
            except RuntimeError as exc:  # BrokenProcessPool, or a submit to a pool already replaced
                if not isinstance(exc, BrokenProcessPool) and generation == self._generation:
                    raise
                if ticket in await self._rebuild(generation):
                    blamed += 1
                else:
                    bystander += 1
                if blamed > 1 or bystander > _FREE_RETRIES:
                    raise JobFailed(WORKER_DIED) from exc
                continue
            except asyncio.CancelledError:
                if queued is not None and not queued.sent:
                    self._outbox.remove(job.kind, queued)  # never left the coordinator
                elif queued is not None and queued.batch_future is not None:
                    self._abandon(ticket, queued.batch_future)  # batch-mates are retried if it is killed
                elif future is not None and not future.cancel():  # running, or queued in the pool
                    self._abandon(ticket, future)
                raise
            self._pids.add(pid)
            self._outbox.note_cost(job.kind, service_s)
            worker = f"pid-{pid}"
            if extra is not None:  # a user job's (form, result bytes, its process's setup if not yet told)
                self.tally.note(job.kind, extra[0], worker, extra[1])
                if extra[2]:
                    self.tally.note_worker(worker, extra[2])
            return JobReport(service_s, worker, cpu_s)

    async def _one_by_one(self, batch: Batch) -> BatchReport:
        return await Executor.run_batch(self, batch)  # each job through run, with its retries

    def _started_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            raise RuntimeError("the process executor is not started")
        return self._pool

    def _send_batch(self, chunk: list[_Queued]) -> bool:
        """The outbox's ``send``: one batch to a pool process; always taken."""
        for queued in chunk:
            queued.sent = True
        future: Future[Any]
        try:
            future = self._started_pool().submit(run_batch, [q.wire for q in chunk], [q.ticket for q in chunk])
            self._tasks_sent, self._jobs_sent = self._tasks_sent + 1, self._jobs_sent + len(chunk)
        except RuntimeError as exc:  # the pool broke or was replaced: each job retries on its own
            future = Future()
            future.set_exception(exc)
        for queued in chunk:
            queued.batch_future = future
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda done: loop.call_soon_threadsafe(self._batch_done, done, chunk))
        return True

    def _batch_done(self, future: Future[Any], chunk: list[_Queued]) -> None:
        self._outbox.task_done()
        error = future.exception()
        outcomes = future.result() if error is None else [error] * len(chunk)
        for queued, outcome in zip(chunk, outcomes, strict=True):
            if queued.waiter.done():
                continue  # timed out meanwhile
            if isinstance(outcome, BaseException):
                queued.waiter.set_exception(outcome)
            else:
                queued.waiter.set_result(outcome)

    async def _rebuild(self, generation: int) -> set[int]:
        """Replace the broken pool (once per break); return the tickets whose process died on its own."""
        async with self._rebuild_lock:
            if generation == self._generation:
                old, table = self._started_pool(), self._table
                try:
                    self._pool, self._table = self._new_pool()
                except OSError as exc:
                    raise ServiceError(f"cannot start a new process pool after a worker died: {exc}") from exc
                self._generation += 1
                await _shut_down(old)  # survivors have been terminated and reaped
                rows = [table[i : i + COLS] for i in range(0, len(table), COLS)]
                self._blamed[generation] = {ticket for _, ticket, terminated in rows if ticket and not terminated}
            return self._blamed[generation]

    def _abandon(self, ticket: int, future: Future[Any]) -> None:
        """A job's coordinator gave up on it; its process is stuck in it, or will be: kill that process."""
        if not self._kill_running(ticket):
            self._abandoned.add(ticket)
            future.add_done_callback(lambda _: self._abandoned.discard(ticket))

    def _kill_running(self, ticket: int) -> bool:
        table = self._table
        for i in range(0, len(table), COLS):
            if table[i + 1] == ticket and table[i]:
                _kill(int(table[i]))
                return True
        return False

    async def _watch_abandoned(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            for ticket in list(self._abandoned):
                if self._kill_running(ticket):
                    self._abandoned.discard(ticket)

    async def stop(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Jobs that outlived --timeout may still be running: give them a moment, then kill.
        pool.shutdown(wait=False, cancel_futures=True)
        procs = [p for p in (_process(pid) for pid in self._pids | self._table_pids()) if p is not None]
        _, alive = await asyncio.to_thread(psutil.wait_procs, procs, 2.0)
        for proc in alive:
            proc.kill()
        await asyncio.to_thread(psutil.wait_procs, alive, 2.0)

    def _table_pids(self) -> set[int]:
        return {int(self._table[i]) for i in range(0, len(self._table), COLS) if self._table[i]}

    def worker_pids(self) -> list[int]:
        return sorted(self._pids)

    def worker_calibrations(self) -> dict[str, Calibration]:
        return {f"pid-{pid}": rate for pid, rate in measured(self._rate_rows, COLS)}

    async def call(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` in a pool process (``offload`` in hybrid mode): the result, or its error."""
        return await asyncio.wrap_future(self._started_pool().submit(fn, *args))

    def capacity(self, cores: int) -> Capacity:
        usable = min(self.config.workers, cores)
        return Capacity(self.config.workers, usable, usable)

    def describe(self) -> dict[str, Any]:
        return {
            "concurrency": self.config.concurrency,
            "workers": self.config.workers,
            "start": "spawn",
            "batch": self.batch or "auto",
            "batching": {
                "batch": self.batch or "auto",
                "tasks_sent": self._tasks_sent,
                "jobs_per_task": round(self._jobs_sent / max(1, self._tasks_sent), 2),
            },
        }


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _process(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    return proc if proc.ppid() == os.getpid() else None  # only our own children, never a recycled pid
