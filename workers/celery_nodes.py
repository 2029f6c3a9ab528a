"""Celery worker nodes started on this machine: the command line, start, wait until they answer,
stop. The one copy used by the executor (local nodes), the tests (a cluster-like node) and the
benchmarks (the hand-written baseline's nodes).

Each node runs in a session of its own, so stopping it (or a fault test killing it) reaches its
prefork children as well; its output goes to a log file whose tail explains a failed start.
Celery itself is imported only by ``wait_until_answering``'s caller, which passes its app.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers import lifeline
from workers.clients import redact
from workers.errors import ServiceError
from workers.options import Option
from workers.scratch import scratch_dir

POOLS = ("prefork", "threads", "gevent")  # what ``--celery-pool`` accepts: the executor's choices
# The Celery executor's own options (``CeleryExecutor.options``), here so that reading them imports no Celery.
OPTIONS = (
    Option(
        "celery_workers",
        "Local Celery worker nodes to start (celery mode); 0 = use a cluster's (needs REDIS_URL).",
        None,
        bounds=(0, 1024),
    ),
    Option(
        "celery_pool",
        "Pool of the local Celery nodes (celery mode): prefork (one child each), threads or gevent "
        "(--concurrency / nodes each).",
        "prefork",
        choices=POOLS,
    ),
)
APP = "workers.celery_app"
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class NodeSpec:
    """How to start each node; ``name`` may hold ``{i}`` (the node's index) and Celery's ``%h``."""

    name: str
    app: str = APP
    pool: str = "prefork"
    concurrency: int = 1
    queue: str | None = None  # None: the app's default queue
    heartbeat: bool = False  # a cluster's nodes keep it; runner's own nodes need none
    loglevel: str = "WARNING"

    def command(self, index: int = 0) -> list[str]:
        cmd = [sys.executable, "-m", "celery", "-A", self.app, "worker", "--pool", self.pool]
        cmd += ["--concurrency", str(self.concurrency), "-n", self.name.format(i=index)]
        if self.queue is not None:
            cmd += ["-Q", self.queue]
        cmd += ["--without-gossip", "--without-mingle"]
        if not self.heartbeat:
            cmd.append("--without-heartbeat")
        return [*cmd, "--loglevel", self.loglevel]


class LocalNodes:
    """Nodes started here, and everything needed to stop them: a failed start stops them too.

    ``env`` is added to this process's environment; ``paths`` go in front of PYTHONPATH (the
    project root always does, so ``-A workers.celery_app`` imports from any directory). The nodes
    die with this process even if it is killed (``workers.lifeline``)."""

    def __init__(self, env: dict[str, str], paths: tuple[str, ...] = ()) -> None:
        pythonpath = [*paths, PROJECT_ROOT, os.environ.get("PYTHONPATH", "")]
        pythonpath_text = os.pathsep.join(filter(None, pythonpath))
        self._env = {**os.environ, **env, **lifeline.child_env(), "PYTHONPATH": pythonpath_text}
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logdir: str | None = None
        self._stopped = False

    def start(self, spec: NodeSpec, count: int) -> None:
        self._logdir = self._logdir or scratch_dir("celery")  # removed by the next run if this one is killed
        # The nodes' temp dir too: the prefork pool's pymp-* folders would outlive a killed run in /tmp.
        env = {**self._env, "TMPDIR": self._logdir}
        for i in range(count):
            with open(Path(self._logdir) / f"w{len(self.procs)}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        spec.command(i), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )

    def check_running(self) -> None:
        if self._stopped:  # stopped while a thread still waits for them to answer: end that wait
            raise ServiceError("the Celery workers were stopped while starting")
        for proc in self.procs:
            if proc.poll() is not None:
                raise ServiceError(f"a Celery worker exited at start (code {proc.returncode}): {self.log_tail()}")

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def log_tail(self) -> str:
        lines: list[str] = []
        if self._logdir is not None:
            for log in sorted(Path(self._logdir).glob("*.log")):
                lines += [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return " | ".join(lines[-3:]) or "no output"

    def stop(self, grace_s: float = 5.0) -> None:
        """Warm shutdown (the current job may finish), then SIGKILL to each node's whole group,
        which also ends prefork children left behind. Safe to call twice."""
        self._stopped = True
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        if self._logdir is not None:  # the logs only serve error messages at start
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None


def wait_until_answering(
    app: Any, want: int, timeout_s: float, *, nodes: LocalNodes | None = None, marker: str = ""
) -> list[str] | None:
    """Ping until ``want`` nodes (whose names contain ``marker``) answer; their names, or None on
    timeout. A local node that exits meanwhile raises ServiceError at once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if nodes is not None:
            nodes.check_running()
        replies = app.control.ping(timeout=0.5)
        names = sorted(name for reply in replies for name in reply if marker in name)
        if len(names) >= want:
            return names
    return None


def answering_nodes(
    app: Any, want: int, limit_s: float, local: LocalNodes | None, run_id: str, expect: int, broker: str
) -> list[str]:
    """The names of the nodes that answer: this run's ``local`` ones, else ``want`` of a cluster's
    (``expect``: --expect-workers). ServiceError saying what is missing if they do not within ``limit_s``."""
    names = wait_until_answering(app, want, limit_s, nodes=local, marker=run_id if local is not None else "")
    if names is not None:
        return names
    if local is not None:
        raise ServiceError(f"Celery workers did not answer within {limit_s:.0f} s: {local.log_tail()}")
    if expect:
        found = sorted(name for reply in app.control.ping(timeout=0.5) or [] for name in reply)
        raise ServiceError(
            f"--expect-workers {want}: {len(found)} Celery node(s) answered on {redact(broker)} "
            f"within {limit_s:g} s{': ' + ', '.join(found) if found else ''}"
        )
    raise ServiceError(
        f"no Celery worker answered on {redact(broker)}; start some with "
        "`celery -A workers.celery_app worker` (REDIS_URL set), or pass --celery-workers N to start local ones"
    )


def setup_key(queue: str) -> str:
    """The list on which a local node's processes say whether they loaded the user's jobs."""
    return f"runner:user-setup:{queue}"


def wait_for_setup(redis_url: str, queue: str, processes: int, timeout_s: float, nodes: LocalNodes) -> str:
    """Wait until ``processes`` worker processes said whether they loaded the user's jobs (and ran
    ``--setup``); the first failure's message, or "" when all did."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3.0, socket_timeout=5.0)
    key, told = setup_key(queue), 0
    deadline = time.monotonic() + timeout_s
    try:
        while told < processes:
            nodes.check_running()
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{processes - told} Celery worker process(es) did not load the user jobs within "
                    f"{timeout_s:.0f} s: {nodes.log_tail()}"
                )
            got: Any = client.blpop([key], timeout=1)
            if got is not None:
                told += 1
                if got[1]:
                    return got[1].decode(errors="replace") if isinstance(got[1], bytes) else str(got[1])
        return ""
    finally:
        client.delete(key)
        client.close()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def cluster_slots(app: Any, nodes: list[str]) -> int:
    """Worker processes across a cluster's nodes, from each node's pool size."""
    stats = app.control.inspect(destination=nodes, timeout=1.0).stats() or {}
    sizes = [int(s.get("pool", {}).get("max-concurrency", 1)) for s in stats.values()]
    return max(len(nodes), sum(sizes))
