"""The job catalogue: what each job kind does, in an async form (for an event loop) and a sync
form (for threads, pool processes and Celery workers).

Every kind is an I/O phase followed by a CPU phase, either of which may be empty. Keeping the two
phases apart lets an executor decide where each runs (the async executor runs both in the loop,
on purpose, so a CPU phase visibly blocks it).

``noop`` does nothing at all: it measures what the harness itself costs per job.

Four kinds inject faults, so every executor's handling of them can be checked end to end:
``fail`` raises, ``hang`` waits far past any timeout, ``unserializable`` returns a value that
neither pickle nor JSON can carry, and ``crash`` kills the process it runs in -- unless that is the
coordinator itself (async and thread executors), where it fails with ``CrashRefused`` instead.

A job travels as a plain list (``Job.to_wire``) so it pickles cheaply for process pools and
serialises as JSON for Celery. CPU work is sized in calibrated units (loop iterations, hash
rounds) computed once per run on the coordinator, so every worker does the same amount of work.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from workers.clients import AsyncClients, SyncClients

KINDS = ("sleep", "http", "redis", "cpu", "hash", "mixed", "noop", "fail", "hang", "crash", "unserializable")
IO_KINDS = frozenset({"sleep", "http", "redis", "mixed", "hang"})
GIL_CPU_KINDS = frozenset({"cpu", "mixed"})  # pure-Python CPU work: holds the GIL
FREE_CPU_KINDS = frozenset({"hash"})  # CPU work that releases the GIL
CPU_PHASE_KINDS = frozenset({"cpu", "mixed", "hash", "fail"})  # those ``cpu_phase`` does anything for

# The reason a job fails when the process running it died, in every executor (those that can,
# retry it once first).
WORKER_DIED = "worker died: the process running it exited abruptly"
HANG_S = 3600.0  # how long a hang job waits: far past any sensible --timeout

# 256 KiB: big enough that hashlib releases the GIL, small enough to size jobs finely.
_HASH_CHUNK = bytes(range(256)) * 1024
_REDIS_VALUE = b"x" * 64


class Job(NamedTuple):
    """One unit of work. ``cpu_units`` are spin iterations (cpu, mixed) or hash rounds (hash);
    ``target`` is the URL an I/O kind talks to (the HTTP target, or Redis), or a user kind's
    ``MODULE:FUNCTION``; ``payload`` is a user job's input (``workers.user_jobs``). A named tuple,
    not a frozen dataclass: one is made per job, and the tuple is three times cheaper to make."""

    id: int
    kind: str
    io_ms: float = 0.0
    cpu_units: int = 0
    target: str = ""
    payload: Any = None

    def to_wire(self) -> list[Any]:
        return [self.id, self.kind, self.io_ms, self.cpu_units, self.target, self.payload]

    @classmethod
    def from_wire(cls, wire: list[Any]) -> Job:
        payload = wire[5] if len(wire) > 5 else None  # five items: a built-in job from an older coordinator
        return cls(int(wire[0]), str(wire[1]), float(wire[2]), int(wire[3]), str(wire[4]), payload)


class InjectedFailure(RuntimeError):
    """Raised by ``fail`` jobs, so failure accounting can be checked end to end."""


class CrashRefused(RuntimeError):
    """Raised by a ``crash`` job running inside the coordinator's process, which it must not kill."""


def crash(own_process: bool) -> None:
    """Kill the process this runs in, abruptly (as the OOM killer would), if it is a worker's own."""
    if not own_process:
        raise CrashRefused("a crash job runs inside the coordinator here; it fails instead of killing it")
    os.kill(os.getpid(), signal.SIGKILL)


def result_of(job: Job) -> Any:
    """The value a job hands back to whoever ran it; executors that ship results between processes
    must cope with one they cannot serialise."""
    if job.kind == "unserializable":
        return threading.Lock()  # neither picklable nor JSON
    return None


# --- CPU phases -------------------------------------------------------------------------------


def spin(iterations: int) -> int:
    """Pure-Python arithmetic that holds the GIL for the whole call."""
    acc = 0
    for i in range(iterations):
        acc += i * i
    return acc


def hash_rounds(rounds: int) -> str:
    """SHA-256 over 256 KiB per round; CPython releases the GIL while hashing large buffers."""
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(_HASH_CHUNK)
    return digest.hexdigest()


def cpu_phase(job: Job) -> None:
    if job.kind in ("cpu", "mixed"):
        spin(job.cpu_units)
    elif job.kind == "hash":
        hash_rounds(job.cpu_units)
    elif job.kind == "fail":
        raise InjectedFailure("a fail job raised on purpose")


# --- I/O phases -------------------------------------------------------------------------------


def _redis_key(job: Job) -> str:
    """A key no other run of any job shares: runs in parallel on one Redis (job ids restart at 0 in
    each), or a job and its duplicate, never touch each other's. Random, not a pid: workers in
    containers share pids (``random`` is reseeded in forked children)."""
    return f"runner:job:{job.id}:{random.getrandbits(64):016x}"


def io_phase_sync(job: Job, clients: SyncClients) -> None:
    kind = job.kind
    if kind in ("sleep", "mixed"):
        time.sleep(job.io_ms / 1000.0)
    elif kind == "hang":
        time.sleep(HANG_S)
    elif kind == "http":
        clients.http_get(f"{job.target}/delay/{job.io_ms:g}")
    elif kind == "redis":
        key = _redis_key(job)
        conn = clients.redis(job.target)
        conn.set(key, _REDIS_VALUE, ex=60)
        conn.get(key)
        conn.delete(key)


async def io_phase_async(job: Job, clients: AsyncClients) -> None:
    kind = job.kind
    if kind in ("sleep", "mixed"):
        await asyncio.sleep(job.io_ms / 1000.0)
    elif kind == "hang":
        await asyncio.sleep(HANG_S)
    elif kind == "http":
        await clients.http_get(f"{job.target}/delay/{job.io_ms:g}")
    elif kind == "redis":
        key = _redis_key(job)
        conn = clients.redis(job.target)
        await conn.set(key, _REDIS_VALUE, ex=60)
        await conn.get(key)
        await conn.delete(key)


def run_sync(job: Job, clients: SyncClients, *, own_process: bool = True) -> float:
    """Run a whole job in this thread; return its service time in seconds. ``own_process`` is
    False where the thread belongs to the coordinator (a crash job must not kill it)."""
    started = time.perf_counter()
    if job.kind == "crash":
        crash(own_process)
    io_phase_sync(job, clients)
    cpu_phase(job)
    return time.perf_counter() - started


async def run_async(job: Job, clients: AsyncClients) -> float:
    """Run a whole job in the running loop, CPU phase inline (it blocks the loop)."""
    started = time.perf_counter()
    if job.kind == "crash":
        crash(own_process=False)  # the loop is the coordinator's
    if job.kind in IO_KINDS:
        await io_phase_async(job, clients)
    cpu_phase(job)
    return time.perf_counter() - started
