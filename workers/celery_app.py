"""The Celery app that runner's workers run: ``celery -A workers.celery_app worker``.

Configured from the environment: ``REDIS_URL`` (broker; replies go to the same Redis),
``RUNNER_QUEUE`` (default ``runner``), ``RUNNER_CELERY_PREFETCH`` (default 1) and
``RUNNER_VISIBILITY_TIMEOUT`` (seconds an unacknowledged job stays invisible before Redis hands it
to another worker; only the starting value: the coordinator sets it to half its ``--timeout`` on
every node as a run starts, with ``runner_node`` below).

Messages are JSON only: a pickled message is rejected, never run. Jobs are acknowledged late, so
a crash loses no job -- at the price of a possible second run, which the coordinator counts as a
duplicate:

- a prefork child that dies mid-job (WorkerLostError): the job is sent again once
  (``retry_on_worker_lost``, ``max_retries=1``); if that run dies too, the worker replies
  "worker died" so the coordinator records a failure instead of waiting for its timeout.
- a whole node that dies: its unacknowledged message becomes visible again after
  the visibility timeout and another node runs it (surviving nodes sweep every second).
- the broker going away: workers reconnect for as long as it takes (the coordinator bounds it).

Each node answers the remote-control command ``runner_node`` (``workers.node_stats``): its host,
cores, pool, Python and CPU model, its visibility timeout, its own calibration (measured in its
main process as it starts, before it answers pings; its pool's processes run the same interpreter
on the same host), and the CPU seconds and peak RSS it used since the last call with ``reset`` --
so the coordinator measures nodes on any host.

The task does not use Celery's result backend: it pushes a small JSON reply onto a Redis list the
coordinator named, so the coordinator's ledger sees every run of every job, duplicates included.

User jobs (``workers.user_jobs``): a node loads the table runner handed it (``RUNNER_USER_JOBS``)
before it takes work -- in each prefork child, or once in the node's process for the threads and
gevent pools -- and refuses any kind not in it. A node started on its own loads a job a message
names only from a module under its ``RUNNER_JOBS_DIR`` (unset: every user job is refused). A
message never makes a node import anything else. The sync form is called (an async-only function
runs in the worker's own loop); the result is JSON-encoded, measured and dropped; the first reply
of each process carries its import and setup times.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import sys
import time
from array import array
from typing import Any

from celery import Celery, Task, signals
from celery.worker.control import control_command

from workers import lifeline
from workers.bulk import Batch, run_batch_sync
from workers.calibration import Calibration, calibrate
from workers.celery_bulk import COMPACT_TASK_NAME
from workers.celery_compact import compact_reply
from workers.celery_green import RedeliverySweep, size_pool
from workers.celery_nodes import setup_key
from workers.clients import SyncClients
from workers.errors import InputError, JobFailed
from workers.jobs import KINDS, WORKER_DIED, Job, result_of, run_sync
from workers.node_stats import NodeMeter, describe_node
from workers.user_jobs import ENV as USER_JOBS_ENV

TASK_NAME = "runner.run_job"
BATCH_TASK_NAME = "runner.run_batch"
DEFAULT_QUEUE = "runner"

_clients = SyncClients(pool_size=4)  # per worker process; connections open on first use
_REPLY_TTL_S = 86_400
_BUILTIN = frozenset(KINDS)
# Per worker process: the user's jobs (loaded before work starts), and its import and setup
# times, sent once with its first reply.
_user: Any = None
_user_setup: dict[str, Any] | None = None


def make_app(
    broker_url: str,
    *,
    queue: str = DEFAULT_QUEUE,
    prefetch: int = 1,
    visibility_timeout_s: float = 3600.0,
    socket_timeout_s: float | None = None,
) -> Celery:
    """The app; ``socket_timeout_s`` bounds a send to a broker that accepts but never answers (the
    coordinator sets it; workers leave it unset, their reads are event-driven)."""
    from workers.urls import credentials_in_userinfo

    app = Celery("runner", broker=credentials_in_userinfo(broker_url), set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # the fallback if sending the retry below fails
        task_retry_on_worker_lost=True,
        worker_prefetch_multiplier=prefetch,
        worker_lost_wait=0.5,  # a dead prefork child's job is reported lost after 0.5 s, not 10 s
        task_ignore_result=True,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,  # keep reconnecting; the coordinator decides when to give up
        broker_connection_timeout=3.0,
        broker_transport_options={
            "visibility_timeout": visibility_timeout_s,
            "unacked_restore_interval": 1,  # sweep for a dead node's messages every second...
            "unacked_restore_throttle": 1,  # ...not every 10 x 10 s
            "unacked_mutex_expire": 10,  # a node killed mid-sweep blocks sweeps for 10 s, not 5 min
            "socket_connect_timeout": 3.0,
            "socket_timeout": socket_timeout_s,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    # One more run after the worker process died running it; then "worker died" (see below).
    app.task(name=TASK_NAME, bind=True, max_retries=1, default_retry_delay=0)(run_job)
    app.task(name=BATCH_TASK_NAME, bind=True, max_retries=1, default_retry_delay=0)(run_batch)
    app.task(name=COMPACT_TASK_NAME, bind=True, max_retries=1, default_retry_delay=0)(run_compact)
    app.steps["consumer"].add(RedeliverySweep)  # a no-op where Celery's event loop sweeps already
    return app


def run_job(task: Task, wire: list[Any], reply_key: str) -> None:
    """Run one job and push its outcome to ``reply_key``; failures are data, not exceptions."""
    worker = task.request.hostname or socket.gethostname()
    _push(task.app.conf.broker_url, reply_key, [_outcome(Job.from_wire(wire), worker)])


def run_batch(task: Task, wires: list[list[Any]], reply_key: str) -> None:
    """Run small jobs one after another and push their outcomes together: one task, one broker
    round trip and one reply push for many jobs whose own cost is far below a task's. Each reply
    still carries the job's own service time."""
    worker = task.request.hostname or socket.gethostname()
    _push(task.app.conf.broker_url, reply_key, [_outcome(Job.from_wire(wire), worker) for wire in wires])


