"""``hash`` jobs release the GIL while they work (so threads can scale on them); ``cpu`` jobs hold it.

Measured from the side: while a job runs in another thread, this thread wakes from 1 ms sleeps,
which needs the GIL. With a long switch interval (0.1 s), a thread that holds the GIL keeps it
until the interval ends, so wake-ups are ~100 ms late; one that releases it lets us in at once.
No speed is asserted, only who holds the lock."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from workers.calibration import calibrate
from workers.jobs import Job, cpu_phase


@pytest.fixture()
def long_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.1)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _wake_delays_ms(job: Job) -> list[float]:
    done = threading.Event()

    def work() -> None:
        cpu_phase(job)
        done.set()

    worker = threading.Thread(target=work)
    delays = []
    worker.start()
    while not done.is_set():
        began = time.perf_counter()
        time.sleep(0.001)
        delays.append((time.perf_counter() - began) * 1000 - 1)
    worker.join()
    return delays


@pytest.mark.usefixtures("long_switch_interval")
def test_hash_releases_the_gil_and_cpu_holds_it() -> None:
    units = calibrate()
    hashing = _wake_delays_ms(Job(0, "hash", cpu_units=units.units("hash", 600)))
    spinning = _wake_delays_ms(Job(1, "cpu", cpu_units=units.units("cpu", 600)))
    assert statistics.median(spinning) > 50, spinning[:20]  # held for most of each 100 ms interval
    # Released: wake-ups wait only for the OS scheduler, which a loaded machine slows (the test
    # failed at load average 8 with the old fixed 20 ms), never for the 100 ms interval.
    assert len(hashing) > 20 and statistics.median(hashing) < min(40, statistics.median(spinning) / 2), hashing[:20]
