"""``gevent``: greenlets over monkey-patched sockets, the approach of the seed article's grequests.

The greenlets live in a worker process of their own (``workers.gevent_worker``) so the patching
never touches the coordinator; jobs and replies cross a pipe as JSON lines. One process, one
thread: I/O overlaps, CPU work blocks every greenlet, and a job that kills its process takes the
jobs in flight with it (they fail with "worker died"; a fresh process serves the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from workers.base import Capacity, Executor, JobReport
from workers.errors import JobFailed, ServiceError
from workers.jobs import Job
from workers.scratch import scratch_file

_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


class GeventExecutor(Executor):
    name = "gevent"
    summary = "greenlets with monkey-patched sockets, in a worker process of their own"

    async def start(self) -> None:
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pids: list[int] = []
        self._respawn = asyncio.Lock()
        self._log = open(scratch_file("gevent", ".log"), "wb")  # noqa: SIM115 -- the worker's stderr, until stop
        await self._spawn()

    async def _spawn(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PROJECT_ROOT, os.environ.get("PYTHONPATH")])))
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers.gevent_worker",
            str(self.config.concurrency),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            env=env,
            limit=1 << 20,
        )
        self._pids.append(self._proc.pid)
        assert self._proc.stdout is not None
        try:
            first = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        except TimeoutError:
            first = b""
        if not first.startswith(b'{"ready"'):
            if self._proc.returncode is None:
                self._proc.kill()
            await self._proc.wait()
            raise ServiceError(f"the gevent worker did not start: {self._log_tail()}")
        self._reader = asyncio.create_task(self._read(self._proc), name="gevent-replies")

    def _log_tail(self) -> str:
        text = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        return text[-1].strip() if text else "no output (is gevent installed?)"  # the error, not its traceback

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            reply = json.loads(line)
            future = self._pending.get(int(reply["id"]))
            if future is not None and not future.done():
                future.set_result(reply)
        code = await proc.wait()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(JobFailed(f"worker died: the gevent process exited with code {code}"))

    async def _send(self, message: dict[str, Any]) -> None:
        if self._proc.returncode is not None:
            async with self._respawn:  # one respawn, however many jobs notice the dead process
                if self._proc.returncode is not None:
                    await self._reader
                    await self._spawn()  # the last one died (a crash job): serve the rest from a fresh one
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self._proc.stdin.drain()

    async def run(self, job: Job) -> JobReport:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[job.id] = future
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
        return JobReport(float(reply["service_s"]), f"gevent-pid-{self._proc.pid}")

    async def stop(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # end of input: the worker finishes and exits
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                proc.kill()  # greenlets stuck in CPU work or hung jobs
                await proc.wait()
        reader = getattr(self, "_reader", None)  # none when the worker failed at start
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    def worker_pids(self) -> list[int]:
        proc = getattr(self, "_proc", None)
        return [proc.pid] if proc is not None and proc.returncode is None else []

    def capacity(self, cores: int) -> Capacity:
        return Capacity(self.config.concurrency, 1, 1)  # one thread: greenlets take turns on one core

    def describe(self) -> dict[str, Any]:
        return {"concurrency": self.config.concurrency, "greenlets": self.config.concurrency, "process": "own"}