def run_compact(task: Task, batch: list[Any], reply_key: str) -> None:
    """A batch sent as its parameters; one reply with every job's service time and failures."""
    worker = task.request.hostname or socket.gethostname()
    run = _compact_batch(batch)
    service, failed, cpu = run_batch_sync(run, _clients, check=json.dumps)
    _push(task.app.conf.broker_url, reply_key, [compact_reply(run, worker, service, failed, cpu)])


def _compact_batch(batch: list[Any]) -> Batch:
    return Batch(int(batch[0]), int(batch[1]), str(batch[2]), float(batch[3]), int(batch[4]), str(batch[5]))


def _outcome(job: Job, worker: str) -> str:
    try:
        if job.kind not in _BUILTIN:
            return _user_outcome(job, worker)
        cpu_began = time.thread_time()
        service_s = run_sync(job, _clients)
        cpu_s = time.thread_time() - cpu_began  # for the coordinator's after-run calibration check
        reply = {"id": job.id, "worker": worker, "service_s": service_s, "result": result_of(job), "cpu_s": cpu_s}
        return json.dumps(reply)
    except JobFailed as exc:
        return json.dumps({"id": job.id, "worker": worker, "error": exc.reason})
    except Exception as exc:  # reported to the coordinator's ledger, not raised into Celery
        return json.dumps({"id": job.id, "worker": worker, "error": f"{type(exc).__name__}: {exc}"})


def _user_outcome(job: Job, worker: str) -> str:
    global _user_setup
    if _user is None:
        _load_user_jobs()
    if isinstance(_user, str):  # the table did not load in this process
        raise JobFailed(_user)
    service_s, form, nbytes = _user.call_sync(job.kind, job.target, job.payload)
    reply: dict[str, Any] = {"id": job.id, "worker": worker, "service_s": service_s, "form": form, "bytes": nbytes}
    if _user_setup is not None:
        reply["setup"], _user_setup = {"worker": f"{worker} pid-{os.getpid()}", **_user_setup}, None
    return json.dumps(reply)


def _load_user_jobs(**_: Any) -> None:
    """This process's user jobs, from the table runner handed the node (or RUNNER_JOBS_DIR)."""
    global _user, _user_setup
    from workers.user_calls import caller_from_environment

    error = ""
    try:
        _user, figures = caller_from_environment("json")
        _user_setup = figures or None
    except Exception as exc:  # every user job of this process fails with it, one line each
        _user = f"user jobs did not load on this worker: {exc}"
        error = str(exc)
    _report_setup(error)


