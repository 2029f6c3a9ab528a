"""Point 8: a password or token in any URL form -- ``redis://:pw@h``, ``redis://user:pw@h``,
``?password=pw``, ``http://user:pw@target`` -- never reaches stderr, stdout, results, the ledger or
the reports. Real runs against a real Redis that requires the password; every output is grepped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.engine.dispatch import failure_reason as _reason
from runner.engine.services import _free_port
from tests.faults.helpers import ROOT, RestartableRedis
from workers.clients import HttpStatusError
from workers.errors import JobFailed
from workers.urls import redact, redact_text, scrub

SECRET = "Xq7-s3cret-pw"
FORMS = {
    "userinfo": "redis://:{pw}@127.0.0.1:{port}/0",
    "user-and-password": "redis://default:{pw}@127.0.0.1:{port}/0",
    "query": "redis://127.0.0.1:{port}/0?password={pw}",
}


@pytest.fixture()
def locked_redis() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    server.start("--requirepass", SECRET)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def target_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "target", "--port", "0"],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().decode().strip().removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], capture_output=True, text=True, timeout=timeout, env=full, cwd=cwd
    )


def _assert_nowhere(proc: subprocess.CompletedProcess[str], folder: Path) -> list[Path]:
    assert SECRET not in proc.stdout and SECRET not in proc.stderr, proc.stderr[-500:]
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the password is in {path}"
    return files


@pytest.mark.parametrize("form", sorted(FORMS))
def test_submit_with_celery_and_redis_jobs(
    form: str, locked_redis: RestartableRedis, target_url: str, tmp_path: Path
) -> None:
    url = FORMS[form].format(pw=SECRET, port=locked_redis.port)
    target = target_url.replace("http://", f"http://user:{SECRET}@")
    args = ["submit", "--mode", "async,celery", "--jobs", "24", "--mix", "redis=1,http=1,sleep=1"]
    args += ["--io-ms", "1", "--cpu-ms", "0", "--celery-workers", "1", "--out", "out"]
    proc = _run(args, {"REDIS_URL": url, "TARGET_URL": target}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = _assert_nowhere(proc, tmp_path)
    names = {p.name for p in files}
    assert {"result.json", "ledger.jsonl"} <= names, names
    assert '"done": 24' in (tmp_path / "out" / "celery" / "result.json").read_text()
    assert "***" in (tmp_path / "out" / "celery" / "result.json").read_text()  # the broker, shown redacted


@pytest.mark.parametrize("form", sorted(FORMS))
def test_bench_results_and_reports(form: str, locked_redis: RestartableRedis, tmp_path: Path) -> None:
    url = FORMS[form].format(pw=SECRET, port=locked_redis.port)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text("min_jobs = 5\nmax_jobs = 20\nio_ms = 1\ncpu_ms = 0\n")
    args = ["bench", "--modes", "async", "--mix", "r:redis=1", "--repeats", "1", "--sweep", str(sweep), "--out", "out"]
    proc = _run(args, {"REDIS_URL": url}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {p.name for p in _assert_nowhere(proc, tmp_path)}
    assert {"results.json", "report.md", "report.html", "summary.csv"} <= names, names


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize(("mode", "wrong"), [("celery", "port"), ("async", "password")])
def test_a_wrong_or_unreachable_redis_on_stderr(
    form: str, mode: str, wrong: str, locked_redis: RestartableRedis, tmp_path: Path
) -> None:
    """The right password to a Redis that is not there (celery's broker check), and a wrong one
    (the redis jobs' preflight): one line, exit 1, no secret."""
    port, pw = (_free_port(), SECRET) if wrong == "port" else (locked_redis.port, SECRET + "x")
    url = FORMS[form].format(pw=pw, port=port)
    args = ["submit", "--mode", mode, "--jobs", "2", "--mix", "redis=1", "--io-ms", "0", "--out", "out"]
    proc = _run(args, {"REDIS_URL": url}, tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    _assert_nowhere(proc, tmp_path)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("redis://user:pw@h:1/0", "redis://user:***@h:1/0"),
        ("redis://pw@h:1/0", "redis://***@h:1/0"),
        ("redis://h:1/0?password=pw&db=2", "redis://h:1/0?password=***&db=2"),
        ("redis://u:pw@h/0?password=pw", "redis://u:***@h/0?password=***"),
        ("unix:///tmp/r.sock?password=pw", "unix:///tmp/r.sock?password=***"),
        ("redis://:pw@[::1", "redis://:***@[::1"),  # too broken to parse, still hidden
        ("http://user:pw@host:8080/base", "http://user:***@host:8080/base"),
        ("redis://:p@ss@h/0", "redis://:***@h/0"),
    ],
)
def test_redact_every_form(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert redact_text(f"cannot reach {url} (boom)") == f"cannot reach {shown} (boom)"


def test_failure_reasons_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the ledger and the results record for a failed job goes through the same function, and
    the passwords of REDIS_URL/TARGET_URL are hidden even outside a URL."""
    monkeypatch.setenv("REDIS_URL", f"redis://h/0?password={SECRET}")
    monkeypatch.setenv("TARGET_URL", f"http://u:{SECRET}2@h")
    assert SECRET not in _reason(HttpStatusError(f"GET http://u:{SECRET}2@h/delay/1 answered 500"))
    assert SECRET not in _reason(JobFailed(f"ConnectionError: AUTH {SECRET} refused"))
    assert SECRET not in _reason(ValueError(f"redis://:{SECRET}@h/0 broke"))
    assert scrub(f"plain {SECRET} text") == "plain *** text"
