"""``celery``: jobs go through a Redis broker to Celery worker processes.

Without ``REDIS_URL`` the coordinator's embedded Redis is the broker and this executor starts
``--celery-workers`` local worker nodes on a queue of their own -- ``--celery-pool prefork`` (one
child process each), ``threads`` or ``gevent`` (``--concurrency`` / nodes threads or greenlets each)
-- and stops them afterwards. With ``REDIS_URL`` and ``--workers 0`` it sends to the ``runner`` queue that a
cluster's workers already consume.

Replies come back on a per-run Redis list (see ``workers.celery_app``); a reader coroutine
resolves each job's future and notices replies for jobs that already had one (duplicates).

Timing is derived from ``--timeout`` (T) so that a lost worker's job is redelivered while the
coordinator still waits for it: the visibility timeout is T/2 (a message unacknowledged that long
belongs to a dead node and is handed to another), and the worker's hard time limit is 0.4 T, so a
slow but live job is stopped before it could be redelivered and run twice.

Small jobs go in batches: once replies show that a job costs far less than a task's own overhead,
the jobs that arrive in one turn of the event loop are sent as ``runner.run_batch`` tasks of about
5 ms of work each (at most 256 jobs; ``--batch N`` fixes the size, 1 turns batching off). Each job
still gets its own reply, with its own service time, and its latency is measured on its own.

Broker outages: sending and reading wait while Redis is unreachable and carry on when it answers
again. If it comes back empty (a restart without persistence loses queues and replies), every job
still waiting is sent again; replies from both runs are counted as duplicates. If it stays away
for T/2, the executor gives up: waiting jobs fail with a ``ServiceError`` that stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport
from workers.celery_app import BATCH_TASK_NAME, DEFAULT_QUEUE, TASK_NAME, make_app
from workers.clients import check_redis, redact
from workers.errors import InputError, JobFailed, ServiceError
from workers.jobs import Job
from workers.node_survey import ask_nodes, capacity_of, nodes_line
from workers.scratch import scratch_dir

CELERY_POOLS = ("prefork", "threads", "gevent")
_READY_TIMEOUT_S = 60.0
_RETRY_S = 0.2  # between reconnection attempts while the broker is away
_BATCH_BUDGET_S = 0.005  # a batch task should take about this long on a worker
_MAX_BATCH = 256
_BATCH_AFTER = 8  # replies seen before the job cost is trusted enough to batch on
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


class CeleryExecutor(Executor):
    name = "celery"
    summary = "Celery workers over a Redis broker (local nodes, or a cluster's)"

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        if config.celery_pool not in CELERY_POOLS:
            raise InputError(f"--celery-pool: choose one of {', '.join(CELERY_POOLS)}, not {config.celery_pool!r}")
        if config.expect_workers and config.celery_workers:
            raise InputError("--expect-workers waits for a cluster's nodes: use it with --celery-workers 0")
        if config.celery_workers == 0 and not external_redis:
            raise InputError(
                "--celery-workers 0 means 'use a cluster's workers', which needs REDIS_URL set to its Redis"
            )

    async def start(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._pending: dict[int, _Pending] = {}
        self._answered = bytearray()  # one byte per job id: a million jobs cost a megabyte
        self._extra: dict[int, int] = {}
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._recovery: asyncio.Task[None] | None = None
        self._fatal: ServiceError | None = None
        self._nodes: list[str] = []
        self._run_id = uuid.uuid4().hex[:10]
        self._broker = self.services.redis_url()
        await asyncio.to_thread(check_redis, self._broker)
        local = self.config.celery_workers > 0
        self._queue = f"runner.{self._run_id}" if local else DEFAULT_QUEUE
        self._workload = 0
        self._reply_key = f"runner:replies:{self._run_id}:0"
        visibility = max(0.5, self.config.timeout_s / 2)
        self._time_limit = max(0.4, self.config.timeout_s * 0.4)
        self._outage_limit_s = max(1.0, self.config.timeout_s / 2)
        self._app = make_app(self._broker, queue=self._queue, visibility_timeout_s=visibility, socket_timeout_s=5.0)
        if local:
            self._spawn_workers(visibility)
        await asyncio.to_thread(self._wait_for_workers, local)
        self._facts = await asyncio.to_thread(self._survey, visibility)
        import redis.asyncio as redis_async

        self._redis = redis_async.Redis.from_url(self._broker, socket_connect_timeout=3.0, socket_timeout=5.0)
        self._server_id = await self._redis_server_id()
        self._reader: asyncio.Task[None] | None = None
        self._outbox: dict[str, list[_Pending]] = {}  # by kind: batched jobs waiting for a worker slot
        self._flush_scheduled = False
        self._tasks_out = 0  # batch tasks sent whose jobs are not all settled

    async def begin_workload(self) -> None:
        """A fresh reply list per workload, so late replies of the last one are never counted as
        duplicates of this one's (job ids restart at 0)."""
        await self._stop_reader()
        await asyncio.to_thread(ask_nodes, self._app, self._nodes, reset=True)  # each node's CPU and RSS from now
        self._workload += 1
        self._reply_key = f"runner:replies:{self._run_id}:{self._workload}"
        self._answered = bytearray()
        self._extra.clear()
        self._costs: dict[str, list[float]] = {}  # kind -> [moving average of service time, replies seen]
        self._tasks_sent = self._jobs_sent = 0
        self._reading = True
        self._reader = asyncio.create_task(self._read_replies(), name="celery-replies")

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reading = False  # ends the loop within a second even if the cancellation is lost
            if not await _cancel_and_wait(self._reader, 3.0):
                await self._redis.connection_pool.disconnect()  # fails the read it is stuck in
                await _cancel_and_wait(self._reader, 3.0)
            self._reader = None
            with contextlib.suppress(Exception):  # best effort: the broker may be gone already
                await self._redis.delete(self._reply_key)

    def _spawn_workers(self, visibility_s: float) -> None:
        env = dict(os.environ)
        env.update(
            REDIS_URL=self._broker,
            RUNNER_QUEUE=self._queue,
            RUNNER_VISIBILITY_TIMEOUT=f"{visibility_s:g}",
            PYTHONPATH=os.pathsep.join(filter(None, [_PROJECT_ROOT, env.get("PYTHONPATH")])),
        )
        self._logdir = scratch_dir("celery")
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
                self.config.celery_pool,
                "--concurrency",
                str(self._per_node()),
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
        want = self.config.celery_workers if local else max(1, self.config.expect_workers)
        wait_s = _READY_TIMEOUT_S if local else (self.config.wait_s if self.config.expect_workers else 10.0)
        deadline = time.monotonic() + wait_s
        names: list[str] = []
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
                self._slots = want * self._per_node() if local else self._cluster_slots(self._nodes)
                return
        if local:
            raise ServiceError(f"Celery workers did not answer within {_READY_TIMEOUT_S:.0f} s: {self._log_tail()}")
        if self.config.expect_workers:
            raise ServiceError(
                f"--expect-workers {want}: {len(names)} Celery node(s) answered on {redact(self._broker)} "
                f"within {wait_s:g} s{': ' + ', '.join(sorted(names)) if names else ''}"
            )
        raise ServiceError(
            f"no Celery worker answered on {redact(self._broker)}; start some with "
            "`celery -A workers.celery_app worker` (REDIS_URL set), or pass --celery-workers N to start local ones"
        )

    def _survey(self, visibility_s: float) -> dict[str, dict[str, Any]]:
        """Ask every node what it is, and set its redelivery time to this run's: --timeout governs
        it, whatever RUNNER_VISIBILITY_TIMEOUT the node started with."""
        facts = ask_nodes(self._app, self._nodes, visibility_s=visibility_s)
        missing = [name for name in self._nodes if name not in facts]
        if missing:
            raise ServiceError(
                f"Celery node(s) {', '.join(missing)} did not answer runner_node (not this runner's workers?): "
                "their redelivery cannot follow --timeout"
            )
        if self.config.expect_workers:
            print(f"celery: {len(facts)} nodes on {redact(self._broker)}\n{nodes_line(facts)}", file=sys.stderr)
        return facts

    async def node_figures(self) -> list[dict[str, Any]]:
        try:
            answers = await asyncio.to_thread(ask_nodes, self._app, self._nodes)
        except _broker_errors():
            return []  # the broker is gone: the run says so already
        return [answers[name] for name in sorted(answers)]

    def _cluster_slots(self, nodes: list[str]) -> int:
        """Worker processes across a cluster's nodes, from each node's pool size."""
        stats = self._app.control.inspect(destination=nodes, timeout=1.0).stats() or {}
        sizes = [int(s.get("pool", {}).get("max-concurrency", 1)) for s in stats.values()]
        return max(len(nodes), sum(sizes))

    def _per_node(self) -> int:
        """Jobs one local node runs at once: one per prefork child; threads and greenlets are
        sized to share the in-flight window, as one would size them for I/O."""
        if self.config.celery_pool == "prefork":
            return 1
        return max(1, -(-self.config.concurrency // max(1, self.config.celery_workers)))

    def capacity(self, cores: int) -> Capacity:
        if getattr(self, "_facts", None):  # the nodes' own figures, wherever they run
            return capacity_of(list(self._facts.values()))
        slots = getattr(self, "_slots", self.config.celery_workers * self._per_node())
        nodes = max(1, self.config.celery_workers or len(getattr(self, "_nodes", [])))
        processes = slots if self.config.celery_pool == "prefork" else nodes  # one GIL per process
        threads = slots if self.config.celery_pool != "gevent" else nodes  # greenlets share one thread
        return Capacity(slots, min(processes, cores), min(threads, cores))

    def _log_tail(self) -> str:
        lines: list[str] = []
        for log in sorted(Path(getattr(self, "_logdir", "/nonexistent")).glob("*.log")):
            lines += [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-3:]) or "no output"

    async def _read_replies(self) -> None:
        # redis-py's reads run under asyncio.timeout, which on Python 3.11 can swallow a cancel that
        # lands as its own deadline expires: the flag, not only the cancel, ends this loop.
        while self._reading:
            try:
                first = await self._redis.blpop([self._reply_key], timeout=1)
                if first is None:
                    continue
                rest: Any = await self._redis.lpop(self._reply_key, 1000)
            except _broker_errors() as exc:
                await self._broker_lost(exc)
                continue
            for raw in [first[1], *(rest or [])]:
                self._on_reply(json.loads(raw))

    def _on_reply(self, reply: dict[str, Any]) -> None:
        job_id = int(reply["id"])
        if job_id >= len(self._answered):
            self._answered.extend(bytes(max(job_id + 1 - len(self._answered), 1024)))
        if self._answered[job_id]:
            self._extra[job_id] = self._extra.get(job_id, 0) + 1
            return
        self._answered[job_id] = 1
        pending = self._pending.get(job_id)
        if pending is not None and "service_s" in reply:
            cost, seen = self._costs.setdefault(pending.job.kind, [float(reply["service_s"]), 0])
            self._costs[pending.job.kind] = [0.9 * cost + 0.1 * float(reply["service_s"]), seen + 1]
        if pending is not None and not pending.future.done():
            pending.future.set_result(reply)

    def _batch_size(self, kind: str) -> int:
        """Jobs of this kind per task: from the kind's measured cost, since a batch runs its jobs
        one after another (a slow job in a batch would hold up its batch-mates)."""
        if self.config.batch > 0:
            return self.config.batch
        cost, seen = self._costs.get(kind, (0.0, 0))
        if seen < _BATCH_AFTER:
            return 1
        return max(1, min(_MAX_BATCH, int(_BATCH_BUDGET_S / max(cost, 1e-6))))

    def _send(self, jobs: list[Job]) -> None:
        single = len(jobs) == 1
        self._app.send_task(
            TASK_NAME if single else BATCH_TASK_NAME,
            args=[jobs[0].to_wire() if single else [job.to_wire() for job in jobs], self._reply_key],
            queue=self._queue,
            task_id=f"{self._run_id}-{self._workload}-{jobs[0].id}" + ("" if single else f"+{len(jobs) - 1}"),
            time_limit=self._time_limit,  # frees a worker stuck on a hung job, before redelivery could
            retry=False,  # an unreachable broker is handled here, without blocking the event loop
        )
        self._tasks_sent += 1
        self._jobs_sent += len(jobs)

    def _kick(self) -> None:
        if any(self._outbox.values()) and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send batches from the outbox while fewer than two tasks per worker slot are out: jobs
        wait here, not in the broker's queue, so each batch holds as many as are waiting."""
        self._flush_scheduled = False
        while self._tasks_out < self._max_tasks_out() and self._healthy.is_set():
            waiting = [(box[0].job.id, kind) for kind, box in self._outbox.items() if box]
            if not waiting:
                return
            kind = min(waiting)[1]  # the kind whose first job has waited longest: no kind starves
            outbox = self._outbox[kind]
            chunk = outbox[: self._batch_size(kind)]
            try:
                self._send([p.job for p in chunk])
            except _broker_errors() as exc:
                self._start_recovery(exc).add_done_callback(lambda _: self._kick())
                return
            del outbox[: len(chunk)]
            self._sent_batch(chunk)

    def _max_tasks_out(self) -> int:
        """Tasks in the broker or on workers at once: enough to keep every worker slot busy with
        one task running and one prefetched, and no more."""
        return 2 * max(1, self._slots)

    def _sent_batch(self, chunk: list[_Pending]) -> None:
        batch = _Batch(len(chunk))
        self._tasks_out += 1
        for p in chunk:
            p.sent, p.batch = True, batch

    def _job_settled(self, pending: _Pending) -> None:
        """A batched job has its reply (or is given up): its task is done when all its jobs are."""
        batch, pending.batch = pending.batch, None
        if batch is not None:
            batch.left -= 1
            if batch.left == 0:
                self._tasks_out -= 1
                self._kick()

    async def run(self, job: Job) -> JobReport:
        pending = _Pending(asyncio.get_running_loop().create_future(), job)
        self._pending[job.id] = pending
        try:
            if self._batch_size(job.kind) > 1 or self._tasks_out >= self._max_tasks_out() or self._outbox.get(job.kind):
                # Sent by _flush as worker slots free up, in a batch if the kind is cheap. Jobs
                # wait here rather than in the broker's queue, where they could no longer be batched;
                # first come, first sent.
                pending.queued = True
                self._outbox.setdefault(job.kind, []).append(pending)
                self._kick()
            while not pending.sent and not pending.queued:
                await self._healthy.wait()
                if self._fatal is not None:
                    raise self._fatal
                try:
                    self._send([pending.job])
                    self._sent_batch([pending])
                except _broker_errors() as exc:
                    await self._broker_lost(exc)
            reply = await pending.future
        finally:
            del self._pending[job.id]
            if pending.queued and not pending.sent:
                self._outbox[job.kind].remove(pending)  # timed out (or stopped) while waiting to be sent
            self._job_settled(pending)
        if "error" in reply:
            raise JobFailed(reply["error"])
        return JobReport(float(reply["service_s"]), str(reply["worker"]))

    def _start_recovery(self, exc: BaseException) -> asyncio.Task[None]:
        if self._recovery is None or self._recovery.done():
            self._healthy.clear()
            self._recovery = asyncio.create_task(self._recover(exc), name="celery-broker-recovery")
        return self._recovery

    async def _broker_lost(self, exc: BaseException) -> None:
        """Wait until the broker is back (one recovery for everyone who noticed), or give up."""
        self._start_recovery(exc)
        await self._healthy.wait()
        if self._fatal is not None:
            raise self._fatal

    async def _recover(self, cause: BaseException) -> None:
        give_up = time.monotonic() + self._outage_limit_s
        try:
            while True:
                try:
                    server_id = await self._redis_server_id()
                    if server_id != self._server_id:  # restarted empty: queued messages and replies are gone
                        for pending in list(self._pending.values()):
                            if pending.sent and not pending.future.done():
                                await asyncio.to_thread(self._send, [pending.job])
                        self._server_id = server_id
                    return
                except _broker_errors() as exc:
                    cause = exc
                if time.monotonic() >= give_up:
                    self._give_up(cause)
                    return
                await asyncio.sleep(_RETRY_S)
        finally:
            self._healthy.set()  # wakes everyone waiting: to carry on, or to see self._fatal

    def _give_up(self, cause: BaseException) -> None:
        self._fatal = ServiceError(
            f"lost the broker: Redis at {redact(self._broker)} did not answer for "
            f"{self._outage_limit_s:g} s ({cause}); start it again or check REDIS_URL"
        )
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(self._fatal)

    async def _redis_server_id(self) -> str:
        info = await self._redis.info("server")
        return str(info.get("run_id", ""))

    def extra_runs(self) -> dict[int, int]:
        return dict(self._extra)

    async def stop(self) -> None:
        recovery = getattr(self, "_recovery", None)
        if recovery is not None:
            await _cancel_and_wait(recovery, 3.0)  # bounded: it gives up on its own after the outage limit
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
        logdir = getattr(self, "_logdir", None)
        if logdir is not None:  # the logs only serve error messages at start
            shutil.rmtree(logdir, ignore_errors=True)

    def worker_pids(self) -> list[int]:
        return [proc.pid for proc in getattr(self, "_procs", [])]

    def describe(self) -> dict[str, Any]:
        return {
            "concurrency": self.config.concurrency,
            "workers": self.config.celery_workers,
            "nodes": getattr(self, "_nodes", []),
            "broker": redact(getattr(self, "_broker", "")),
            "pool": self.config.celery_pool,
            "batching": {
                "batch": self.config.batch or "auto",
                "tasks_sent": getattr(self, "_tasks_sent", 0),
                "jobs_per_task": round(getattr(self, "_jobs_sent", 0) / max(1, getattr(self, "_tasks_sent", 0)), 2),
            },
            "prefetch": 1,
        }


class _Pending:
    """A job sent (or about to be) and the future its reply resolves."""

    __slots__ = ("batch", "future", "job", "queued", "sent")

    def __init__(self, future: asyncio.Future[dict[str, Any]], job: Job) -> None:
        self.future = future
        self.job = job
        self.sent = False
        self.queued = False  # waiting in the outbox to go out in a batch
        self.batch: _Batch | None = None  # the batch task it went in, if batched


class _Batch:
    """A batch task: how many of its jobs are still waiting for their reply."""

    __slots__ = ("left",)

    def __init__(self, jobs: int) -> None:
        self.left = jobs


def _broker_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable broker raises, from redis-py (replies) and kombu (sending)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OperationalError, OSError)


async def _cancel_and_wait(task: asyncio.Task[None], timeout_s: float) -> bool:
    """Cancel ``task`` and wait at most ``timeout_s`` for it to end; its outcome is always retrieved."""
    task.cancel()
    await asyncio.wait([task], timeout=timeout_s)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task.done()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