def _report_setup(error: str) -> None:
    """A node that runner started with the user's table tells the coordinator, before it takes any
    job, whether this process loaded it: an empty line, or what went wrong -- so a ``--setup`` that
    raises stops the run before timing, as in the other executors (``CeleryExecutor.start``)."""
    if not os.environ.get(USER_JOBS_ENV) or not os.environ.get(lifeline.ENV):
        return  # a cluster's node: nobody waits for this
    with contextlib.suppress(Exception):  # the broker is away: the coordinator's wait says so
        _push(app.conf.broker_url, setup_key(str(app.conf.task_default_queue)), [error])


def _load_in_node(instance: Any = None, **_: Any) -> None:
    """Threads and gevent pools run jobs in the node's own process: load there, before work.
    Prefork children load their own (``worker_process_init``), after the fork. A green pool's
    broker connections are sized here too, before the consumer connects."""
    if instance is not None:
        size_pool(instance)
    pool = getattr(instance, "pool_cls", None)
    module = getattr(pool, "__module__", "") or ""
    if not module.endswith(("prefork", "solo")):
        _load_user_jobs()


def _push(broker: str, reply_key: str, bodies: list[str] | list[bytes]) -> None:
    pipe = _clients.redis(broker).pipeline(transaction=False)
    pipe.rpush(reply_key, *bodies)
    pipe.expire(reply_key, _REPLY_TTL_S)  # replies nobody reads (a stopped run) do not pile up
    pipe.execute()


def _worker_died_twice(sender: Any = None, exception: BaseException | None = None, args: Any = None, **_: Any) -> None:
    """In the worker's main process: a job whose process died on its retry too gets a reply, so the
    coordinator records "worker died" now rather than a timeout later."""
    from celery.exceptions import WorkerLostError

    name = getattr(sender, "name", None)
    if name not in _TASKS or not isinstance(exception, WorkerLostError) or not args:
        return
    worker = getattr(getattr(sender, "request", None), "hostname", None) or socket.gethostname()
    if name == COMPACT_TASK_NAME:
        batch = _compact_batch(args[0])
        zeros = array("d", bytes(8 * batch.size))
        reply = compact_reply(batch, worker, zeros, dict.fromkeys(range(batch.size), WORKER_DIED))
        _push(sender.app.conf.broker_url, args[1], [reply])
        return
    wires, reply_key = ([args[0]] if name == TASK_NAME else args[0]), args[1]
    bodies = [json.dumps({"id": int(wire[0]), "worker": worker, "error": WORKER_DIED}) for wire in wires]
    _push(sender.app.conf.broker_url, reply_key, bodies)


_TASKS = (TASK_NAME, BATCH_TASK_NAME, COMPACT_TASK_NAME)
signals.task_failure.connect(_worker_died_twice, weak=False)

_meter: NodeMeter | None = None  # this node's, made on the first runner_node call
_rate: Calibration | None = None  # this node's own, measured as it starts (_calibrate_node)


@control_command(  # type: ignore[untyped-decorator]
    args=[("reset", bool), ("visibility_s", float)], signature="[reset=False] [visibility_s=0]"
)
def runner_node(state: Any, reset: bool = False, visibility_s: float = 0.0) -> dict[str, Any]:
    """Remote control, in the node's main process: what it is and what it used since a reset.
    ``visibility_s`` > 0 sets the node's visibility timeout from now on, so the coordinator's
    ``--timeout`` governs redelivery whatever RUNNER_VISIBILITY_TIMEOUT the node started with."""
    global _meter
    if _meter is None:
        _meter = NodeMeter()
        _meter.start()
    consumer = state.consumer
    if visibility_s > 0:
        _set_visibility(consumer, visibility_s)
    pool = type(consumer.pool).__module__.rsplit(".", 1)[-1]  # celery.concurrency.<prefork|thread|...>
    concurrency = int(getattr(consumer.controller, "concurrency", 0) or 1)
    visibility = float(consumer.app.conf.broker_transport_options.get("visibility_timeout", 3600.0))
    facts = describe_node(state.hostname, {"thread": "threads"}.get(pool, pool), concurrency, visibility)
    if _rate is not None:
        facts["calibration"] = _rate.to_dict()
    return facts | _meter.reading(reset)


