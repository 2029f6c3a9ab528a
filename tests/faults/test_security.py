"""Point 8: a pickled message sent to a real worker's queue is rejected, never deserialised or run;
the target caps delay, body size and requests in service; a password in REDIS_URL never reaches
the output."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis

from tests.cli import run_cli, spawn_cli
from tests.faults.helpers import RestartableRedis
from workers.celery_app import DEFAULT_QUEUE, TASK_NAME, make_app


class _Trap:
    """Unpickling this creates a file: proof that a worker deserialised the payload."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_a_pickled_message_is_rejected_not_run(
    redis_url: str, cluster_worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    proof = tmp_path / "unpickled"
    reply_key = "runner:replies:security-test"
    evil = make_app(redis_url)
    evil.conf.update(accept_content=["pickle", "json"], task_serializer="pickle")
    client = redis.Redis.from_url(redis_url)
    try:
        evil.send_task(TASK_NAME, args=[[1, "sleep", 0.0, 0, _Trap(str(proof))], reply_key], queue=DEFAULT_QUEUE)
        # Then a JSON job behind it: once its reply is in, the worker has been through the queue.
        evil.send_task(TASK_NAME, args=[[2, "sleep", 0.0, 0, ""], reply_key], queue=DEFAULT_QUEUE, serializer="json")
        reply = client.blpop([reply_key], timeout=60)
        assert reply is not None, "the worker ran nothing at all"
        assert json.loads(reply[1])["id"] == 2
        time.sleep(1.0)
        assert client.llen(reply_key) == 0  # no reply for the pickled job...
        assert not proof.exists()  # ...and its payload was never unpickled
        assert client.llen(DEFAULT_QUEUE) == 0 and client.hlen("unacked") == 0  # rejected, not left queued
        assert cluster_worker.poll() is None  # the worker goes on
    finally:
        client.close()
        evil.close()


def _start_target(max_concurrent: int) -> tuple[subprocess.Popen[bytes], str]:
    proc = spawn_cli("target", "--port", "0", "--max-concurrent", str(max_concurrent), stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    assert line.startswith("listening on "), line
    return proc, line.removeprefix("listening on ")


def test_target_caps_delay_size_and_requests_in_service() -> None:
    proc, url = _start_target(max_concurrent=5)

    async def probe() -> tuple[list[int], int, int, int]:
        async with aiohttp.ClientSession() as session:

            async def status(path: str) -> int:
                async with session.get(url + path) as response:
                    await response.read()
                    return response.status

            concurrent = await asyncio.gather(*(status("/delay/1500") for _ in range(20)))
            return (
                concurrent,
                await status("/delay/60001"),
                await status("/delay/1?size=2000000"),
                await status("/delay/1"),
            )

    try:
        concurrent, too_long, too_big, after = asyncio.run(probe())
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert sorted(concurrent) == [200] * 5 + [503] * 15
    assert (too_long, too_big, after) == (400, 400, 200)


_CELERY_20 = ["--mode", "celery", "--celery-workers", "1", "--jobs", "20", "--mix", "sleep=1,redis=1"]


def test_redis_password_never_reaches_the_output(tmp_path: Path) -> None:
    server = RestartableRedis()
    server.start("--requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    try:
        proc = run_cli("submit", *_CELERY_20, "--io-ms", "1", "--json", "--out", str(tmp_path), env={"REDIS_URL": url})
        wrong_url = url.replace("s3cret-pw", "wrong-pw")
        wrong = run_cli("submit", "--mode", "celery", "--jobs", "5", env={"REDIS_URL": wrong_url}, timeout=60)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["jobs"]["done"] == 20 and result["executor"]["broker"].startswith("redis://:***@")
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "s3cret-pw" not in proc.stdout + proc.stderr + written
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert "wrong-pw" not in wrong.stdout + wrong.stderr and "redis://:***@" in wrong.stderr
