"""``Units`` making single jobs 64 at a time until the first batch, and cutting a chunk before the
first job of a kind the executor batches: the rest of the chunk, and the kind read past it, handed
out after the batch -- found by ``make mutate``."""

from __future__ import annotations

from runner.engine.dispatch import FULL, Units
from workers.bulk import Batch
from workers.jobs import Job

PARAMS = {"s": (1.0, 2, ""), "t": (0.0, 5, "x"), "b": (3.0, 0, "")}
SIZES = {"s": 1, "t": 1, "b": 2}  # ``b`` goes out 2 at a time; a lookup: no kind but these is ever asked


def _units(kinds: list[str]) -> Units:
    return Units(iter(kinds), PARAMS, SIZES.__getitem__, 1000, lambda: 0, dict.fromkeys(SIZES, 0).__getitem__)


def test_every_job_is_handed_out_once_in_order_with_the_batched_kind_in_batches() -> None:
    # 409 jobs: two single kinds interleaved, then runs of the batched kind. The first chunk is
    # full (65 kinds read, the last put back); the second is full too and cut at job 100, with kinds
    # still unread behind it. After the first batch, single jobs go one by one (no more chunks).
    block = ["s", "t"] * 50 + ["b"] * 4 + ["s"] * 30 + ["b"] * 2
    kinds = block * 3 + ["s"]
    units = _units(kinds)
    taken: list[Job | Batch] = []
    while (unit := units.take()) is not None:
        assert unit is not FULL
        taken.append(unit)
        if len(taken) == 1:
            assert len(units.ready) == 63  # both single kinds in one chunk of 64
        assert len(units.ready) <= 63
    handed = [
        (i, u.kind) for u in taken for i in ([u.id] if isinstance(u, Job) else range(u.first_id, u.first_id + u.size))
    ]
    assert handed == list(enumerate(kinds))
    assert all(isinstance(u, Batch) == (u.kind == "b") for u in taken)  # the batched kind only in batches
    assert all(u == Batch(u.first_id, 2, "b", *PARAMS["b"]) for u in taken if isinstance(u, Batch))
    assert all(u == Job(u.id, u.kind, *PARAMS[u.kind]) for u in taken if isinstance(u, Job))


def test_a_workload_of_exactly_one_chunk_is_made_at_once() -> None:
    units = _units(["s"] * 64)
    assert units.take() == Job(0, "s", *PARAMS["s"])
    assert len(units.ready) == 63