def _set_visibility(consumer: Any, seconds: float) -> None:
    """The sweeps that hand a dead node's jobs to another run on the node's channels: kombu's Redis
    transport reads ``channel.visibility_timeout`` through its QoS, which caches it, so the cached
    value goes too. The options serve the connections a reconnect makes."""
    consumer.app.conf.broker_transport_options["visibility_timeout"] = seconds
    connection = consumer.connection
    if connection is None:
        return
    connection.transport_options["visibility_timeout"] = seconds
    transport = getattr(connection, "connection", None)  # kombu's virtual transport holds the channels
    for channel in getattr(transport, "channels", None) or []:
        channel.visibility_timeout = seconds
        qos = getattr(channel, "_qos", None)
        if qos is not None:
            vars(qos).pop("visibility_timeout", None)  # a cached_property's value


def _hold_node(**_: Any) -> None:
    """A node that runner started dies with the coordinator (and takes its prefork children)."""
    lifeline.hold_if_child()


def _hold_child(**_: Any) -> None:
    """A prefork child of such a node dies with the node."""
    if os.environ.get(lifeline.ENV):
        lifeline.hold()


def _calibrate_node(**_: Any) -> None:
    """The node's own rate, before it consumes or answers anything (so before timing starts)."""
    global _rate
    _rate = calibrate()


signals.worker_init.connect(_hold_node, weak=False)
signals.worker_init.connect(_calibrate_node, weak=False)
signals.worker_process_init.connect(_hold_child, weak=False)
signals.worker_process_init.connect(_load_user_jobs, weak=False)
signals.celeryd_after_setup.connect(_load_in_node, weak=False)


def settings_from_environment() -> dict[str, Any]:
    """``make_app``'s keyword arguments from the environment, each checked: InputError (one line,
    secrets hidden) on a value that cannot be meant, such as ``RUNNER_CELERY_PREFETCH=abc``."""
    from workers.urls import check_redis_url

    broker = os.environ.get("REDIS_URL") or "redis://localhost:6379/0"
    check_redis_url(broker)
    queue = os.environ.get("RUNNER_QUEUE", DEFAULT_QUEUE)
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,200}", queue, re.ASCII):
        raise InputError(f"RUNNER_QUEUE: expected 1 to 200 letters, digits or _ . : @ -, got {queue[:60]!r}")
    prefetch = _env_number("RUNNER_CELERY_PREFETCH", "1", whole=True, low=1, high=10_000)
    visibility = _env_number("RUNNER_VISIBILITY_TIMEOUT", "3600", whole=False, low=0.5, high=30 * 86_400)
    return {"broker_url": broker, "queue": queue, "prefetch": int(prefetch), "visibility_timeout_s": visibility}


def _env_number(name: str, default: str, *, whole: bool, low: float, high: float) -> float:
    text = os.environ.get(name) or default
    pattern = r"[0-9]+" if whole else r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
    value = float(text) if re.fullmatch(pattern, text, re.ASCII) else math.nan
    if not low <= value <= high:  # nan (not a number) fails this too
        kind = "a whole number" if whole else "a number of seconds"
        raise InputError(f"{name}: expected {kind} from {low:g} to {high:.0f}, got {text[:60]!r}")
    return value


def _app_or_exit() -> Celery:
    """The worker's app. A bad setting ends ``celery -A workers.celery_app worker`` with one line and
    exit 2, like runner's own commands (Celery would print a traceback); the coordinator, which
    imports this module too, gets the InputError and reports it the same way."""
    try:
        return make_app(**settings_from_environment())
    except InputError as exc:
        if _started_by_celery():
            print(f"runner: error: {exc}", file=sys.stderr)
            os._exit(2)  # SystemExit would be caught and reported by Celery's app loader
        raise


def _started_by_celery() -> bool:
    return "celery" in sys.argv[0] and any(arg in ("-A", "--app") or arg.startswith("--app=") for arg in sys.argv)


app = _app_or_exit()
