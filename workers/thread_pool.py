"""``thread``: a pool of ``--concurrency`` OS threads with pooled sync clients.

Threads overlap I/O well; pure-Python CPU work serialises on the GIL, GIL-releasing work
(``hash``) can use several cores.

A thread cannot be killed, so a job that hangs past its timeout keeps its thread. The pool writes
such a thread off -- it starts a replacement, and the stuck one retires if its job ever returns --
so a hung job costs one thread, never the pool's capacity. The threads are daemons: a stuck one
never holds up the coordinator's exit (``concurrent.futures.ThreadPoolExecutor`` joins its threads
at exit, which a hung job would block forever).

User jobs: the sync form is called in the pool's threads; an async-only function runs in an event
loop of the thread's own (one per thread, kept). Module import and ``--setup`` run once per
process -- the coordinator's, which the threads share -- when the executor starts, not per thread.
"""

from __future__ import annotations

import asyncio
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services
from workers.clients import SyncClients
from workers.errors import InputError, JobFailed
from workers.jobs import Job, run_sync
from workers.user_calls import Caller
from workers.user_jobs import prepare

_Work = tuple[Future[Any], Callable[[], Any]]


class _DaemonThreads:
    def __init__(self, size: int, prefix: str) -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._prefix = prefix
        self._started = 0
        self._alive = 0
        self._written_off: set[Future[Any]] = set()  # jobs whose stuck thread was replaced: it retires
        try:
            for _ in range(size):
                self._spawn()
        except RuntimeError as exc:  # "can't start new thread": a limit thread_limit() could not see
            started = self._started - 1
            self.shutdown()
            raise InputError(
                f"--concurrency {size}: the OS refused thread {started + 1} ({exc}); thread mode runs one "
                f"OS thread per job in flight, so use at most {started} here, or async mode for more"
            ) from None

    def _spawn(self) -> None:
        with self._lock:
            name = f"{self._prefix}_{self._started}"
            self._started += 1
            self._alive += 1
        try:
            threading.Thread(target=self._work, name=name, daemon=True).start()
        except RuntimeError:
            with self._lock:
                self._alive -= 1
            raise

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
                if future in self._written_off:  # this thread's job outlived its timeout: a
                    self._written_off.discard(future)  # replacement runs in its place already
                    self._alive -= 1
                    return
        with self._lock:
            self._alive -= 1

    def replace_stuck(self, future: Future[Any]) -> None:
        """The thread running ``future`` is stuck in it: start another, and retire that one (not
        whichever thread finishes next) if its job ever returns."""
        with self._lock:
            self._written_off.add(future)
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


_HEADROOM = 64  # threads left for everything else: the coordinator's own, clients, pools


def thread_limit() -> tuple[int, str]:
    """About how many more threads this process may start, and the limit that sets it: the user's
    RLIMIT_NPROC, the kernel's threads-max and pid_max, the cgroup's pids.max, and memory maps
    (each thread's stack takes two of vm.max_map_count)."""
    tasks = _read_int("/proc/loadavg", lambda text: text.split()[3].split("/")[1])  # tasks on the machine
    limits: list[tuple[int, str]] = []
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY and os.geteuid() != 0:  # root is not held to RLIMIT_NPROC
        limits.append((soft - (tasks or 0), f"RLIMIT_NPROC {soft} (ulimit -u)"))
    for path, label in (("/proc/sys/kernel/threads-max", "threads-max"), ("/proc/sys/kernel/pid_max", "pid_max")):
        if (value := _read_int(path)) is not None:
            limits.append((value - (tasks or 0), f"kernel {label} {value}"))
    for max_path, current_path in _cgroup_pids_files():
        high, now = _read_int(max_path), _read_int(current_path)
        if high is not None and now is not None:
            limits.append((high - now, f"cgroup pids.max {high}"))
    maps = _read_int("/proc/sys/vm/max_map_count")
    if maps is not None:
        with open("/proc/self/maps", "rb") as f:
            used = sum(1 for _ in f)
        limits.append(((maps - used) // 2, f"vm.max_map_count {maps}"))
    if not limits:
        return 1 << 30, "no limit found"
    room, why = min(limits)
    return max(0, room - _HEADROOM), why


def _read_int(path: str, pick: Callable[[str], str] = str.strip) -> int | None:
    try:
        with open(path) as f:
            return int(pick(f.read()))
    except (OSError, ValueError, IndexError):
        return None


def _cgroup_pids_files() -> list[tuple[str, str]]:
    """(pids.max, pids.current) of this process's cgroup, v2 or v1, when there is a limit."""
    found = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        base = "/sys/fs/cgroup" if controllers == "" else "/sys/fs/cgroup/pids" if "pids" in controllers else None
        if base is not None:
            found.append((f"{base}{path.rstrip('/')}/pids.max", f"{base}{path.rstrip('/')}/pids.current"))
    return found


class ThreadExecutor(Executor):
    name = "thread"
    summary = "a pool of OS threads sharing one interpreter (and its GIL)"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._clients = SyncClients(pool_size=config.concurrency)  # opens connections on first use
        self._pool: _DaemonThreads | None = None
        self._user: Caller | None = None
        self._notes: queue.SimpleQueue[tuple[str, str, str, int]] = queue.SimpleQueue()

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        room, why = thread_limit()
        if config.concurrency > room:
            raise InputError(
                f"--concurrency {config.concurrency}: thread mode runs one OS thread per job in flight, and "
                f"this machine allows about {room} more ({why}); use at most {room}, or async mode for more"
            )

    async def start(self) -> None:
        if self.config.user_jobs is not None:
            jobs, figures = prepare(self.config.user_jobs)
            self._user = Caller(jobs, self.serialises)
            self.tally.note_worker(f"pid-{os.getpid()}", figures)
        self._pool = _DaemonThreads(self.config.concurrency, prefix="runner-job")

    def _run(self, job: Job) -> JobReport:
        try:
            if self._user is not None and job.kind in self.user_kinds:
                service_s, form, nbytes = self._user.call_sync(job.kind, job.target, job.payload)
                worker = threading.current_thread().name
                self._notes.put((job.kind, form, worker, nbytes))  # tallied at the end, on the loop
                return JobReport(service_s, worker)
            # own_process=False: a crash job must not kill the coordinator, whose threads these are
            cpu_began = time.thread_time()
            service_s = run_sync(job, self._clients, own_process=False)
            return JobReport(service_s, threading.current_thread().name, time.thread_time() - cpu_began)
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
                pool.replace_stuck(future)
            raise
        return report

    def user_job_figures(self) -> dict[str, Any] | None:
        while not self._notes.empty():
            self.tally.note(*self._notes.get_nowait())
        return super().user_job_figures()

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()
        self._clients.close()

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, min(self.config.concurrency, cores))

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "threads": self.config.concurrency}
