"""The ledger: the coordinator's own record of every job, kept outside the broker.

One byte of state per job id (a million jobs cost a megabyte), counters, the distinct failure
reasons, who ran what, and -- with ``--out`` -- one JSON line per finished job on disk. Its
counts are the run's truth: ``submitted == done + failed + timed_out + lost``; ``lost`` is any job
that never reached a final state and must be zero.

The file is never opened through a symbolic link. If it cannot be written on (a full disk), the
ledger stops writing, keeps counting, and says why in ``write_error``: the run goes on, and the
coordinator reports the incomplete file once the run is over.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any

from runner.engine.outputs import open_no_follow

PENDING, IN_FLIGHT, DONE, FAILED, TIMED_OUT = range(5)
_STATUS = {DONE: "done", FAILED: "failed", TIMED_OUT: "timed_out"}
_IN_FLIGHT, _DONE = bytes([IN_FLIGHT]), bytes([DONE])
_MAX_REASONS = 50  # distinct failure reasons kept; the rest are counted under "other"


class Ledger:
    def __init__(self, jobs: int, path: Path | None = None) -> None:
        self._state = bytearray(jobs)
        self.submitted = 0
        self.counts = [0] * 5  # by status; a list, as this is touched once per job
        self.reasons = Counter[str]()
        self.by_worker: dict[str, int] = {}
        self.duplicates = 0
        self.peak_in_flight = 0
        self._finished = 0
        self.path = path
        self.write_error: str | None = None
        self._file: IO[str] | None = open_no_follow(path) if path else None

    def submit(self, job_id: int) -> None:
        self._state[job_id] = IN_FLIGHT
        self.submitted += 1
        if self.submitted - self._finished > self.peak_in_flight:
            self.peak_in_flight = self.submitted - self._finished

    def finish(self, job_id: int, status: int, kind: str, latency_s: float, worker: str = "", reason: str = "") -> None:
        if self._state[job_id] != IN_FLIGHT:
            # A job id that already has its final state (e.g. a second reply for it): one state
            # per job, so the counts still add up; the extra outcome is a duplicate.
            self.duplicates += 1
            return
        self._state[job_id] = status
        self._finished += 1
        self.counts[status] += 1
        if worker:
            by_worker = self.by_worker
            by_worker[worker] = by_worker.get(worker, 0) + 1
        if reason:
            key = reason if len(self.reasons) < _MAX_REASONS or reason in self.reasons else "other"
            self.reasons[key] += 1
        if self._file is not None:
            record: dict[str, Any] = {
                "id": job_id,
                "kind": kind,
                "status": _STATUS[status],
                "latency_ms": round(latency_s * 1000, 3),
            }
            if worker:
                record["worker"] = worker
            if reason:
                record["reason"] = reason
            self._write(json.dumps(record) + "\n")

    def finish_done(self, job_id: int, kind: str, latency_s: float, worker: str) -> None:
        """``finish`` for a job that is done: the same rules, fewer steps (it runs once per job)."""
        state = self._state
        if state[job_id] != IN_FLIGHT or self._file is not None:
            self.finish(job_id, DONE, kind, latency_s, worker)
            return
        state[job_id] = DONE
        self._finished += 1
        self.counts[DONE] += 1
        if worker:
            by_worker = self.by_worker
            by_worker[worker] = by_worker.get(worker, 0) + 1

    def submit_many(self, first: int, count: int) -> None:
        self._state[first : first + count] = _IN_FLIGHT * count
        self.submitted += count
        if self.submitted - self._finished > self.peak_in_flight:
            self.peak_in_flight = self.submitted - self._finished

    def finish_many(
        self, first: int, count: int, kind: str, latency_s: float, workers: list[str], failed: dict[int, str]
    ) -> None:
        """A batch's jobs (ids ``first`` ..), all ended at once: failed those in ``failed`` (index
        -> reason), done the rest; ``workers`` names who ran each (one name: all of them). The
        same rules as ``finish``, in bulk where nothing needs a job of its own."""
        end = first + count
        if failed or self._file is not None or len(workers) != 1 or self._state.count(IN_FLIGHT, first, end) != count:
            for index in range(count):
                reason = failed.get(index, "")
                worker = "" if reason else workers[0] if len(workers) == 1 else workers[index]
                self.finish(first + index, FAILED if reason else DONE, kind, latency_s, worker, reason)
            return
        self._state[first:end] = _DONE * count
        self._finished += count
        self.counts[DONE] += count
        if workers[0]:
            self.by_worker[workers[0]] = self.by_worker.get(workers[0], 0) + count

    def end_many(self, first: int, count: int, status: int, kind: str, latency_s: float, reason: str) -> None:
        """A batch's jobs that all ended alike without a report (timed out, cancelled)."""
        for job_id in range(first, first + count):
            self.finish(job_id, status, kind, latency_s, reason=reason)

    def add_extra_runs(self, extra: dict[int, int]) -> None:
        self.duplicates += sum(extra.values())
        if self._file is not None:
            for job_id, runs in sorted(extra.items()):
                self._write(json.dumps({"id": job_id, "extra_runs": runs}) + "\n")

    def _write(self, line: str) -> None:
        assert self._file is not None
        try:
            self._file.write(line)
        except OSError as exc:
            self._failed(exc)

    @property
    def finished(self) -> int:
        return self._finished

    @property
    def in_flight(self) -> int:
        return self.submitted - self._finished

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._failed(exc)
            self._file = None

    def _failed(self, exc: OSError) -> None:
        """Stop writing (every later line would fail too); the counts stay right."""
        self.write_error = f"cannot write {self.path}: {exc.strerror or exc}"
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

    def summary(self) -> dict[str, int]:
        lost = self._state.count(IN_FLIGHT)
        return {
            "submitted": self.submitted,
            "done": self.counts[DONE],
            "failed": self.counts[FAILED],
            "timed_out": self.counts[TIMED_OUT],
            "lost": lost,
            "duplicates": self.duplicates,
        }
