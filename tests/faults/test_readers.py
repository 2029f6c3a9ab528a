"""Issue 10.4: no silent death of a background reader. A malformed reply -- injected into the real
reply list of a running Celery run, or written into the real pipe of a running gevent worker --
ends the run with exit 1 and one line naming the cause, never "N timed_out, exit 0"."""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from tests.faults.helpers import ROOT, RestartableRedis

_SYS_PIDFD_GETFD = 438  # the same number on x86-64 and arm64


def _submit(mode: str, out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", mode, "--jobs", "1000000", "--mix", "sleep=1"]
    cmd += ["--io-ms", "20", "--concurrency", "8", "--workers", "2", "--timeout", "5", "--out", str(out)]
    env = dict(env, PYTHONPATH=str(ROOT))
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _wait_mid_run(proc: subprocess.Popen[bytes], out: Path) -> None:
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not ledger.exists() or ledger.stat().st_size < 5_000):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)


def _ends_with_one_line(proc: subprocess.Popen[bytes], *needles: str) -> str:
    _, stderr = proc.communicate(timeout=60)
    text = stderr.decode()
    errors = [line for line in text.splitlines() if line.startswith("runner: error:")]
    assert proc.returncode == 1, text
    assert "Traceback" not in text, text
    assert len(errors) == 1, text
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        (b"not json", "not JSON"),
        (b'{"id": 123456789, "worker": "intruder", "service_s": 0.001}', "job id 123456789 out of range"),
        (b'{"id": 0, "worker": "intruder"}', "neither 'error' nor 'service_s'"),
    ],
)
def test_malformed_celery_reply_stops_the_run(
    tmp_path: Path, restartable_redis: RestartableRedis, reply: bytes, cause: str
) -> None:
    client = redis.Redis.from_url(restartable_redis.url, decode_responses=True)
    proc = _submit("celery", tmp_path / "out", dict(os.environ, REDIS_URL=restartable_redis.url))
    try:
        _wait_mid_run(proc, tmp_path / "out")
        # The run's own queue is bound as runner.<run id>; its first workload replies to runner:replies:<run id>:1.
        bindings = [str(key) for key in client.keys("_kombu.binding.runner.*")]
        assert len(bindings) == 1, bindings
        run_id = bindings[0].rsplit(".", 1)[1]
        client.rpush(f"runner:replies:{run_id}:1", reply)
        _ends_with_one_line(proc, "malformed reply on the Celery reply list", cause)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        client.close()


def _stdout_of(pid: int) -> int:
    """A copy of process ``pid``'s fd 1 (pidfd_getfd, Linux 5.6+; a socket cannot be opened via /proc)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        fd = int(libc.syscall(_SYS_PIDFD_GETFD, pidfd, 1, 0))
    finally:
        os.close(pidfd)
    if fd < 0:
        pytest.skip(f"pidfd_getfd is not available here (errno {ctypes.get_errno()})")
    return fd


def _gevent_worker(coordinator: int) -> psutil.Process:
    for child in psutil.Process(coordinator).children():
        if "workers.gevent_worker" in " ".join(child.cmdline()):
            return child
    raise AssertionError("no gevent worker")


@pytest.mark.parametrize(
    ("line", "needles"),
    [
        (b"not json\n", ("malformed reply from the gevent worker", "not JSON")),
        (b'{"id": 99999999, "service_s": 0.1}\n', ("malformed reply from the gevent worker", "out of range")),
        # Longer than the reader's line limit: its read fails, which must stop the run all the same.
        (b"x" * (2 << 20), ("the gevent reply reader failed",)),
    ],
)
def test_bad_line_on_the_gevent_pipe_stops_the_run(tmp_path: Path, line: bytes, needles: tuple[str, ...]) -> None:
    proc = _submit("gevent", tmp_path / "out", dict(os.environ))
    try:
        _wait_mid_run(proc, tmp_path / "out")
        # The worker's stdout is the pipe (a socket pair) the coordinator reads: write into that very one.
        worker = _gevent_worker(proc.pid)
        pipe = _stdout_of(worker.pid)
        worker.suspend()  # its own replies must not interleave with ours
        try:
            view = memoryview(line)
            # Not writable for 2 s, or closed: the reader quit (the case of the over-long line).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while view and select.select([], [pipe], [], 2.0)[1]:
                    view = view[os.write(pipe, view) :]
        finally:
            os.close(pipe)
            with contextlib.suppress(psutil.NoSuchProcess):  # killed meanwhile, as it should be
                worker.resume()
        _ends_with_one_line(proc, *needles)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
