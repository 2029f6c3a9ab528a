"""gevent mode: greenlets do the I/O in their own process; the coordinator is never patched."""

from __future__ import annotations

import socket
import threading
import time

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from workers.jobs import WORKER_DIED

_ORIGINAL = (socket.socket, time.sleep, threading.Lock)


def test_gevent_runs_io_cooperatively_without_patching_the_coordinator() -> None:
    spec = WorkloadSpec.build({"jobs": 200, "mix": "http=1,sleep=1", "io_ms": 50, "concurrency": 100}, ("gevent",))
    result = run_mode(spec, "gevent").to_json()
    assert result["jobs"]["done"] == 200 and result["jobs"]["lost"] == 0
    # 200 jobs of 50 ms, 100 at a time: about 0.1 s if the greenlets overlap, 10 s if they did not.
    assert result["wall_s"] < 5
    assert (socket.socket, time.sleep, threading.Lock) == _ORIGINAL
    assert socket.socket.__module__ == "socket" and time.sleep.__module__ == "time"
    assert len(result["by_worker"]) == 1 and next(iter(result["by_worker"])).startswith("gevent-pid-")


def test_gevent_cpu_work_blocks_every_greenlet() -> None:
    spec = WorkloadSpec.build({"jobs": 40, "mix": "cpu=1", "cpu_ms": 10, "concurrency": 40}, ("gevent",))
    result = run_mode(spec, "gevent").to_json()
    assert result["jobs"]["done"] == 40
    # One thread: the jobs' CPU phases run one after another whatever the concurrency, so the run
    # lasts at least the sum of their service times (measured, as the calibrated 10 ms drifts
    # with the machine's load).
    assert result["wall_s"] >= 0.9 * 40 * result["service_ms"]["mean"] / 1000


def test_a_crash_fails_every_job_in_flight_in_the_gevent_process_and_a_fresh_one_serves_the_rest() -> None:
    # 10 sleeps of 300 ms in flight when the crash job kills the one gevent process: all of them
    # die with it (one reason for all), one respawn serves the jobs after them.
    spec = WorkloadSpec.build(
        {"jobs": 30, "mix": "sleep=29,crash=1", "io_ms": 300, "concurrency": 10, "timeout": 20}, ("gevent",)
    )
    result = run_mode(spec, "gevent").to_json()
    jobs = result["jobs"]
    assert jobs["submitted"] == 30 and jobs["done"] + jobs["failed"] == 30 and jobs["lost"] == 0
    assert jobs["timed_out"] == 0 and jobs["failed"] >= 2  # the crash job and sleeps in flight with it
    assert result["failures"] == {WORKER_DIED: jobs["failed"]}  # the same reason as in every executor
    assert len(result["by_worker"]) == 2  # the first process, and the one respawned after the crash
    assert all(worker.startswith("gevent-pid-") for worker in result["by_worker"])
