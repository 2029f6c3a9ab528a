"""The outbox both pools batch small jobs in (``workers.batching``): sizes from measured cost, first
come first sent across kinds, never more batches out than the limit, and a send that cannot go now
keeps its jobs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from workers.batching import BATCH_AFTER, MAX_BATCH, Outbox

pytestmark = pytest.mark.fast  # pure unit tests of the outbox: part of the fast tier (and of `make mutate`)


@dataclass
class _Item:
    order: int


def test_batch_size_comes_from_measured_cost() -> None:
    box: Outbox[_Item] = Outbox(lambda _: True, fixed=0, budget_s=0.002, limit=lambda: 4)
    assert box.batch_size("noop") == 1  # cost unknown: one by one
    for _ in range(BATCH_AFTER):
        box.note_cost("noop", 0.0001)
    assert box.batch_size("noop") == 20  # 2 ms of 0.1 ms jobs
    for _ in range(50):
        box.note_cost("free", 0.0)
    assert box.batch_size("free") == MAX_BATCH
    for _ in range(BATCH_AFTER):
        box.note_cost("slow", 0.05)
    assert box.batch_size("slow") == 1
    assert Outbox(lambda _: True, fixed=7, budget_s=0.002, limit=lambda: 4).batch_size("slow") == 7


def test_flush_sends_oldest_first_within_the_limit_and_keeps_what_cannot_go() -> None:
    sent: list[list[int]] = []
    accept = [True]

    def send(chunk: list[_Item]) -> bool:
        if accept[0]:
            sent.append([item.order for item in chunk])
        return accept[0]

    async def scenario() -> None:
        box: Outbox[_Item] = Outbox(send, fixed=2, budget_s=0.002, limit=lambda: 2)
        for order, kind in [(0, "b"), (1, "a"), (2, "b"), (3, "a"), (4, "a"), (5, "b")]:
            box.put(kind, _Item(order))
        await asyncio.sleep(0)  # one turn of the loop: the flush
        assert sent == [[0, 2], [1, 3]] and box.out == 2 and box.full()  # b's first job waited longest
        box.task_done()
        await asyncio.sleep(0)
        assert sent[-1] == [4] and box.out == 2  # a's turn (job 4 is older than b's 5)
        accept[0] = False
        box.task_done()
        await asyncio.sleep(0)
        assert len(sent) == 3 and box.waiting("b") and box.out == 1  # refused: job 5 stays
        accept[0] = True
        box.kick()
        await asyncio.sleep(0)
        assert sent[-1] == [5] and not box.waiting("b")

    asyncio.run(scenario())


def test_a_job_taken_back_is_never_sent() -> None:
    sent: list[int] = []

    def send(chunk: list[_Item]) -> bool:
        sent.extend(item.order for item in chunk)
        return True

    async def scenario() -> None:
        box: Outbox[_Item] = Outbox(send, fixed=5, budget_s=1, limit=lambda: 1)
        first, second = _Item(0), _Item(1)
        box.put("a", first)
        box.put("a", second)
        box.remove("a", first)  # timed out before it left
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert sent == [1]
