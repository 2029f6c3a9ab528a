"""``gevent``: greenlets over monkey-patched sockets, the approach of the seed article's grequests.

The greenlets live in a worker process of their own (``workers.gevent_worker``) so the patching
never touches the coordinator; jobs and replies cross a pipe as JSON lines. One process, one
thread: I/O overlaps, CPU work blocks every greenlet, and a job that kills its process takes the
jobs in flight with it (they fail with "worker died"; a fresh process serves the rest).

A line on the pipe that is not a reply for a job in flight (not JSON, no id, an id never sent)
means the worker is broken: the run stops with a ``ServiceError`` naming the line, as it does if
the reader fails for any other reason -- jobs are never left to time out in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from workers import lifeline
from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services, cpu_seconds
from workers.calibration import Calibration
from workers.errors import InputError, JobFailed, ServiceError
from workers.jobs import WORKER_DIED, Job
from workers.scratch import scratch_dir
from workers.user_jobs import SetupFailed

_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_SHOWN = 60  # characters of a bad line quoted in the error


class GeventExecutor(Executor):
    name = "gevent"
    summary = "greenlets with monkey-patched sockets, in a worker process of their own"
    serialises = "json"

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._issued = 0  # job ids below this were sent (in any workload: a late reply may cross one)
        self._pids: list[int] = []
        self._rates: dict[str, Calibration] = {}  # worker process -> the rate it measured as it started
        self._respawn = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._fatal: ServiceError | None = None
        self._logdir: str | None = None
        self._log: Any = None

    async def start(self) -> None:
        self._logdir = scratch_dir("gevent")  # removed by the next run if this one is killed
        self._log = open(Path(self._logdir) / "worker.log", "wb")  # noqa: SIM115 -- lives as long as the worker
        await self._spawn()

    async def _spawn(self) -> None:
        path = os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")]))
        table = self.config.user_jobs
        if table is not None:  # the user's modules, from the same paths as the coordinator
            path = os.pathsep.join([*table.paths, path])
        env = {**os.environ, **lifeline.child_env(), "PYTHONPATH": path, **(table.env() if table else {})}
        self._proc = proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers.gevent_worker",
            str(self.config.concurrency),
            *(["--rate-known"] if self._rates else []),  # a replacement: no calibration while timed
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            env=env,
            limit=1 << 20,
        )
        self._pids.append(proc.pid)
        assert proc.stdout is not None
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), 30)
        except TimeoutError:
            first = b""
        if not first.startswith(b'{"ready"'):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise ServiceError(f"the gevent worker did not start: {self._log_tail()}")
        ready = json.loads(first)
        if ready.get("setup_error"):  # the user's modules or --setup failed there: as in a pool process
            raise SetupFailed(str(ready["setup_error"]))
        rate = _calibration_in(first)  # none from a replacement (--rate-known)
        if rate is not None:
            self._rates[f"gevent-pid-{proc.pid}"] = rate
        if ready.get("setup"):
            self.tally.note_worker(f"gevent-pid-{proc.pid}", ready["setup"])
        self._reader = asyncio.create_task(self._read(proc), name="gevent-replies")

    def _log_tail(self) -> str:
        text = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        return text[-1].strip() if text else "no output (is gevent installed?)"  # the error, not its traceback

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await self._read_replies(proc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reader that dies must stop the run, never leave jobs to time out
            self._fail(ServiceError(f"the gevent reply reader failed: {type(exc).__name__}: {exc}"))
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # nobody reads its replies any more
        await proc.wait()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(JobFailed(WORKER_DIED))

    async def _read_replies(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            reply = _parse(line, self._issued)
            if isinstance(reply, str):
                shown = line[:_SHOWN].decode(errors="replace").rstrip()
                self._fail(ServiceError(f"malformed reply from the gevent worker ({reply}): {shown!r}"))
                proc.kill()  # a worker that writes garbage is not trusted with the rest
                return
            future = self._pending.get(reply["id"])
            if future is not None and not future.done():
                future.set_result(reply)

    def _fail(self, error: ServiceError) -> None:
        if self._fatal is None:
            self._fatal = error
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self._fatal)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._fatal is not None:
            raise self._fatal
        assert self._proc is not None, "run before start"
        if self._proc.returncode is not None:
            async with self._respawn:  # one respawn, however many jobs notice the dead process
                if self._proc.returncode is not None:
                    if self._reader is not None:
                        await self._reader
                    await self._spawn()  # the last one died (a crash job): serve the rest from a fresh one
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self._proc.stdin.drain()

    async def run(self, job: Job) -> JobReport:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[job.id] = future
        self._issued = max(self._issued, job.id + 1)
        try:
            await self._send({"run": job.to_wire()})
            reply = await future
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # timed out: free its greenlet if the process lives
                await self._send({"cancel": job.id})
            raise
        finally:
            del self._pending[job.id]
        if "error" in reply:
            raise JobFailed(reply["error"])
        assert self._proc is not None
        worker = f"gevent-pid-{self._proc.pid}"
        if "form" in reply:  # a user job's: which form ran, and its result's size
            self.tally.note_reply(job.kind, reply, worker)
        return JobReport(float(reply["service_s"]), worker, cpu_seconds(reply.get("cpu_s")))

    async def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # end of input: the worker finishes and exits
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                proc.kill()  # greenlets stuck in CPU work or hung jobs
                await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    def worker_pids(self) -> list[int]:
        proc = self._proc
        return [proc.pid] if proc is not None and proc.returncode is None else []

    def worker_calibrations(self) -> dict[str, Calibration]:
        return dict(self._rates)

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)  # one thread: greenlets take turns on one core

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "greenlets": self.config.concurrency, "process": "own"}


def _calibration_in(ready: bytes) -> Calibration | None:
    """The worker's own rate from its ready line, if it sent a sound one."""
    with contextlib.suppress(ValueError, InputError):
        rates = json.loads(ready).get("calibration")
        return Calibration.from_dict(rates) if isinstance(rates, dict) else None
    return None


def _parse(line: bytes, sent_ids: int) -> dict[str, Any] | str:
    """A reply for a job sent in this workload, or what is wrong with the line."""
    try:
        reply = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "not JSON"
    if not isinstance(reply, dict):
        return "not a JSON object"
    job_id = reply.get("id")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        return "no integer 'id'"
    if not 0 <= job_id < sent_ids:
        return f"job id {job_id} out of range (0 to {sent_ids - 1} were sent)"
    if "error" not in reply and not isinstance(reply.get("service_s"), int | float):
        return "neither 'error' nor 'service_s'"
    return reply
