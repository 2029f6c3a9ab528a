"""``celery``: jobs go through a Redis broker to Celery worker processes.

Without ``REDIS_URL`` the coordinator's embedded Redis is the broker and this executor starts
``--workers`` local worker nodes (prefork, one child each) on a queue of their own, and stops them
afterwards. With ``REDIS_URL`` and ``--workers 0`` it sends to the ``runner`` queue that a
cluster's workers already consume.

Replies come back on a per-run Redis list (see ``workers.celery_app``); a reader coroutine
resolves each job's future and notices replies for jobs that already had one (duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from runner.errors import InputError, JobFailed, ServiceError
from workers.base import Capacity, Executor, ExecutorConfig, JobReport
from workers.celery_app import DEFAULT_QUEUE, TASK_NAME, make_app
from workers.clients import check_redis, redact
from workers.jobs import Job

_READY_TIMEOUT_S = 60.0
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


class CeleryExecutor(Executor):
    name = "celery"
    summary = "Celery workers over a Redis broker (local nodes, or a cluster's)"

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        if config.celery_workers == 0 and not external_redis:
            raise InputError(
                "--celery-workers 0 means 'use a cluster's workers', which needs REDIS_URL set to its Redis"
            )

    async def start(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._answered: set[int] = set()
        self._extra: dict[int, int] = {}
        self._nodes: list[str] = []
        self._run_id = uuid.uuid4().hex[:10]
        self._broker = self.services.redis_url()
        await asyncio.to_thread(check_redis, self._broker)
        local = self.config.celery_workers > 0
        self._queue = f"runner.{self._run_id}" if local else DEFAULT_QUEUE
        self._workload = 0
        self._reply_key = f"runner:replies:{self._run_id}:0"
        visibility = max(60.0, self.config.timeout_s * 2)
        self._app = make_app(self._broker, queue=self._queue, visibility_timeout_s=visibility)
        if local:
            self._spawn_workers(visibility)
        await asyncio.to_thread(self._wait_for_workers, local)
        import redis.asyncio as redis_async

        self._redis = redis_async.Redis.from_url(self._broker)
        self._reader: asyncio.Task[None] | None = None

    async def begin_workload(self) -> None:
        """A fresh reply list per workload, so late replies of the last one are never counted as
        duplicates of this one's (job ids restart at 0)."""
        await self._stop_reader()
        self._workload += 1
        self._reply_key = f"runner:replies:{self._run_id}:{self._workload}"
        self._answered.clear()
        self._extra.clear()
        self._reader = asyncio.create_task(self._read_replies(), name="celery-replies")

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
            with contextlib.suppress(Exception):  # best effort: the broker may be gone already
                await self._redis.delete(self._reply_key)

    def _spawn_workers(self, visibility_s: float) -> None:
        env = dict(os.environ)
        env.update(
            REDIS_URL=self._broker,
            RUNNER_QUEUE=self._queue,
            RUNNER_VISIBILITY_TIMEOUT=str(int(visibility_s)),
            PYTHONPATH=os.pathsep.join(filter(None, [_PROJECT_ROOT, env.get("PYTHONPATH")])),
        )
        self._logdir = tempfile.mkdtemp(prefix="runner-celery-")
        for i in range(self.config.celery_workers):
            node = f"w{i}-{self._run_id}@%h"
            log = open(Path(self._logdir) / f"w{i}.log", "wb")  # noqa: SIM115 -- lives as long as the worker
            cmd = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "-Q",
                self._queue,
                "-n",
                node,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ]
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            self._procs.append(proc)

    def _wait_for_workers(self, local: bool) -> None:
        want = self.config.celery_workers if local else 1
        deadline = time.monotonic() + (_READY_TIMEOUT_S if local else 10.0)
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise ServiceError(f"a Celery worker exited at start (code {proc.returncode}): {self._log_tail()}")
            replies = self._app.control.ping(timeout=0.5)
            names = [name for reply in replies for name in reply]
            if local:
                names = [n for n in names if self._run_id in n]
            if len(names) >= want:
                self._nodes = sorted(names)
                self._slots = want if local else self._cluster_slots(self._nodes)
                return
        if local:
            raise ServiceError(f"Celery workers did not answer within {_READY_TIMEOUT_S:.0f} s: {self._log_tail()}")
        raise ServiceError(
            f"no Celery worker answered on {redact(self._broker)}; start some with "
            "`celery -A workers.celery_app worker` (REDIS_URL set), or pass --celery-workers N to start local ones"
        )

    def _cluster_slots(self, nodes: list[str]) -> int:
        """Worker processes across a cluster's nodes, from each node's pool size."""
        stats = self._app.control.inspect(destination=nodes, timeout=1.0).stats() or {}
        sizes = [int(s.get("pool", {}).get("max-concurrency", 1)) for s in stats.values()]
        return max(len(nodes), sum(sizes))

    def capacity(self, cores: int) -> Capacity:
        slots = getattr(self, "_slots", self.config.celery_workers)
        return Capacity(slots, min(slots, cores), min(slots, cores))

    def _log_tail(self) -> str:
        lines: list[str] = []
        for log in sorted(Path(getattr(self, "_logdir", "/nonexistent")).glob("*.log")):
            lines += [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-3:]) or "no output"

    async def _read_replies(self) -> None:
        while True:
            first = await self._redis.blpop([self._reply_key], timeout=1)
            if first is None:
                continue
            rest: Any = await self._redis.lpop(self._reply_key, 1000)
            batch = [first[1], *(rest or [])]
            for raw in batch:
                reply = json.loads(raw)
                job_id = int(reply["id"])
                if job_id in self._answered:
                    self._extra[job_id] = self._extra.get(job_id, 0) + 1
                    continue
                self._answered.add(job_id)
                future = self._pending.get(job_id)
                if future is not None and not future.done():
                    future.set_result(reply)

    async def run(self, job: Job) -> JobReport:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[job.id] = future
        try:
            self._app.send_task(
                TASK_NAME,
                args=[job.to_wire(), self._reply_key],
                queue=self._queue,
                task_id=f"{self._run_id}-{self._workload}-{job.id}",
                time_limit=self.config.timeout_s + 5,  # frees a worker stuck on a hung job
            )
            reply = await future
        finally:
            del self._pending[job.id]
        if "error" in reply:
            raise JobFailed(reply["error"])
        return JobReport(float(reply["service_s"]), str(reply["worker"]))

    def extra_runs(self) -> dict[int, int]:
        return dict(self._extra)

    async def stop(self) -> None:
        redis_client = getattr(self, "_redis", None)
        if redis_client is not None:
            await self._stop_reader()
            await redis_client.aclose()
        await asyncio.to_thread(self._stop_workers)
        app = getattr(self, "_app", None)
        if app is not None:
            app.close()

    def _stop_workers(self) -> None:
        for proc in getattr(self, "_procs", []):
            _signal_group(proc, signal.SIGTERM)  # warm shutdown: the current job may finish
        deadline = time.monotonic() + 5.0
        for proc in getattr(self, "_procs", []):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # also reaps prefork children left behind
            proc.wait()

    def worker_pids(self) -> list[int]:
        return [proc.pid for proc in getattr(self, "_procs", [])]

    def describe(self) -> dict[str, Any]:
        return {
            "concurrency": self.config.concurrency,
            "workers": self.config.celery_workers,
            "nodes": getattr(self, "_nodes", []),
            "broker": redact(getattr(self, "_broker", "")),
            "pool": "prefork",
            "prefetch": 1,
        }


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
