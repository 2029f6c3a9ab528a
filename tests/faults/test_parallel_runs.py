"""Issue 10.10: runs side by side. Ten ``submit --mode celery`` at once, each with its own embedded
Redis; two on one shared external Redis with ``redis`` jobs; and what a run leaves in a Redis the
user runs: nothing (its queue's kombu bindings, reply lists and job keys are all removed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import redis

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.faults.helpers import ROOT, RestartableRedis


def _submit(jobs: int, mix: str, redis_url: str | None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", "celery", "--jobs", str(jobs), "--mix", mix]
    cmd += ["--io-ms", "5", "--workers", "1", "--concurrency", "10", "--json"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _all_done(procs: list[subprocess.Popen[str]], jobs: int) -> None:
    try:
        outcomes = [proc.communicate(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (stdout, stderr) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, stderr
        counts = json.loads(stdout)["jobs"]
        assert counts["submitted"] == counts["done"] == jobs and counts["lost"] == 0, counts


def test_ten_parallel_celery_runs_with_their_own_embedded_redis() -> None:
    _all_done([_submit(40, "sleep=1", None) for _ in range(10)], 40)


def test_two_runs_share_one_external_redis(restartable_redis: RestartableRedis) -> None:
    _all_done([_submit(200, "redis=1,sleep=1", restartable_redis.url) for _ in range(2)], 200)


def test_a_run_leaves_nothing_in_an_external_redis(restartable_redis: RestartableRedis) -> None:
    client = redis.Redis.from_url(restartable_redis.url, decode_responses=True)
    try:
        before = set(client.keys("*"))
        spec = WorkloadSpec.build({"jobs": 100, "mix": "redis=1,sleep=1", "io_ms": 5, "celery_workers": 1}, ("celery",))
        assert run_mode(spec, "celery").jobs.done == 100
        left = sorted(str(key) for key in set(client.keys("*")) - before if "runner" in str(key))
        assert not left, f"left in the user's Redis: {left}"
    finally:
        client.close()
