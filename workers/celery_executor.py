"""``celery``: jobs go through a Redis broker to Celery worker processes.

Without ``REDIS_URL`` the coordinator's embedded Redis is the broker and this executor starts
``--celery-workers`` local worker nodes on a queue of their own -- ``--celery-pool prefork`` (one
child process each), ``threads`` or ``gevent`` (``--concurrency`` / nodes threads or greenlets each)
-- and stops them afterwards (handing them the user's job table, if any). With ``REDIS_URL`` and
``--workers 0`` it sends to the ``runner`` queue that a cluster's workers already consume.

This module sends jobs and matches replies; the rest lives apart: nodes (``workers.celery_nodes``),
batching (``workers.batching``), replies (``workers.celery_replies``), outages (``workers.celery_outage``).

Timing is derived from ``--timeout`` (T) so that a lost worker's job is redelivered while the
coordinator still waits for it: the visibility timeout is T/2 (a message unacknowledged that long
belongs to a dead node and is handed to another), and the worker's hard time limit is 0.4 T, so a
slow but live job is stopped before it could be redelivered and run twice.

Each job is one task by default, as users send them. With ``--batch 0`` small jobs go in batches of
about 5 ms of work (``runner.run_batch`` tasks), with ``--batch N`` in batches of N; each job still
gets its own reply, with its own service time, and its latency is measured on its own.

Broker outages: sending and reading wait while Redis is unreachable and carry on when it answers
again. If it comes back empty, every job still waiting is sent again; replies from both runs are
counted as duplicates. If it stays away for T/2, waiting jobs fail with a ``ServiceError`` that
stops the run -- as does a malformed reply or a reply reader that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from typing import Any

from workers.base import Capacity, Executor, ExecutorConfig, JobReport, Services, cpu_seconds
from workers.batching import Outbox
from workers.calibration import Calibration
from workers.celery_app import BATCH_TASK_NAME, DEFAULT_QUEUE, TASK_NAME, make_app
from workers.celery_bulk import CompactSender, settle
from workers.celery_nodes import (
    OPTIONS,
    POOLS,
    LocalNodes,
    NodeSpec,
    answering_nodes,
    cluster_slots,
    wait_for_setup,
)
from workers.celery_outage import Outage, broker_errors, server_id
from workers.celery_publish import Publisher
from workers.celery_replies import ReplyReader
from workers.celery_waits import JobWait, TaskWait
from workers.clients import check_redis, redact
from workers.errors import InputError, JobFailed, ServiceError
from workers.jobs import Job
from workers.node_survey import ask_nodes, capacity_of, rates_of, survey
from workers.user_jobs import SetupFailed

_READY_TIMEOUT_S = 60.0
_BATCH_BUDGET_S = 0.005  # a batch task should take about this long on a worker


class CeleryExecutor(CompactSender, Executor):
    name = "celery"
    summary = "Celery workers over a Redis broker (local nodes, or a cluster's)"
    serialises = "json"
    options = OPTIONS
    # One task per job unless --batch says otherwise: that is how users send Celery tasks, so the
    # figures answer "what does Celery give these jobs"; --batch 0 shows what batching would add.
    default_batch = 1

    def __init__(self, config: ExecutorConfig, services: Services) -> None:
        super().__init__(config, services)
        self._node_count = int(config.options.get("celery_workers", config.workers))
        self._pool = str(config.options.get("celery_pool", "prefork"))
        self._run_id = uuid.uuid4().hex[:10]
        # A cluster's workers consume RUNNER_QUEUE (compose sets it for every service, this one too).
        self._queue = (
            f"runner.{self._run_id}" if self._node_count > 0 else os.environ.get("RUNNER_QUEUE", DEFAULT_QUEUE)
        )
        self._time_limit = max(0.4, config.timeout_s * 0.4)
        self._broker = ""
        self._app: Any = None
        self._redis: Any = None
        self._publisher: Publisher | None = None
        self._local: LocalNodes | None = None
        self._nodes: list[str] = []
        self._facts: dict[str, dict[str, Any]] = {}  # node -> what it said of itself (runner_node)
        self._slots = self._node_count * self._per_node()
        self._pending: dict[int, JobWait] = {}
        self._bulk = {}  # first job id -> a batch handed over whole (workers.celery_bulk)
        self._answered = bytearray()  # one byte per job id: a million jobs cost a megabyte
        self._issued = 0  # job ids below this were handed to run() in this workload
        self._extra: dict[int, int] = {}
        self._fatal: ServiceError | None = None
        self._outage: Outage | None = None
        self._reader: ReplyReader | None = None
        self._workload = 0
        self._tasks_sent = self._jobs_sent = 0
        self._outbox: Outbox[JobWait] = Outbox(
            self._send_chunk, fixed=self.batch, budget_s=_BATCH_BUDGET_S, limit=self._max_tasks_out
        )

    @classmethod
    def validate(cls, config: ExecutorConfig, external_redis: bool) -> None:
        pool = config.options.get("celery_pool", "prefork")
        if pool not in POOLS:
            raise InputError(f"--celery-pool: choose one of {', '.join(POOLS)}, not {pool!r}")
        if config.expect_workers and config.options.get("celery_workers", config.workers):
            raise InputError("--expect-workers waits for a cluster's nodes: use it with --celery-workers 0")
        if config.options.get("celery_workers", config.workers) == 0 and not external_redis:
            raise InputError(
                "--celery-workers 0 means 'use a cluster's workers', which needs REDIS_URL set to its Redis"
            )

    async def start(self) -> None:
        self._broker = self.services.redis_url()
        await asyncio.to_thread(check_redis, self._broker)
        visibility = max(0.5, self.config.timeout_s / 2)
        self._app = make_app(self._broker, queue=self._queue, visibility_timeout_s=visibility, socket_timeout_s=5.0)
        if self._node_count > 0:
            table = self.config.user_jobs  # the user's jobs: the exact table, and their import path
            env = {"REDIS_URL": self._broker, "RUNNER_QUEUE": self._queue}
            env["RUNNER_VISIBILITY_TIMEOUT"] = f"{visibility:g}"
            self._local = LocalNodes(env | (table.env() if table else {}), paths=table.paths if table else ())
            name = f"w{{i}}-{self._run_id}@%h"
            spec = NodeSpec(name, pool=self._pool, concurrency=self._per_node(), queue=self._queue)
            self._local.start(spec, self._node_count)
        await asyncio.to_thread(self._wait_for_workers)
        if self._local is not None and self.config.user_jobs:
            await asyncio.to_thread(self._wait_for_setup)
        self._facts = await asyncio.to_thread(self._survey, visibility)
        import redis.asyncio as redis_async

        self._redis = redis_async.Redis.from_url(self._broker, socket_connect_timeout=3.0, socket_timeout=5.0)
        self._publisher = Publisher(self._redis, self._queue)
        self._outage = Outage(
            self._redis,
            self._broker,
            max(1.0, self.config.timeout_s / 2),
            on_restart=self._resend_waiting,
            on_give_up=self._fail,
        )
        self._outage.server_id = await server_id(self._redis)

    def _wait_for_workers(self) -> None:
        local = self._local is not None
        want = self._node_count if local else max(1, self.config.expect_workers)
        limit_s = _READY_TIMEOUT_S if local else (self.config.wait_s if self.config.expect_workers else 10.0)
        self._nodes = answering_nodes(
            self._app, want, limit_s, self._local, self._run_id, self.config.expect_workers, self._broker
        )
        if not local:
            self._slots = cluster_slots(self._app, self._nodes)

    def _wait_for_setup(self) -> None:
        """Every process that runs user jobs loaded them (prefork: each child; else each node), or
        the run stops here, before timing, with the first one's error -- as a pool's warm-up does."""
        assert self._local is not None
        processes = self._node_count * (self._per_node() if self._pool == "prefork" else 1)
        error = wait_for_setup(self._broker, self._queue, processes, _READY_TIMEOUT_S, self._local)
        if error:
            raise SetupFailed(error)

    def _survey(self, visibility_s: float) -> dict[str, dict[str, Any]]:
        """Ask every node what it is, and set its redelivery time to this run's."""
        return survey(self._app, self._nodes, visibility_s, announce=self._broker if self.config.expect_workers else "")

    async def node_figures(self) -> list[dict[str, Any]]:
        try:
            answers = await asyncio.to_thread(ask_nodes, self._app, self._nodes)
        except broker_errors():
            return []  # the broker is gone: the run says so already
        return [answers[name] for name in sorted(answers)]

    def worker_calibrations(self) -> dict[str, Calibration]:
        return rates_of(self._facts)

    def _per_node(self) -> int:
        """Jobs one local node runs at once: one per prefork child; threads and greenlets are
        sized to share the in-flight window, as one would size them for I/O."""
        if self._pool == "prefork":
            return 1
        return max(1, -(-self.config.concurrency // max(1, self._node_count)))

    async def begin_workload(self) -> None:
        """A fresh reply list per workload, so late replies of the last one are never counted as
        duplicates of this one's (job ids restart at 0)."""
        if self._reader is not None:
            await self._reader.stop()
        await asyncio.to_thread(ask_nodes, self._app, self._nodes, reset=True)  # each node's CPU and RSS from now
        self._workload += 1
        self._answered = bytearray()
        self._issued = 0
        self._extra.clear()
        self._outbox.reset_costs()
        self._tasks_sent = self._jobs_sent = 0
        assert self._outage is not None, "begin_workload before start"
        self._reader = ReplyReader(
            self._redis,
            f"runner:replies:{self._run_id}:{self._workload}",
            sent_ids=lambda: self._issued,
            on_reply=self._on_reply,
            on_broker_error=self._broker_lost,
            broker_errors=broker_errors(),
            on_fatal=self._fail,
        )
        self._reader.start()

    def _on_reply(self, reply: dict[str, Any]) -> None:
        if "first" in reply:
            settle(self._answered, self._extra, self._bulk, self._outbox, reply)
            return
        job_id = reply["id"]
        if job_id >= len(self._answered):
            self._answered.extend(bytes(max(job_id + 1 - len(self._answered), 1024)))
        if self._answered[job_id]:
            self._extra[job_id] = self._extra.get(job_id, 0) + 1
            return
        self._answered[job_id] = 1
        pending = self._pending.get(job_id)
        if pending is None:
            return  # its job timed out meanwhile
        if "service_s" in reply:
            self._outbox.note_cost(pending.job.kind, float(reply["service_s"]))
        if not pending.future.done():
            pending.future.set_result(reply)

    def _fail(self, error: ServiceError) -> None:
        """The run cannot go on: every waiting job, and every later one, fails with ``error``."""
        if self._fatal is None:
            self._fatal = error
        futures: list[asyncio.Future[Any]] = [p.future for p in self._pending.values()]
        futures += [b.future for b in self._bulk.values()]
        for future in futures:
            if not future.done():
                future.set_exception(self._fatal)

    def _send(self, jobs: list[Job]) -> None:
        assert self._reader is not None, "run before begin_workload"
        single = len(jobs) == 1
        self._app.send_task(
            TASK_NAME if single else BATCH_TASK_NAME,
            args=[jobs[0].to_wire() if single else [job.to_wire() for job in jobs], self._reader.key],
            queue=self._queue,
            task_id=f"{self._run_id}-{self._workload}-{jobs[0].id}" + ("" if single else f"+{len(jobs) - 1}"),
            time_limit=self._time_limit,  # frees a worker stuck on a hung job, before redelivery could
            retry=False,  # an unreachable broker is handled here, without blocking the event loop
        )
        self._tasks_sent += 1
        self._jobs_sent += len(jobs)

    def _send_chunk(self, chunk: list[JobWait]) -> bool:
        """The outbox's ``send``: False while the broker is away (the chunk waits for recovery)."""
        assert self._outage is not None
        if not self._outage.healthy.is_set() or self._fatal is not None:
            return False
        try:
            self._send([p.job for p in chunk])
        except broker_errors() as exc:
            self._outage.start(exc).add_done_callback(lambda _: self._outbox.kick())
            return False
        TaskWait.mark(chunk)
        return True

    def _max_tasks_out(self) -> int:
        """Tasks in the broker or on workers at once: enough to keep every worker slot busy with
        one task running and one prefetched, and no more."""
        return 2 * max(1, self._slots)

    def _job_settled(self, pending: JobWait) -> None:
        """A job has its reply (or is given up): its task is done when all its jobs are."""
        batch, pending.batch = pending.batch, None
        if batch is not None:
            batch.left -= 1
            if batch.left == 0:
                self._outbox.task_done()

    async def run(self, job: Job) -> JobReport:
        if self._fatal is not None:
            raise self._fatal
        pending = JobWait(asyncio.get_running_loop().create_future(), job)
        self._pending[job.id] = pending
        self._issued = max(self._issued, job.id + 1)
        try:
            if self._outbox.batch_size(job.kind) > 1 or self._outbox.full() or self._outbox.waiting(job.kind):
                # Sent as worker slots free up, in a batch if the kind is cheap. Jobs wait in the
                # outbox rather than in the broker's queue, where they could no longer be batched.
                pending.queued = True
                self._outbox.put(job.kind, pending)
            while not pending.sent and not pending.queued:
                assert self._outage is not None
                await self._outage.healthy.wait()
                if self._fatal is not None:
                    raise self._fatal
                try:
                    self._send([pending.job])
                    TaskWait.mark([pending])
                    self._outbox.count_out()
                except broker_errors() as exc:
                    await self._broker_lost(exc)
            reply = await pending.future
        finally:
            del self._pending[job.id]
            if pending.queued and not pending.sent:
                self._outbox.remove(job.kind, pending)  # timed out (or stopped) while waiting to be sent
            self._job_settled(pending)
        if "error" in reply:
            raise JobFailed(reply["error"])
        if "form" in reply:  # a user job's
            self.tally.note_reply(job.kind, reply, str(reply["worker"]))
        return JobReport(float(reply["service_s"]), str(reply["worker"]), cpu_seconds(reply.get("cpu_s")))

    async def _broker_lost(self, exc: BaseException) -> None:
        """Wait until the broker is back (one recovery for everyone who noticed), or give up."""
        assert self._outage is not None
        self._outage.start(exc)
        await self._outage.healthy.wait()
        if self._fatal is not None:
            raise self._fatal

    async def _resend_waiting(self) -> None:
        """The broker restarted empty: send again every job that went out and has no reply."""
        for pending in list(self._pending.values()):
            if pending.sent and not pending.future.done():
                await asyncio.to_thread(self._send, [pending.job])
        for bulk in list(self._bulk.values()):
            if bulk.sent and not bulk.future.done():
                await self._send_compact(bulk.batch)

    def extra_runs(self) -> dict[int, int]:
        return dict(self._extra)

    async def stop(self) -> None:
        try:  # the reading side first; the nodes are stopped whatever happens to it
            if self._outage is not None:
                await self._outage.stop()
            if self._reader is not None:
                reader, self._reader = self._reader, None
                await reader.stop()
            if self._redis is not None:
                client, self._redis = self._redis, None
                await client.aclose()
        finally:
            if self._local is not None:
                await asyncio.to_thread(self._local.stop)
                if self._app is not None:
                    await asyncio.to_thread(self._drop_queue)
            if self._app is not None:
                self._app.close()
                self._app = None

    def _drop_queue(self) -> None:
        """Delete this run's own queue and its kombu bindings (never a cluster's shared queue):
        nothing of the run stays in a Redis the user runs. Best effort: the broker may be gone."""
        with contextlib.suppress(*broker_errors()), self._app.connection_for_write() as conn:
            queue = self._app.amqp.queues[self._queue].bind(conn.default_channel)
            queue.declare()  # kombu deletes only the bindings this channel knows of
            queue.delete()

    def worker_pids(self) -> list[int]:
        return self._local.pids() if self._local is not None else []

    def capacity(self, cores: int) -> Capacity:
        if self._facts:  # the nodes' own figures, wherever they run
            return capacity_of(list(self._facts.values()))
        nodes = max(1, self._node_count or len(self._nodes))
        processes = self._slots if self._pool == "prefork" else nodes  # one GIL per process
        threads = self._slots if self._pool != "gevent" else nodes  # greenlets share one thread
        return Capacity(self._slots, min(processes, cores), min(threads, cores))

    def describe(self) -> dict[str, Any]:
        return {
            "concurrency": self.config.concurrency,
            "workers": self._node_count,
            "nodes": self._nodes,
            "broker": redact(self._broker),
            "pool": self._pool,
            "batching": {
                "batch": self.batch or "auto",
                "tasks_sent": self._tasks_sent,
                "jobs_per_task": round(self._jobs_sent / max(1, self._tasks_sent), 2),
            },
            "prefetch": 1,
        }
