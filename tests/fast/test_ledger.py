"""The ledger on its own: one final state per job, exact counters, the JSON lines it writes."""

from __future__ import annotations

import json
from pathlib import Path

from runner.engine.ledger import DONE, FAILED, IN_FLIGHT, PENDING, TIMED_OUT, Ledger


def test_states_are_distinct_and_pending_is_zero() -> None:
    assert [PENDING, IN_FLIGHT, DONE, FAILED, TIMED_OUT] == [0, 1, 2, 3, 4]


def test_counts_add_up_and_peak_is_exact(tmp_path: Path) -> None:
    ledger = Ledger(6, tmp_path / "l.jsonl")
    for job_id in range(4):
        ledger.submit(job_id)
    assert ledger.in_flight == 4 and ledger.peak_in_flight == 4 and ledger.finished == 0
    ledger.finish(0, DONE, "sleep", 0.0015, worker="w1")
    ledger.finish(1, FAILED, "fail", 0.002, reason="boom")
    ledger.finish(2, TIMED_OUT, "hang", 1.0, reason="timed out after 1 s")
    assert ledger.in_flight == 1 and ledger.finished == 3
    ledger.submit(4)
    assert ledger.peak_in_flight == 4  # 2 in flight now: the peak stays
    ledger.finish(4, DONE, "sleep", 0.001, worker="w1")
    ledger.finish(4, DONE, "sleep", 0.001, worker="w2")  # a second outcome for the same job
    ledger.close()
    ledger.close()  # twice is fine
    assert ledger.summary() == {"submitted": 5, "done": 2, "failed": 1, "timed_out": 1, "lost": 1, "duplicates": 1}
    assert ledger.by_worker == {"w1": 2}
    assert dict(ledger.reasons) == {"boom": 1, "timed out after 1 s": 1}
    lines = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert lines == [
        {"id": 0, "kind": "sleep", "status": "done", "latency_ms": 1.5, "worker": "w1"},
        {"id": 1, "kind": "fail", "status": "failed", "latency_ms": 2.0, "reason": "boom"},
        {"id": 2, "kind": "hang", "status": "timed_out", "latency_ms": 1000.0, "reason": "timed out after 1 s"},
        {"id": 4, "kind": "sleep", "status": "done", "latency_ms": 1.0, "worker": "w1"},
    ]


def test_a_job_never_submitted_cannot_finish() -> None:
    ledger = Ledger(2)
    ledger.finish(1, DONE, "noop", 0.0)
    assert ledger.summary()["done"] == 0 and ledger.duplicates == 1 and ledger.finished == 0


def test_reasons_are_capped_and_the_rest_counted_as_other() -> None:
    ledger = Ledger(60)
    for job_id in range(60):
        ledger.submit(job_id)
        ledger.finish(job_id, FAILED, "fail", 0.0, reason=f"r{job_id}")
    assert len(ledger.reasons) == 51 and ledger.reasons["other"] == 10
    assert ledger.reasons["r49"] == 1 and "r50" not in ledger.reasons
    ledger2 = Ledger(60)
    for job_id in range(55):
        ledger2.submit(job_id)
        ledger2.finish(job_id, FAILED, "fail", 0.0, reason=f"r{job_id % 50}")
    assert "other" not in ledger2.reasons and ledger2.reasons["r0"] == 2  # a known reason keeps its name


def test_extra_runs_count_as_duplicates_and_are_written(tmp_path: Path) -> None:
    ledger = Ledger(3, tmp_path / "l.jsonl")
    ledger.add_extra_runs({2: 1, 0: 3})
    ledger.add_extra_runs({})
    assert ledger.duplicates == 4
    ledger.close()
    lines = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert lines == [{"id": 0, "extra_runs": 3}, {"id": 2, "extra_runs": 1}]
    Ledger(1).add_extra_runs({0: 1})  # without a file: counted only


def test_without_a_file_nothing_is_written(tmp_path: Path) -> None:
    ledger = Ledger(1)
    ledger.submit(0)
    ledger.finish(0, DONE, "noop", 0.0)
    ledger.close()
    assert list(tmp_path.iterdir()) == []


