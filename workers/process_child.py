"""What runs inside a ``process`` pool process: its initializer and the functions the pool sends
jobs to. Kept apart from the executor (``process_pool``), which runs in the coordinator: these
are imported by each spawned process and share nothing with it but the arguments and the table.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from array import array
from types import FrameType
from typing import Any

from workers import lifeline
from workers.bulk import Batch, run_batch_sync
from workers.calibration import measure_into
from workers.clients import SyncClients
from workers.jobs import KINDS, Job, result_of, run_sync
from workers.user_calls import Caller
from workers.user_jobs import JobTable, SetupFailed, prepare

COLS = 3  # per process in the shared table: pid, ticket of the running job (0: idle), terminated flag
# What a pool process sends back per job: service s, pid, the user job's figures (or the built-in
# job's result), CPU s of the job (None for a user job's).
Outcome = tuple[float, int, Any, float | None]

# Per pool process, set by the initializer.
_clients: SyncClients | None = None
_table: Any = None
_row = -1
_mine = False  # it has a row in the shared table (processes started later to replace dead ones have none)
_caller: Caller | None = None  # the user's jobs, when there are any
_user_figures: dict[str, float] | str = {}  # import and setup seconds, or what went wrong
_user_reported = False  # by the warm-up, or else with this process's first user job


def init_process(table: Any, counter: Any, user_jobs: JobTable | None = None, rates: Any = None) -> None:
    global _clients, _table, _row, _mine, _caller, _user_figures
    lifeline.hold()  # a coordinator killed without cleaning up takes this process with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C hits the whole process group; the coordinator decides
    with counter.get_lock():
        _row = counter.value
        counter.value += 1
    _table = table
    _mine = _row * COLS < len(table)
    if _mine:
        table[_row * COLS] = os.getpid()
        signal.signal(signal.SIGTERM, _on_terminate)
    _clients = SyncClients(pool_size=4)
    if user_jobs is not None:
        try:
            jobs, _user_figures = prepare(user_jobs)
            _caller = Caller(jobs, "pickle")
        except Exception as exc:  # reported by the warm-up: a broken initializer would break the pool
            _user_figures = str(exc)
    # Its own rate, measured as it starts (``start`` waits for every process's, before timing);
    # None in a pool that replaces a broken one (the rate is known; retried jobs should not wait).
    measure_into(rates, _row)


def _on_terminate(_signum: int, _frame: FrameType | None) -> None:
    # A broken pool terminates its survivors: mark this process as one, so its job is not blamed.
    _table[_row * COLS + 2] = 1
    os._exit(143)


def run_wire(wire: list[Any], ticket: int) -> Outcome:
    assert _clients is not None, "pool process started without its initializer"
    job = Job.from_wire(wire)
    if _mine:
        _table[_row * COLS + 1] = ticket
    try:
        if _caller is not None and job.kind in _caller.jobs:  # the user's: (form, result bytes) come back
            global _user_reported
            service_s, form, nbytes = _caller.call_sync(job.kind, job.target, job.payload)
            setup, _user_reported = (None if _user_reported else _user_figures), True
            return service_s, os.getpid(), (form, nbytes, setup), None
        if isinstance(_user_figures, str) and job.kind not in KINDS:
            raise SetupFailed(_user_figures)  # this process's setup failed: its user jobs must not pass for run
        cpu_began = time.thread_time()
        service_s = run_sync(job, _clients)
        cpu_s = time.thread_time() - cpu_began  # the job's CPU time, for the after-run calibration check
    finally:
        if _mine:
            _table[_row * COLS + 1] = 0  # not reached if the job kills the process: that is the point
    return service_s, os.getpid(), result_of(job), cpu_s


def run_batch(wires: list[list[Any]], tickets: list[int]) -> list[Outcome | BaseException]:
    """Several small jobs in one trip; each one's outcome (or error) stays its own."""
    outcomes: list[Outcome | BaseException] = []
    for wire, ticket in zip(wires, tickets, strict=True):
        try:
            outcome = run_wire(wire, ticket)
            if type(outcome[2]) is not tuple:  # a user job's figures (a tuple) were measured as they pickled
                pickle.dumps(outcome[2])  # a result that cannot travel fails its own job, not its batch-mates
            outcomes.append(outcome)
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def run_compact(batch: Batch, ticket: int) -> tuple[array[float], dict[int, str], int, array[float] | None]:
    """A whole batch in one trip: each job's service time, and the failed ones (index -> reason).
    The process's row holds the batch's ticket throughout."""
    assert _clients is not None, "pool process started without its initializer"
    if _mine:
        _table[_row * COLS + 1] = ticket
    try:
        service, failed, cpu = run_batch_sync(batch, _clients)
    finally:
        if _mine:
            _table[_row * COLS + 1] = 0
    return service, failed, os.getpid(), cpu


def warm_up(delay_s: float) -> tuple[int, dict[str, float] | str]:
    global _user_reported
    time.sleep(delay_s)  # long enough that each warm-up task lands on its own process (mostly)
    _user_reported = True
    return os.getpid(), _user_figures
