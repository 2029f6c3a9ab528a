"""gevent mode: greenlets do the I/O in their own process; the coordinator is never patched."""

from __future__ import annotations

import socket
import threading
import time

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec

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
