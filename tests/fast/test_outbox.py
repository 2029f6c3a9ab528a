"""The outbox's arithmetic and bookkeeping at their edges (``workers.batching``): the moving
average of service times, the count of results before a cost is trusted, the batch limit counted
exactly, and jobs sent on their own taking a slot. The outbox's main paths are in
``tests/test_batching.py``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from workers.batching import BATCH_AFTER, MAX_BATCH, Outbox


@dataclass
class _Item:
    order: int


def _box(*, fixed: int = 0, budget_s: float = 0.0105, limit: int = 4) -> Outbox[_Item]:
    return Outbox(lambda _: True, fixed=fixed, budget_s=budget_s, limit=lambda: limit)


def test_cost_is_trusted_after_exactly_batch_after_results() -> None:
    box = _box()
    for _ in range(BATCH_AFTER - 1):
        box.note_cost("io", 0.001)
    assert box.batch_size("io") == 1  # one result short: still one by one
    box.note_cost("io", 0.001)
    assert box.batch_size("io") == 10  # 10.5 ms of 1 ms jobs


def test_cost_is_a_moving_average_weighing_the_newest_result_one_tenth() -> None:
    box = _box()
    for _ in range(BATCH_AFTER - 1):
        box.note_cost("io", 0.001)
    box.note_cost("io", 0.002)  # 0.9 * 1 ms + 0.1 * 2 ms = 1.1 ms
    assert box.batch_size("io") == 9  # int(10.5 / 1.1)
    box.note_cost("io", 0.012)  # 0.9 * 1.1 ms + 0.1 * 12 ms = 2.19 ms
    assert box.batch_size("io") == 4  # int(10.5 / 2.19)


def test_reset_forgets_every_measured_cost() -> None:
    box = _box()
    for _ in range(BATCH_AFTER):
        box.note_cost("io", 0.001)
    box.reset_costs()
    assert box.batch_size("io") == 1


def test_batch_size_bounds() -> None:
    box = _box(budget_s=1.0)
    for _ in range(BATCH_AFTER):
        box.note_cost("free", 0.0)  # a cost of 0 asks for the most, not for a division by zero
        box.note_cost("tiny", 1e-9)
        box.note_cost("just", 1.0 / (MAX_BATCH - 1))
    assert box.batch_size("free") == MAX_BATCH and box.batch_size("tiny") == MAX_BATCH
    assert box.batch_size("just") == MAX_BATCH - 1
    fixed = _box(fixed=1)
    for _ in range(BATCH_AFTER):
        fixed.note_cost("io", 0.0001)
    assert fixed.batch_size("io") == 1  # --batch 1: batching off, whatever the measured cost


def test_full_at_exactly_the_limit_and_slots_counted_one_by_one() -> None:
    box = _box(limit=2)
    assert box.out == 0 and not box.full()
    box.count_out()
    assert box.out == 1 and not box.full()
    box.count_out()
    assert box.out == 2 and box.full()

    async def finish_one() -> None:
        box.task_done()

    asyncio.run(finish_one())
    assert box.out == 1 and not box.full()


def test_flush_fills_the_limit_exactly_with_batches_of_the_measured_size() -> None:
    sent: list[list[int]] = []

    def send(chunk: list[_Item]) -> bool:
        sent.append([item.order for item in chunk])
        return True

    async def scenario() -> Outbox[_Item]:
        box: Outbox[_Item] = Outbox(send, fixed=0, budget_s=0.0035, limit=lambda: 3)
        for _ in range(BATCH_AFTER):
            box.note_cost("io", 0.001)
        for order in range(12):
            box.put("io", _Item(order))
        assert sent == []  # nothing leaves before the loop turns: later jobs may still join
        await asyncio.sleep(0)
        return box

    box = asyncio.run(scenario())
    assert sent == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # 3 batches of int(3.5 / 1) = 3, then the limit
    assert box.out == 3 and box.waiting("io") and not box.waiting("cpu")


def test_oldest_first_across_kinds() -> None:
    sent: list[list[int]] = []

    def send(chunk: list[_Item]) -> bool:
        sent.append([item.order for item in chunk])
        return True

    async def scenario() -> None:
        box: Outbox[_Item] = Outbox(send, fixed=5, budget_s=1.0, limit=lambda: 1)
        box.put("b", _Item(3))
        box.put("a", _Item(1))
        box.put("c", _Item(2))
        await asyncio.sleep(0)
        assert sent == [[1]]  # kind a holds the oldest job, whatever the order kinds were seen in
        box.task_done()
        await asyncio.sleep(0)
        assert sent == [[1], [2]]

    asyncio.run(scenario())


def test_measuring_lasts_until_exactly_batch_after_results_and_never_with_a_fixed_size() -> None:
    box = _box()
    assert box.measuring("io")  # never seen
    for _ in range(BATCH_AFTER - 1):
        box.note_cost("io", 0.001)
    assert box.measuring("io") and box.measuring("cpu")  # one result short; another kind unseen
    box.note_cost("io", 0.001)
    assert not box.measuring("io") and box.measuring("cpu")
    assert not _box(fixed=8).measuring("io")  # --batch N: nothing to measure
