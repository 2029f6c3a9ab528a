"""Running user jobs in a worker process (``Caller``), and the coordinator's record of them (``Tally``).

Loading, forms and checks live in ``workers.user_jobs``; this is what each executor calls per job.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.errors import JobFailed
from workers.user_jobs import (
    ENV,
    JOBS_DIR_ENV,
    JobTable,
    Refused,
    UserJob,
    call,
    first_line,
    load_confined,
    prepare,
)


class Caller:
    """Runs user jobs in one worker process. ``serialise`` is how results leave it (``pickle``,
        ``json`` or ``none``). An async-only function runs in an event loop of the calling thread's own;
    under gevent (``shared_loop``) in one loop for the process, run by a greenlet of its own: asyncio
    allows one running loop per OS thread, which all greenlets share."""

    def __init__(
        self,
        jobs: Mapping[str, UserJob],
        serialise: str,
        *,
        shared_loop: bool | None = None,
        jobs_dir: str | None = None,
    ) -> None:
        self.jobs = dict(jobs)
        self._measure = {"pickle": _pickled_size, "json": _json_size}.get(serialise)  # None: not serialised
        self._shared = _gevent_patched() if shared_loop is None else shared_loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs_dir = jobs_dir  # None: the table is all there is
        self._local = threading.local()

    def knows(self, kind: str) -> bool:
        return kind in self.jobs

    def _load(self, kind: str, ref: str) -> UserJob:
        if self._jobs_dir is None:
            raise Refused(f"user job {kind!r} refused: not in this worker's job table")
        job = self.jobs[kind] = load_confined(kind, ref, self._jobs_dir)
        return job

    def call_sync(self, kind: str, ref: str, payload: Any) -> tuple[float, str, int]:
        """Run one job here; (service seconds, form that ran, result bytes or -1)."""
        job = self.jobs.get(kind) or self._load(kind, ref)
        started = time.perf_counter()
        if job.sync is not None:
            value, form = call(job.sync, payload), "sync"
        else:
            assert job.async_ is not None
            value, form = self._in_loop(call(job.async_, payload)), "async"
        took = time.perf_counter() - started
        return took, form, -1 if self._measure is None else self._measure(value)

    async def call_async(self, kind: str, ref: str, payload: Any) -> tuple[float, str, int]:
        """Run one job on the running loop: the coroutine awaited, a sync function inline."""
        job = self.jobs.get(kind) or self._load(kind, ref)
        started = time.perf_counter()
        if job.async_ is not None:
            value, form = await call(job.async_, payload), "async"
        else:
            assert job.sync is not None
            value, form = call(job.sync, payload), "sync"
        took = time.perf_counter() - started
        return took, form, -1 if self._measure is None else self._measure(value)

    def _in_loop(self, coro: Any) -> Any:
        if self._shared:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="user-loop", daemon=True).start()
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        loop = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)


def _pickled_size(value: Any) -> int:
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        raise JobFailed(f"result cannot be pickled: {first_line(exc)}") from None


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise JobFailed(f"result is not JSON: {first_line(exc)}") from None


def _gevent_patched() -> bool:
    """Under gevent's patching a thread-local is per greenlet: a loop kept there would be left behind."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def caller_from_environment(serialise: str, *, shared_loop: bool | None = None) -> tuple[Caller, dict[str, float]]:
    """A worker process's caller: the table runner handed it, or (a node started on its own) an
    empty one that loads jobs from ``RUNNER_JOBS_DIR`` only."""
    text = os.environ.get(ENV)
    if text:
        jobs, figures = prepare(JobTable.from_json(text))
        return Caller(jobs, serialise, shared_loop=shared_loop), figures
    return Caller({}, serialise, shared_loop=shared_loop, jobs_dir=os.environ.get(JOBS_DIR_ENV, "")), {}


@dataclass
class Tally:
    """The coordinator's record of user jobs: per worker its import and setup time, per kind which
    form ran on which worker, and result sizes."""

    serialised_as: str = "none"
    workers: dict[str, dict[str, float]] = field(default_factory=dict)
    # (kind, form, worker) -> [jobs, results measured, their bytes, the largest]: one lookup per job
    ran: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    def note_worker(self, worker: str, figures: Mapping[str, float]) -> None:
        if figures:
            self.workers[worker] = dict(figures)

    def record(self, kind: str, form: str, worker: str) -> list[int]:
        """The record of one (kind, form, worker), kept across workloads (they zero it): an executor
        that knows these in advance counts a job with ``record[0] += 1`` and nothing else."""
        record = self.ran.get((kind, form, worker))
        if record is None:
            record = self.ran[kind, form, worker] = [0, 0, 0, 0]
        return record

    def note(self, kind: str, form: str, worker: str, nbytes: int) -> None:
        record = self.ran.get((kind, form, worker)) or self.record(kind, form, worker)
        record[0] += 1
        if nbytes >= 0:
            record[1] += 1
            record[2] += nbytes
            if nbytes > record[3]:
                record[3] = nbytes

    def note_reply(self, kind: str, reply: Mapping[str, Any], worker: str) -> None:
        """A JSON reply's user-job figures: the form, the result's size, the process's setup (once)."""
        self.note(kind, str(reply["form"]), worker, int(reply.get("bytes", -1)))
        setup = reply.get("setup")
        if isinstance(setup, dict):
            self.note_worker(str(setup.get("worker", worker)), {k: v for k, v in setup.items() if k != "worker"})

    def begin_workload(self) -> None:
        for record in self.ran.values():
            record[:] = [0, 0, 0, 0]

    def figures(self) -> dict[str, Any]:
        ran: dict[str, dict[str, dict[str, int]]] = {}
        sizes: dict[str, dict[str, int]] = {}
        for (kind, form, worker), (jobs, measured, total, largest) in sorted(self.ran.items()):
            if not jobs:
                continue
            ran.setdefault(kind, {}).setdefault(form, {})[worker] = jobs
            if measured:
                size = sizes.setdefault(kind, {"count": 0, "total": 0, "max": 0})
                size["count"] += measured
                size["total"] += total
                size["max"] = max(size["max"], largest)
        return {
            "serialised_as": self.serialised_as,
            "workers": [{"worker": w, **f} for w, f in sorted(self.workers.items())],
            "ran": ran,
            "result_bytes": sizes,
        }