def test_peak_starts_at_zero_and_follows_each_new_high() -> None:
    ledger = Ledger(8)
    assert ledger.peak_in_flight == 0 and ledger.summary()["lost"] == 0
    ledger.submit(0)
    ledger.submit(1)
    ledger.finish(0, DONE, "noop", 0.0)
    ledger.submit(2)
    assert ledger.peak_in_flight == 2  # 2 in flight again: not a new high
    ledger.submit(3)
    assert ledger.peak_in_flight == 3 and ledger.in_flight == 3


def test_every_extra_outcome_is_one_more_duplicate(tmp_path: Path) -> None:
    ledger = Ledger(1, tmp_path / "l.jsonl")
    ledger.submit(0)
    ledger.finish(0, DONE, "noop", 0.00123456)
    for _ in range(3):
        ledger.finish(0, FAILED, "noop", 0.0, reason="late")
    ledger.close()
    assert ledger.duplicates == 3 and ledger.summary()["failed"] == 0
    (line,) = (tmp_path / "l.jsonl").read_text().splitlines()
    assert json.loads(line)["latency_ms"] == 1.235  # microsecond resolution


def test_a_full_disk_stops_the_writing_not_the_counting() -> None:
    # /dev/full: every write that reaches the device fails with ENOSPC, as on a full disk.
    device = Path("/dev/full")
    small = Ledger(2, device)  # its lines stay in the buffer: the error comes at close
    small.submit(0)
    small.finish(0, DONE, "noop", 0.001, worker="w")
    assert small.write_error is None
    small.close()
    assert small.write_error == f"cannot write {device}: No space left on device"
    big = Ledger(1000, device)  # enough lines to fill the buffer: the error comes at a write
    for job_id in range(1000):
        big.submit(job_id)
        big.finish(job_id, FAILED, "fail", 0.001, reason="x" * 40)
    assert big.write_error == f"cannot write {device}: No space left on device"
    big.close()
    assert big.summary() == {"submitted": 1000, "done": 0, "failed": 1000, "timed_out": 0, "lost": 0, "duplicates": 0}


def test_bulk_submission_keeps_every_later_id_usable_and_the_peak_exact() -> None:
    ledger = Ledger(10)
    ledger.submit_many(0, 2)
    ledger.finish_many(0, 2, "noop", 0.0, ["w"], {})
    ledger.submit_many(2, 3)  # 3 in flight, while 2 have finished: the peak is 3
    assert ledger.peak_in_flight == 3
    ledger.submit(9)
    ledger.finish(9, DONE, "noop", 0.0, worker="w")
    ledger.finish_many(2, 3, "noop", 0.0, ["w"], {})
    assert ledger.summary() == {"submitted": 6, "done": 6, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert ledger.by_worker == {"w": 6} and ledger.in_flight == 0


def test_a_late_report_of_a_timed_out_batch_is_only_duplicates_whatever_else_is_in_flight() -> None:
    ledger = Ledger(8)
    ledger.submit_many(0, 8)
    ledger.end_many(2, 2, TIMED_OUT, "hang", 1.0, "timed out after 1 s")
    ledger.finish_many(6, 2, "noop", 0.1, ["w"], {})
    # jobs 0, 1, 4, 5 in flight, 2 and 3 timed out, 6 and 7 done: the report for 2-3 comes late
    ledger.finish_many(2, 2, "hang", 1.5, ["late"], {})
    assert ledger.summary() == {"submitted": 8, "done": 2, "failed": 0, "timed_out": 2, "lost": 4, "duplicates": 2}
    assert ledger.by_worker == {"w": 2} and ledger.in_flight == 4


def test_finish_done_counts_every_job_and_bulk_submission_never_lowers_the_peak() -> None:
    ledger = Ledger(8)
    ledger.submit_many(0, 4)
    for job_id in range(3):
        ledger.finish_done(job_id, "noop", 0.001, "loop")
    ledger.submit_many(4, 1)  # 2 in flight now: the peak stays 4
    assert ledger.peak_in_flight == 4 and ledger.in_flight == 2
    assert ledger.summary()["done"] == 3 and ledger.by_worker == {"loop": 3}
