"""Point 6: a REDIS_URL or TARGET_URL that the workload's redis or http jobs would use is tried once
before timing starts. Not answering, or answering as something other than runner's target, ends
the run with one line and exit 1 -- instead of a run whose every job failed, with exit 0. --io-ms
above the target's delay cap is refused up front (exit 2)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engine.services import _free_port
from runner.engine.spec import TARGET_MAX_DELAY_MS
from tests.faults.helpers import ROOT, RestartableRedis

SECRET = "s3cretpw"
_SAFE = ["--jobs=3", "--io-ms=0", "--cpu-ms=0"]


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_") and k not in ("REDIS_URL", "TARGET_URL")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], capture_output=True, text=True, timeout=120, env=full, cwd=cwd
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    return lines[0]


@contextlib.contextmanager
def _http_server(status: int) -> Iterator[int]:
    """Something that speaks HTTP but is not runner's target: every request gets ``status``."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.recv(4096)
                conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("mode", ["async", "thread"])
def test_redis_jobs_with_an_unreachable_redis_url(mode: str, tmp_path: Path) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:{_free_port()}/0"
    proc = _run(["submit", *_SAFE, "--mode", mode, "--mix", "redis=1", "--out", "out"], {"REDIS_URL": url}, tmp_path)
    assert proc.returncode == 1
    line = _one_line(proc)
    assert "redis jobs: cannot reach Redis at redis://:***@127.0.0.1" in line and "REDIS_URL" in line
    assert not (tmp_path / "out" / "result.json").exists()  # no run, so no result that looks like one


def test_redis_jobs_with_a_wrong_password(tmp_path: Path) -> None:
    server = RestartableRedis()
    server.start("--requirepass", "the-right-one")
    try:
        url = f"redis://:{SECRET}@127.0.0.1:{server.port}/0"
        proc = _run(["submit", *_SAFE, "--mix", "redis=1"], {"REDIS_URL": url}, tmp_path)
    finally:
        server.close()
    assert proc.returncode == 1
    assert "redis jobs: cannot reach Redis" in _one_line(proc)


@pytest.mark.parametrize("mode", ["async", "process"])
def test_http_jobs_with_a_closed_target_url(mode: str, tmp_path: Path) -> None:
    env = {"TARGET_URL": f"http://user:{SECRET}@127.0.0.1:{_free_port()}"}
    proc = _run(["submit", *_SAFE, "--mode", mode, "--mix", "http=1", "--workers", "1"], env, tmp_path)
    assert proc.returncode == 1
    line = _one_line(proc)
    assert "http jobs: GET http://user:***@127.0.0.1" in line and "TARGET_URL" in line


@pytest.mark.parametrize("status", [404, 500])
def test_http_jobs_with_a_target_url_that_is_not_a_runner_target(status: int, tmp_path: Path) -> None:
    with _http_server(status) as port:
        proc = _run(["submit", *_SAFE, "--mix", "http=1"], {"TARGET_URL": f"http://127.0.0.1:{port}"}, tmp_path)
    assert proc.returncode == 1
    line = _one_line(proc)
    assert f"answered {status}" in line and "runner target" in line


def test_bench_checks_the_target_before_its_sweep(tmp_path: Path) -> None:
    env = {"TARGET_URL": f"http://127.0.0.1:{_free_port()}"}
    args = ["bench", "--modes", "async", "--mix", "h:http=1", "--repeats", "1", "--out", "out"]
    proc = _run(args, env, tmp_path)
    assert proc.returncode == 1
    assert "http jobs: GET" in _one_line(proc)


def test_a_reachable_target_passes_the_preflight(tmp_path: Path) -> None:
    """The check does not stand in the way of a good target (here, the local one runner starts)."""
    proc = _run(["submit", "--jobs=4", "--io-ms=1", "--cpu-ms=0", "--mix", "http=1,redis=1", "--json"], {}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["jobs"]["done"] == 4


@pytest.mark.parametrize("command", [["submit", "--jobs=1", "--mix", "http=1"], ["bench", "--modes", "async"]])
def test_io_ms_above_the_target_cap_is_refused_up_front(command: list[str], tmp_path: Path) -> None:
    proc = _run([*command, "--io-ms", str(TARGET_MAX_DELAY_MS + 1)], {}, tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc)
    assert "--io-ms" in line and str(TARGET_MAX_DELAY_MS) in line


def test_io_ms_above_the_cap_is_fine_without_http_jobs(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runner.cli.main import cli
    from runner.engine.spec import WorkloadSpec

    spec = WorkloadSpec.build({"mix": "sleep=1", "io_ms": TARGET_MAX_DELAY_MS + 1}, ("async",))
    assert spec.io_ms == TARGET_MAX_DELAY_MS + 1
    assert CliRunner().invoke(cli, ["submit", "--mix", "http=1", "--io-ms", "60000.5"]).exit_code == 2


@pytest.mark.parametrize("preset", ["requests", "blocking"])
def test_presets_that_call_the_target_check_it_first(preset: str, tmp_path: Path) -> None:
    env = {"TARGET_URL": f"http://u:{SECRET}@127.0.0.1:{_free_port()}"}
    proc = _run(["bench", "--preset", preset, "--quick", "--out", "out"], env, tmp_path)
    assert proc.returncode == 1
    assert "http jobs: GET http://u:***@127.0.0.1" in _one_line(proc)
