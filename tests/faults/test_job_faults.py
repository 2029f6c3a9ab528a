"""Point 3: jobs that raise, hang past --timeout, return what cannot be serialised, or kill their
own process, through every executor: each ends with the right status and reason, and the executor
keeps running the other jobs. In-process executors (async, thread) turn a crash job into a failure
(CrashRefused) rather than killing the coordinator, and serialise nothing, so an unserialisable
result is simply done there."""

from __future__ import annotations

import gc
import logging

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from workers.jobs import WORKER_DIED
from workers.registry import MODES

_FAIL = "InjectedFailure: a fail job raised on purpose"
_REFUSED = "CrashRefused: a crash job runs inside the coordinator here; it fails instead of killing it"
_PICKLE = "TypeError: cannot pickle '_thread.lock' object"
# mode -> (reason of a crash job, reason of an unserialisable result or None where it is done)
_EXPECTED: dict[str, tuple[str, str | None]] = {
    "async": (_REFUSED, None),  # in the coordinator's loop: nothing to kill, nothing serialised
    "thread": (_REFUSED, None),
    "process": (WORKER_DIED, _PICKLE),
    "celery": (WORKER_DIED, "TypeError: Object of type lock is not JSON serializable"),
    "hybrid": (WORKER_DIED, _PICKLE),  # non-I/O kinds run in its process pool
    "gevent": (WORKER_DIED, "TypeError: Object of type LockType is not JSON serializable"),
}
# A Celery worker notices a dead prefork child only on its 5 s pool maintenance, twice (first run
# and retry), so its timeout must leave room for that -- and each notice must beat the hard time
# limit (0.4 x timeout = 8 s), or the death reads as a timeout. A process pool is rebuilt after each death
# (spawning fresh interpreters: about a second on 2 busy cores, but over 6 s at load average 37),
# and the jobs in flight wait for it, their timeout running. Elsewhere 2 s is plenty.
_TIMEOUT = {"celery": 20.0, "process": 15.0, "hybrid": 15.0}
# gevent runs every job in one process, so a crash also fails whatever else was in flight there:
# one job at a time keeps the count exact.
_CONCURRENCY = {"gevent": 1}


@pytest.mark.parametrize("mode", MODES)
def test_faulty_jobs_end_with_the_right_status_and_the_run_goes_on(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    timeout = _TIMEOUT.get(mode, 2.0)
    spec = WorkloadSpec.build(
        {
            "jobs": 40,
            "mix": "sleep=16,fail=1,hang=1,crash=1,unserializable=1",
            "io_ms": 20,
            "timeout": timeout,
            "workers": 4,  # more processes than hung jobs, so nothing queues behind a hung one
            "concurrency": _CONCURRENCY.get(mode, 4),
        },
        (mode,),
    )
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        result = run_mode(spec, mode).to_json()
        gc.collect()  # an unretrieved task exception is reported when the task is collected
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    assert result["kinds"] == {"sleep": 32, "fail": 2, "hang": 2, "crash": 2, "unserializable": 2}

    crash_reason, unserializable_reason = _EXPECTED[mode]
    expected_failures = {_FAIL: 2, crash_reason: 2, f"timed out after {timeout:g} s": 2}
    if unserializable_reason is not None:
        expected_failures[unserializable_reason] = 2
    assert result["failures"] == expected_failures

    done = 32 + (2 if unserializable_reason is None else 0)
    assert result["jobs"] == {
        "submitted": 40,
        "done": done,
        "failed": 40 - 2 - done,
        "timed_out": 2,
        "lost": 0,
        "duplicates": 0,
    }
    assert sum(result["by_worker"].values()) == done  # every sleep job ran despite the faults around it
