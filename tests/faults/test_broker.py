"""Point 5: the broker goes away mid-run. If Redis comes back (here: restarted empty, as a Redis
without persistence does), the run recovers and every job is done; if it does not, the run stops
within a bounded time (half of --timeout) with one clear message, and still accounts for every job.
Redis unreachable at start -- one line naming it, password redacted, exit 1 -- is checked in
tests/test_celery.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from tests.faults.helpers import RestartableRedis
from workers.errors import RunStopped


def _when_running(server: RestartableRedis, action: Callable[[], object]) -> threading.Thread:
    import redis

    def watch() -> None:
        client = redis.Redis.from_url(server.url)
        deadline = time.monotonic() + 60
        try:  # replies have started to flow: the run is under way
            while time.monotonic() < deadline and not any(True for _ in client.scan_iter("runner:replies:*")):
                time.sleep(0.02)
        except redis.ConnectionError:
            return  # the server went away first (the test is over): nothing left to do
        finally:
            client.close()
        time.sleep(1.0)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_redis_restarted_mid_run_the_run_recovers(restartable_redis: RestartableRedis) -> None:
    def bounce() -> None:
        restartable_redis.kill()
        time.sleep(2.0)
        restartable_redis.start()

    spec = WorkloadSpec.build(
        {"jobs": 600, "mix": "sleep=1", "io_ms": 20, "celery_workers": 2, "concurrency": 10, "timeout": 20},
        ("celery",),
    )
    chaos = _when_running(restartable_redis, bounce)
    result = run_mode(spec, "celery").to_json()
    chaos.join(5)
    jobs = result["jobs"]
    assert {k: jobs[k] for k in ("submitted", "done", "failed", "timed_out", "lost")} == {
        "submitted": 600,
        "done": 600,
        "failed": 0,
        "timed_out": 0,
        "lost": 0,
    }
    print(f"redis restart: duplicates={jobs['duplicates']}")


def test_redis_gone_for_good_stops_the_run_in_bounded_time(restartable_redis: RestartableRedis) -> None:
    spec = WorkloadSpec.build(
        {"jobs": 100_000, "mix": "sleep=1", "io_ms": 20, "celery_workers": 2, "concurrency": 10, "timeout": 6},
        ("celery",),
    )
    killed_at: list[float] = []
    chaos = _when_running(restartable_redis, lambda: (killed_at.append(time.monotonic()), restartable_redis.kill()))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "celery")
    ended = time.monotonic()
    chaos.join(5)
    assert killed_at and ended - killed_at[0] < 3 + 15  # gives up after T/2 = 3 s, then stops workers
    exc = stopped.value
    assert exc.exit_code == 1
    assert f"Redis at {restartable_redis.url} did not answer for 3 s" in str(exc)
    assert exc.result is not None
    partial = exc.result.to_json()
    jobs = partial["jobs"]
    assert jobs["submitted"] == jobs["done"] + jobs["failed"] and jobs["lost"] == 0 and jobs["timed_out"] == 0
    assert 0 < jobs["failed"] <= 10  # the jobs in flight when Redis went away
    assert partial["stopped"]["not_submitted"] == 100_000 - jobs["submitted"]
    assert all(reason.startswith("ServiceError: lost the broker") for reason in partial["failures"])
