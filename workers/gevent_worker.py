"""The gevent worker process: ``python -m workers.gevent_worker CONCURRENCY [--rate-known]``.

Monkey-patching happens here, first thing, in a process of its own, so it never leaks into the
coordinator. Jobs arrive as JSON lines on stdin (``{"run": wire}`` or ``{"cancel": id}``), each runs
in a greenlet (at most CONCURRENCY at once) with the ordinary sync clients -- whose sockets and
``time.sleep`` the patching made cooperative -- and replies go back as JSON lines on stdout. CPU
work blocks every greenlet, as it does in real gevent code.

User jobs: the table runner hands over (``RUNNER_USER_JOBS``) is loaded, and ``--setup`` run,
before the ready line, which carries their times. The sync form runs in a greenlet; an async-only
function runs in an event loop of its own per job (the patched selectors let other greenlets run
while it waits). Results are JSON-encoded, measured and dropped.
"""

from workers import lifeline

lifeline.hold_if_child()  # a real thread, started before the patching makes threads greenlets

from gevent import monkey  # noqa: E402

monkey.patch_all()  # before anything imports socket, ssl, time or threading

import json  # noqa: E402 -- must follow the patching
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObjectPosix  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.queue import Queue  # noqa: E402

from workers.calibration import calibrate  # noqa: E402
from workers.clients import SyncClients  # noqa: E402
from workers.errors import JobFailed  # noqa: E402
from workers.jobs import KINDS, Job, result_of, run_sync  # noqa: E402
from workers.user_calls import Caller, caller_from_environment  # noqa: E402

_BUILTIN = frozenset(KINDS)


def _run(job: Job, clients: SyncClients, replies: Queue, user: Caller | str) -> None:
    reply: dict[str, Any] = {"id": job.id}
    try:
        if job.kind not in _BUILTIN:
            if isinstance(user, str):
                raise JobFailed(user)
            reply["service_s"], reply["form"], reply["bytes"] = user.call_sync(job.kind, job.target, job.payload)
        else:
            cpu_began = time.thread_time()  # the one thread: other greenlets' CPU too while this one waits
            reply["service_s"] = run_sync(job, clients, own_process=True)
            reply["cpu_s"] = time.thread_time() - cpu_began
            json.dumps(result_of(job))  # the result must cross the pipe as JSON, like any worker's
    except gevent.GreenletExit:
        return  # cancelled by the coordinator after its timeout: it no longer waits for a reply
    except Exception as exc:  # reported as data; the worker goes on
        reply = {"id": job.id, "error": exc.reason if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"}
    replies.put(json.dumps(reply).encode() + b"\n")


def _write(replies: Queue, out: FileObjectPosix) -> None:
    while True:
        batch = [replies.get()]
        while not replies.empty():
            batch.append(replies.get_nowait())
        out.write(b"".join(batch))
        out.flush()


def main(argv: list[str]) -> int:
    concurrency = int(argv[1])
    user: Caller | str
    try:
        user, setup = caller_from_environment("json")
    except Exception as exc:  # every user job fails with it, one line each
        user, setup = str(exc), {}
    clients = SyncClients(pool_size=concurrency)
    pool = Pool(concurrency)
    running: dict[int, gevent.Greenlet] = {}
    replies: Queue = Queue()
    out = FileObjectPosix(sys.stdout.fileno(), "wb", close=False)
    gevent.spawn(_write, replies, out)
    # Its own rate, measured before it says it is ready (so before timing starts); a worker that
    # replaces a dead one inside the window skips it (``--rate-known``).
    ready: dict[str, Any] = {"ready": True, "setup": setup}
    if isinstance(user, str):  # the user's jobs did not load: the executor stops the run
        ready["setup_error"] = user
    if "--rate-known" not in argv:
        ready["calibration"] = calibrate().to_dict()
    replies.put(json.dumps(ready).encode() + b"\n")
    for line in FileObjectPosix(sys.stdin.fileno(), "rb", close=False):
        message = json.loads(line)
        if "cancel" in message:
            greenlet = running.pop(int(message["cancel"]), None)
            if greenlet is not None:
                greenlet.kill(block=False)
            continue
        job = Job.from_wire(message["run"])
        greenlet = pool.spawn(_run, job, clients, replies, user)  # waits while CONCURRENCY greenlets run
        running[job.id] = greenlet
        greenlet.link(lambda _g, job_id=job.id: running.pop(job_id, None))
    pool.join()
    while not replies.empty():
        gevent.sleep(0.01)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
