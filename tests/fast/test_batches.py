"""Jobs handed over in batches (``Executor.batch_size`` > 1): the coordinator's bulk path against
the stub, whose ``run_batch`` is the base one (each job through ``run``), so every job still has its
own outcome; the window of jobs in flight; and the ledger's bulk methods on their own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runner.engine.coordinator import run_mode
from runner.engine.dispatch import FULL, Units
from runner.engine.ledger import DONE, FAILED, TIMED_OUT, Ledger
from runner.engine.spec import WorkloadSpec
from tests.fast.conftest import CALIBRATION
from tests.stub_executor import SERVICE_LOST, StubExecutor, StubPlan
from workers.bulk import Batch
from workers.errors import RunStopped, ServiceError
from workers.jobs import Job


def _run(out_dir: Path | None = None, **values: Any) -> dict[str, Any]:
    values.setdefault("workers", 2)
    return run_mode(WorkloadSpec.build(values, ("stub",)), "stub", out_dir=out_dir, calibration=CALIBRATION).to_json()


def test_batched_jobs_each_end_once_with_their_own_outcome(stub: type[StubExecutor], tmp_path: Path) -> None:
    stub.plan = StubPlan(batch=16, raise_for={5: RuntimeError("boom"), 299: RuntimeError("last")})
    result = _run(tmp_path, jobs=300, mix="sleep=1", io_ms=1, concurrency=40)
    assert result["jobs"] == {"submitted": 300, "done": 298, "failed": 2, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"RuntimeError: boom": 1, "RuntimeError: last": 1}
    made = stub.made[-1]
    assert made.batches and max(made.batches) == 16 and sum(made.batches) <= 300
    assert sorted(made.runs) == list(range(300)) and set(made.runs.values()) == {1}
    assert 16 <= result["peak_in_flight"] <= 40  # batches fill the window, never past it
    assert result["by_worker"] == {"stub-0": 150, "stub-1": 148}  # jobs 5 and 299 failed
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in records) == list(range(300))
    assert {r["kind"] for r in records} == {"sleep"} and all(0 < r["latency_ms"] < 10_000 for r in records)
    assert {r["id"] for r in records if r["status"] == "failed"} == {5, 299}
    assert result["latency_by_outcome_ms"]["failed"]["count"] == 2
    assert result["latency_by_outcome_ms"]["done"]["count"] == 298
    assert result["service_ms"]["p50"] >= 0.9  # each done job's own service time (1 ms sleeps)


def test_without_a_ledger_file_the_bulk_path_counts_the_same(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(batch=64)
    result = _run(jobs=1000, mix="noop=1", concurrency=100)
    assert result["jobs"] == {"submitted": 1000, "done": 1000, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["by_worker"] == {"stub-0": 500, "stub-1": 500} and result["peak_in_flight"] <= 100
    assert result["latency_by_outcome_ms"]["done"]["count"] == 1000
    assert sum(stub.made[-1].batches) >= 900  # nearly all went in batches (none before the first take)


def test_batched_cpu_jobs_feed_the_calibration_check(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(batch=8)
    result = _run(jobs=64, mix="cpu=1", cpu_ms=1, concurrency=16)
    assert result["jobs"]["done"] == 64 and sum(stub.made[-1].batches) == 64
    assert result["calibration_check"]["kinds"]["cpu"]["jobs"] == 64  # every batched job's own sample


def test_a_batch_that_outlives_the_timeout_times_out_as_a_whole(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(batch=4)
    result = _run(jobs=8, mix="hang=1", timeout=0.2, concurrency=8)
    assert result["jobs"] == {"submitted": 8, "done": 0, "failed": 0, "timed_out": 8, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"timed out after 0.2 s": 8}
    assert stub.made[-1].batches == [4, 4] and len(stub.made[-1].cancelled) == 8
    assert result["latency_by_outcome_ms"]["timed_out"]["count"] == 8


def test_a_lost_service_in_a_batch_halts_dispatch_and_counts_the_batch(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(batch=5)
    spec = WorkloadSpec.build({"jobs": 100, "mix": "crash=1", "concurrency": 10}, ("stub",))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "stub", calibration=CALIBRATION)
    assert stopped.value.result is not None
    partial = stopped.value.result.to_json()
    jobs = partial["jobs"]
    assert jobs["lost"] == 0 and jobs["done"] == 0 and jobs["failed"] == jobs["submitted"] <= 10
    assert partial["failures"] == {f"ServiceError: {SERVICE_LOST}": jobs["submitted"]}


def test_units_fill_the_window_then_wait_for_room() -> None:
    in_flight = [0]
    kinds = iter(["a"] * 10 + ["b"] + ["a"] * 3)
    units = Units(
        kinds, {"a": (0.0, 0, ""), "b": (1.0, 2, "t")}, lambda k: 4 if k == "a" else 1, 6, lambda: in_flight[0]
    )
    first = units.take()
    assert first == Batch(0, 4, "a")
    in_flight[0] = 4
    assert units.take() == Batch(4, 2, "a")  # two places left in the window
    in_flight[0] = 6
    assert units.take() is FULL
    in_flight[0] = 2
    assert units.take() == Batch(6, 4, "a")  # a run of one kind ends a batch at the next kind
    in_flight[0] = 6
    assert units.take() is FULL  # a single job too, once batches are out: the window is full
    in_flight[0] = 5
    assert units.take() == Job(10, "b", 1.0, 2, "t")
    in_flight[0] = 6
    assert units.take() is FULL  # once batches are out, single jobs wait for room too
    in_flight[0] = 0
    assert units.take() == Batch(11, 3, "a")
    assert units.take() is None


def test_units_hand_out_a_job_where_one_place_is_left_and_batches_of_two() -> None:
    in_flight = [0]
    kinds = iter(["a"] * 3 + ["c"] * 2 + ["a"])
    sizes = {"a": 4, "c": 2}
    units = Units(kinds, {"a": (0.5, 3, "x"), "c": (0.0, 1, "")}, sizes.__getitem__, 4, lambda: in_flight[0])
    in_flight[0] = 3
    assert units.take() == Job(0, "a", 0.5, 3, "x")  # one place left: a job, not a batch of one
    in_flight[0] = 0
    assert units.take() == Batch(1, 2, "a", 0.5, 3, "x")
    assert units.take() == Batch(3, 2, "c", 0.0, 1, "")  # a batch size of 2 is a batch
    assert units.take() == Job(5, "a", 0.5, 3, "x")  # the last job, alone in its run
    assert units.take() is None


def test_a_waiting_driver_is_woken_by_room_and_by_the_end() -> None:
    async def scenario() -> list[str]:
        in_flight = [4]
        units = Units(iter(["a"] * 4), {"a": (0.0, 0, "")}, lambda _: 4, 4, lambda: in_flight[0])
        seen: list[str] = []

        async def waiter(name: str) -> None:
            while (unit := units.take()) is not None:
                if unit is FULL:
                    await units.room()
                else:
                    seen.append(name)

        tasks = [asyncio.create_task(waiter(n)) for n in ("x", "y")]
        await asyncio.sleep(0)
        assert units.waiters and not seen
        in_flight[0] = 0
        units.released()  # one woken: it takes the last batch; the end then wakes the other
        await asyncio.wait_for(asyncio.gather(*tasks), 1)
        return seen

    assert asyncio.run(scenario()) == ["x"]


def test_ledger_bulk_methods_keep_one_state_per_job(tmp_path: Path) -> None:
    ledger = Ledger(10)
    ledger.submit_many(0, 6)
    assert ledger.in_flight == 6 and ledger.peak_in_flight == 6
    ledger.finish_many(0, 4, "noop", 0.001, ["pid-1"], {})
    ledger.finish_many(4, 2, "noop", 0.001, ["pid-1", "pid-2"], {1: "boom"})
    ledger.finish(0, DONE, "noop", 0.001)  # a second outcome: a duplicate
    ledger.submit_many(6, 4)
    ledger.end_many(6, 2, TIMED_OUT, "hang", 1.0, "timed out after 1 s")
    ledger.end_many(8, 2, FAILED, "hang", 1.0, "cancelled")
    ledger.finish_many(6, 2, "hang", 1.0, ["late"], {})  # already timed out: duplicates, not done
    assert ledger.summary() == {"submitted": 10, "done": 5, "failed": 3, "timed_out": 2, "lost": 0, "duplicates": 3}
    assert ledger.by_worker == {"pid-1": 5} and ledger.reasons == {"boom": 1, "cancelled": 2, "timed out after 1 s": 2}


def test_a_compact_celery_reply_is_checked_and_settles_its_batch_once() -> None:
    from array import array

    from workers.batching import Outbox
    from workers.celery_bulk import Pending, settle
    from workers.celery_compact import COMPACT_MARK, compact_reply
    from workers.celery_replies import parse_reply

    batch = Batch(10, 3, "noop")
    raw = compact_reply(batch, "w0", array("d", [0.001, 0.002, 0.003]), {1: "InjectedFailure: no"})
    good = parse_reply(raw, 13)
    assert (good["first"], good["size"], good["worker"]) == (10, 3, "w0") and "cpu_s" not in good
    assert list(good["service_s"]) == [0.001, 0.002, 0.003] and good["failed"] == {"1": "InjectedFailure: no"}
    timed = parse_reply(compact_reply(batch, "w0", array("d", [1, 2, 3]), {}, array("d", [4, 5, 6])), 13)
    assert list(timed["service_s"]) == [1, 2, 3] and list(timed["cpu_s"]) == [4, 5, 6]
    head, tail = raw[1:].split(COMPACT_MARK, 1)
    bad = {"size": 0, "first": -1, "failed": {"3": "x"}, "worker": 5, "cpu": True}
    for key, value in bad.items():
        changed = json.dumps(json.loads(head) | {key: value}).encode()
        with pytest.raises(ValueError):
            parse_reply(COMPACT_MARK + changed + COMPACT_MARK + tail, 13)
    for broken in (raw[:-1], raw + b"\x00", COMPACT_MARK + head, COMPACT_MARK + b"[1]" + COMPACT_MARK + tail):
        with pytest.raises(ValueError):
            parse_reply(broken, 13)
    with pytest.raises(ValueError, match="out of range"):
        parse_reply(raw, 12)  # job 12 was never sent

    async def scenario() -> tuple[Any, dict[int, int]]:
        pending = Pending(batch)
        answered, extra = bytearray(), dict[int, int]()
        costs: Outbox[Any] = Outbox(lambda _: True, fixed=0, budget_s=1.0, limit=lambda: 1)
        settle(answered, extra, {10: pending}, costs, good)
        settle(answered, extra, {10: pending}, costs, good)  # the batch ran twice (a redelivery)
        return pending.future.result(), extra

    report, extra = asyncio.run(scenario())
    assert list(report.service_s) == [0.001, 0.002, 0.003] and report.failed == {1: "InjectedFailure: no"}
    assert report.workers == ["w0"] and extra == {10: 1, 11: 1, 12: 1}


def _ledger_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "ledger.jsonl").read_text().splitlines()]


def test_timed_out_batches_have_their_kind_and_latency_in_the_ledger(stub: type[StubExecutor], tmp_path: Path) -> None:
    stub.plan = StubPlan(batch=4)
    result = _run(tmp_path, jobs=8, mix="hang=1", timeout=0.2, concurrency=8)
    assert result["jobs"]["timed_out"] == 8
    lines = _ledger_lines(tmp_path)
    assert sorted(r["id"] for r in lines) == list(range(8))
    assert {(r["kind"], r["status"], r["reason"]) for r in lines} == {("hang", "timed_out", "timed out after 0.2 s")}
    assert all(200 <= r["latency_ms"] < 5000 for r in lines)  # the timeout, plus a watchdog tick or so


@pytest.mark.timeout(30)  # a driver left marked as expired would wait for ever on its next hung batch
def test_a_driver_times_out_batch_after_batch(stub: type[StubExecutor]) -> None:
    # One batch fills the window of 4: the drivers take turns, so each of the 4 times out twice.
    stub.plan = StubPlan(batch=4)
    result = _run(jobs=32, mix="hang=1", timeout=0.1, concurrency=4)
    assert result["jobs"] == {"submitted": 32, "done": 0, "failed": 0, "timed_out": 32, "lost": 0, "duplicates": 0}
    assert stub.made[-1].batches == [4] * 8


def test_a_stop_after_the_grace_fails_the_batches_in_flight(stub: type[StubExecutor], tmp_path: Path) -> None:
    def send() -> None:
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    stub.plan = StubPlan(batch=4)
    spec = WorkloadSpec.build({"jobs": 100, "mix": "hang=1", "concurrency": 8, "workers": 2}, ("stub",))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "stub", out_dir=tmp_path, calibration=CALIBRATION)
    sender.join()
    assert stopped.value.result is not None
    result = stopped.value.result.to_json()
    assert result["jobs"] == {"submitted": 8, "done": 0, "failed": 8, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"interrupted by SIGTERM before it finished": 8}
    lines = _ledger_lines(tmp_path)
    assert sorted(r["id"] for r in lines) == list(range(8))
    assert {(r["kind"], r["status"]) for r in lines} == {("hang", "failed")}
    assert all(2000 <= r["latency_ms"] < 10_000 for r in lines)  # from hand-off, through the 2 s grace


@pytest.mark.timeout(30)  # the watchdog must still time out the hung batches after the error
def test_an_executor_error_fails_its_batch_and_the_run_goes_on(stub: type[StubExecutor], tmp_path: Path) -> None:
    stub.plan = StubPlan(batch=4, batch_raises={0: RuntimeError("pool broke")})
    result = _run(tmp_path, jobs=16, mix="hang=1", timeout=0.3, concurrency=8)
    assert result["jobs"] == {"submitted": 16, "done": 0, "failed": 4, "timed_out": 12, "lost": 0, "duplicates": 0}
    assert result["failures"] == {"RuntimeError: pool broke": 4, "timed out after 0.3 s": 12}
    assert result["latency_by_outcome_ms"]["failed"]["count"] == 4
    failed = [r for r in _ledger_lines(tmp_path) if r["status"] == "failed"]
    assert sorted(r["id"] for r in failed) == [0, 1, 2, 3] and {r["kind"] for r in failed} == {"hang"}
    assert all(0 <= r["latency_ms"] < 1000 for r in failed)  # it raised at once


def test_after_an_executor_error_no_batch_is_timed_out_early(stub: type[StubExecutor]) -> None:
    # Batches of 0.15 s sleeps against a 1 s timeout: none may time out, before or after the error.
    stub.plan = StubPlan(batch=2, batch_raises={0: RuntimeError("pool broke")})
    result = _run(jobs=40, mix="sleep=1", io_ms=150, timeout=1.0, concurrency=8)
    assert result["jobs"] == {"submitted": 40, "done": 38, "failed": 2, "timed_out": 0, "lost": 0, "duplicates": 0}


def test_a_batch_run_by_one_runner_feeds_the_calibration_check_its_cpu_times(stub: type[StubExecutor]) -> None:
    stub.plan = StubPlan(batch=8, one_runner=True, cpu_s=0.003)
    result = _run(jobs=64, mix="cpu=1", cpu_ms=1, concurrency=16)
    assert result["jobs"]["done"] == 64 and result["by_worker"] == {"stub-batch": 64}
    check = result["calibration_check"]["kinds"]["cpu"]
    assert (check["jobs"], check["median_cpu_ms"], check["cpu_ratio"]) == (64, 3.0, 3.0)


@pytest.mark.parametrize("out", [False, True])
def test_one_runner_batches_with_a_failure_count_alike_with_and_without_a_ledger_file(
    stub: type[StubExecutor], tmp_path: Path, out: bool
) -> None:
    stub.plan = StubPlan(batch=8, one_runner=True, raise_for={13: RuntimeError("boom")})
    result = _run(tmp_path if out else None, jobs=64, mix="noop=1", concurrency=16)
    assert result["jobs"] == {"submitted": 64, "done": 63, "failed": 1, "timed_out": 0, "lost": 0, "duplicates": 0}
    assert result["by_worker"] == {"stub-batch": 63} and result["peak_in_flight"] <= 16
    if out:
        lines = _ledger_lines(tmp_path)
        assert sorted(r["id"] for r in lines) == list(range(64))
        assert {r["id"]: r.get("worker") for r in lines if r["status"] == "done"} == {
            i: "stub-batch" for i in range(64) if i != 13
        }


def test_a_timed_out_batch_leaves_its_driver_to_run_the_next_in_full(stub: type[StubExecutor]) -> None:
    # Batches of 0.15 s sleeps against a 0.5 s timeout; only the first hangs: its driver, after the
    # timeout, runs others, none of which may be timed out early.
    stub.plan = StubPlan(batch=2, batch_hangs=frozenset({0}))
    result = _run(jobs=40, mix="sleep=1", io_ms=150, timeout=0.5, concurrency=8)
    assert result["jobs"] == {"submitted": 40, "done": 38, "failed": 0, "timed_out": 2, "lost": 0, "duplicates": 0}
    assert result["by_worker"] == {"stub-0": 19, "stub-1": 19}  # each done job to the runner its report names


def test_a_service_lost_in_one_batch_leaves_the_others_to_the_watchdog(stub: type[StubExecutor]) -> None:
    # The lost service halts dispatch; the other batch in flight still hangs, and times out within
    # the grace period rather than being cancelled at its end.
    stub.plan = StubPlan(batch=4, batch_raises={4: ServiceError(SERVICE_LOST)})  # the second batch taken
    spec = WorkloadSpec.build({"jobs": 100, "mix": "hang=1", "concurrency": 8, "timeout": 0.3}, ("stub",))
    with pytest.raises(RunStopped) as stopped:
        run_mode(spec, "stub", calibration=CALIBRATION)
    assert stopped.value.result is not None
    result = stopped.value.result.to_json()
    assert result["jobs"] == {"submitted": 8, "done": 0, "failed": 4, "timed_out": 4, "lost": 0, "duplicates": 0}
    assert result["stopped"] == {"reason": SERVICE_LOST, "not_submitted": 92}


def test_single_jobs_are_made_ahead_in_order_up_to_a_batched_kind() -> None:
    # Before any batch, single jobs come 64 at a time into ``ready``; a kind the executor batches
    # ends the chunk, goes out as a batch, and the jobs after it keep their ids and order.
    kinds = ["a"] * 70 + ["b"] * 3 + ["a"] * 2 + ["c"]
    params = {"a": (0.0, 0, ""), "b": (2.0, 0, ""), "c": (3.0, 1, "t")}
    units = Units(iter(kinds), params, lambda k: 8 if k == "b" else 1, 1000, lambda: 0)
    taken: list[Job | Batch] = []
    while (unit := units.take()) is not None:
        assert unit is not FULL
        taken.append(unit)
        assert len(units.ready) <= 63
    assert taken[:70] == [Job(i, "a") for i in range(70)]
    assert taken[70] == Batch(70, 3, "b", 2.0)
    assert taken[71:] == [Job(73, "a"), Job(74, "a"), Job(75, "c", 3.0, 1, "t")]


def test_a_chunk_stops_at_the_first_of_two_batched_kinds() -> None:
    kinds = ["a", "c", "b", "a"]
    params = {kind: (0.0, 0, "") for kind in "abc"}
    units = Units(iter(kinds), params, lambda k: 1 if k == "a" else 4, 1000, lambda: 0)
    assert units.take() == Job(0, "a")
    assert units.take() == Job(1, "c")  # a batch of one is a job
    assert units.take() == Job(2, "b")
    assert units.take() == Job(3, "a")
    assert units.take() is None


def test_finish_done_keeps_the_rules_of_finish(tmp_path: Path) -> None:
    ledger = Ledger(3)
    ledger.submit(0)
    ledger.finish_done(0, "noop", 0.001, "loop")
    ledger.finish_done(0, "noop", 0.001, "loop")  # a second outcome: a duplicate, counted once
    ledger.finish_done(1, "noop", 0.001, "loop")  # never submitted: not done either
    assert ledger.summary() == {"submitted": 1, "done": 1, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 2}
    assert ledger.by_worker == {"loop": 1} and ledger.in_flight == 0
    written = Ledger(1, tmp_path / "ledger.jsonl")
    written.submit(0)
    written.finish_done(0, "noop", 0.002, "loop")  # with a file: every job's line
    written.close()
    assert json.loads((tmp_path / "ledger.jsonl").read_text()) == {
        "id": 0,
        "kind": "noop",
        "status": "done",
        "latency_ms": 2.0,
        "worker": "loop",
    }


@pytest.mark.timeout(30)
def test_a_drivers_own_error_on_the_batch_path_ends_the_run_instead_of_hanging_it(
    stub: type[StubExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug in the coordinator (injected): the driver of the first batch raises once its jobs are
    # in flight. The other drivers wait for the room those jobs hold; before, they waited for ever.
    original = Ledger.submit_many

    def broken(self: Ledger, first: int, count: int) -> None:
        original(self, first, count)
        if first == 0:
            raise RuntimeError("coordinator bug")

    monkeypatch.setattr(Ledger, "submit_many", broken)
    stub.plan = StubPlan(batch=8)
    with pytest.raises(RuntimeError, match="coordinator bug"):
        _run(jobs=400, mix="sleep=1", io_ms=20, concurrency=8)


def test_while_a_kinds_cost_is_measured_only_the_probe_limit_goes_out_then_batches() -> None:
    # An executor that batches a kind once it knows its cost (process, celery at --batch 0): before,
    # a whole window of jobs went out one by one first (131,072 at 16 workers on the device run).
    in_flight, measured = [0], [False]
    units = Units(
        iter(["a"] * 1000),
        {"a": (0.0, 0, "")},
        lambda _: 64 if measured[0] else 1,
        10_000,
        lambda: in_flight[0],
        lambda _: 0 if measured[0] else 4,
    )
    taken = [units.take() for _ in range(4)]
    assert taken == [Job(i, "a", 0.0, 0, "") for i in range(4)] and not units.ready  # one by one, no chunk
    in_flight[0] = 4
    assert units.take() is FULL  # the rest wait for the cost, not the window

    async def waiters_freed_once_measured() -> Any:
        waiting = asyncio.ensure_future(units.room())
        await asyncio.sleep(0)
        measured[0] = True
        unit = units.take()
        await asyncio.sleep(0)
        return unit, waiting.done()

    unit, woken = asyncio.run(waiters_freed_once_measured())
    assert unit == Batch(4, 64, "a") and woken  # a batch, and the held drivers take again


def test_the_executors_probe_limit_holds_jobs_back_until_the_kinds_cost_is_known(
    stub: type[StubExecutor],
) -> None:
    # The coordinator asks the executor (process, Celery at --batch 0 do) how many jobs of a kind may
    # go out before one has ended; the rest of the window waits for it, then all of it fills.
    stub.plan = StubPlan(probe=3)
    result = _run(jobs=200, mix="sleep=1", io_ms=5, concurrency=16)
    assert result["jobs"] == {"submitted": 200, "done": 200, "failed": 0, "timed_out": 0, "lost": 0, "duplicates": 0}
    made = stub.made[-1]
    assert made.peak_probing == 3 and made.peak_in_run == 16
