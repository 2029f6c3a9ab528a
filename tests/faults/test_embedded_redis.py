"""The embedded Redis is closed to other local users: it needs a per-run password, the commands that
write files or reconfigure the server are gone for every client, and the password appears in no
command line, output or file the run leaves."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import redis

from runner.engine.services import LocalServices
from tests.faults.helpers import ROOT

_SUBMIT = [sys.executable, "-m", "runner", "submit"]
_MIX = ["--mix", "sleep=1,redis=1", "--io-ms", "20"]
_DANGEROUS = [
    ("CONFIG", "SET", "dir", "/tmp"),
    ("SAVE",),
    ("BGSAVE",),
    ("MODULE", "LIST"),
    ("DEBUG", "SLEEP", "0"),
    ("SHUTDOWN", "NOSAVE"),
    ("REPLICAOF", "127.0.0.1", "1"),
    ("ACL", "LIST"),
]


def test_embedded_redis_needs_its_password_and_refuses_dangerous_commands() -> None:
    with LocalServices() as services:
        url = services.redis_url()
        parts = urlsplit(url)
        assert parts.password and len(parts.password) >= 24 and parts.port is not None
        anonymous = redis.Redis(host="127.0.0.1", port=parts.port, socket_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("k", "v")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(parts.password, "guess"), socket_timeout=2).ping()
        client = redis.Redis.from_url(url, socket_timeout=2)
        assert client.ping()
        for command in _DANGEROUS:
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command)  # type: ignore[no-untyped-call]  # untyped in redis-py
        assert client.ping()  # SHUTDOWN did nothing

        listening = [
            p for p in psutil.process_iter(["cmdline"]) if f":{parts.port}" in " ".join(p.info["cmdline"] or [])
        ]
        server = listening[0]
        assert parts.password not in " ".join(server.cmdline())
        folder = Path(server.cwd())  # redis-server works in its --dir, where its config file is
        assert (folder / "redis.conf").is_file()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        for entry in folder.iterdir():
            assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0, entry


def test_a_celery_run_on_the_embedded_redis_leaks_the_password_nowhere(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TARGET_URL")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            *_SUBMIT,
            "--mode",
            "celery",
            "--celery-workers",
            "2",
            "--jobs",
            "300",
            "--mix",
            "sleep=1,redis=1",
            "--io-ms",
            "20",
            "--json",
            "--out",
            str(tmp_path),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    password, command_lines = "", []
    deadline = time.monotonic() + 60
    while not password and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        with_children = psutil.Process(proc.pid).children(recursive=True)
        for child in with_children:
            try:
                command_lines.append(" ".join(child.cmdline()))
                if "redis-server" in child.name():
                    password = next(
                        line.split()[1]
                        for line in (Path(child.cwd()) / "redis.conf").read_text().splitlines()
                        if line.startswith("requirepass ")
                    )
            except (psutil.NoSuchProcess, FileNotFoundError, StopIteration):
                continue
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert password, "the run's embedded Redis was not seen"
    assert json.loads(out)["jobs"]["done"] == 300
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    for text in (out, err, written, *command_lines):
        assert password not in text
