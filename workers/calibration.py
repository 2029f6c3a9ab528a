"""Measure how many CPU units make a millisecond, in the coordinator and where the work runs.

Jobs are specified in milliseconds of CPU (``--cpu-ms``) but carried as units (spin iterations,
hash rounds). The coordinator's calibration sizes every job, and one calibration is shared by
every mode of a comparison, so every executor -- and every remote worker -- does the same work.

Each worker process that runs jobs outside the coordinator's process (pool processes, Celery
nodes, the gevent worker) also measures its own rate as it starts, before timing starts, and the
executor reports it (``Executor.worker_calibrations``): a worker whose rate differs from the
coordinator's by more than ``DIFFERS`` runs the same units slower or faster -- another machine,
another interpreter build -- and the result says so. (CPU time does not see a container's CPU
quota: that limits cores, which the bound counts, not the speed of each.) Threads and the event loop run in the
coordinator's process: its calibration is theirs.

Samples are timed in CPU time of the calibrating thread (``time.thread_time``), not wall time,
and the best of several is kept: other processes competing for the cores stretch wall time but
not the CPU time the work takes, so a busy machine no longer makes jobs come out short. (With two
busy processes on 2 cores, wall-clock medians read 2.5x low.)

``RUNNER_CALIBRATION`` pins the coordinator's calibration instead of measuring it -- e.g. to give
separate runs (one process per mode, or a rerun next week) the very same job sizes:
``spin_iterations_per_ms=15000,hash_rounds_per_ms=6.5``, or the path of a JSON file holding those
keys at its top or under ``calibration`` (a runner result.json or results.json). Workers always
measure their own rate; the override never reaches them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workers.errors import InputError
from workers.jobs import hash_rounds, spin

_SAMPLE_S = 0.02  # CPU time per sample; 5 samples per kind keep calibration near 0.25 s in all
_SAMPLES = 5
ENV = "RUNNER_CALIBRATION"
# A worker's rate this far from the coordinator's is reported (the bound uses it). 25 %: fresh
# processes on one quiet machine measured spin at 15.4k-19.7k iterations/ms (4 in a row, load
# 0.9), so a narrower margin reports sound local workers; another machine's usually lies beyond.
DIFFERS = 0.25


@dataclass(frozen=True)
class Calibration:
    spin_iterations_per_ms: float
    hash_rounds_per_ms: float

    def units(self, kind: str, cpu_ms: float) -> int:
        """CPU units for ``cpu_ms`` milliseconds of work of the given kind (at least one)."""
        if kind == "hash":
            return max(1, round(cpu_ms * self.hash_rounds_per_ms))
        if kind in ("cpu", "mixed"):
            return max(1, round(cpu_ms * self.spin_iterations_per_ms))
        return 0

    def rate(self, kind: str) -> float | None:
        """Units per millisecond for a kind sized by ``--cpu-ms`` (None for the others)."""
        if kind == "hash":
            return self.hash_rounds_per_ms
        if kind in ("cpu", "mixed"):
            return self.spin_iterations_per_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = ENV) -> Calibration:
        """From ``to_dict``'s keys; InputError (one line) on a missing key or a rate that is not > 0."""
        values: dict[str, float] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InputError(f"{where}: {f.name} must be a number above 0, got {value!r}")
            values[f.name] = float(value)
        return cls(**values)


def _rate(work: Callable[[int], object], start_units: int) -> float:
    """Units per millisecond of CPU: grow the batch until it takes ~_SAMPLE_S, then keep the
    fastest of _SAMPLES samples (interference only ever slows a sample down)."""
    clock = time.thread_time
    units = start_units
    while True:
        began = clock()
        work(units)
        took = clock() - began
        if took >= _SAMPLE_S / 4:
            break
        units *= 4
    units = max(1, int(units * _SAMPLE_S / took))
    best = 0.0
    for _ in range(_SAMPLES):
        began = clock()
        work(units)
        took = clock() - began
        if took > 0:
            best = max(best, units / (took * 1000.0))
    return best


def calibrate() -> Calibration:
    """Measure this process's rates now (about 0.25 s of CPU)."""
    return Calibration(
        spin_iterations_per_ms=round(_rate(spin, 1000), 1),
        hash_rounds_per_ms=round(_rate(hash_rounds, 1), 3),
    )


def measure_into(rates: Any, row: int) -> None:
    """A pool process's own rates (spin, hash) into its ``row`` of a shared array of doubles (none
    when ``rates`` is None)."""
    if rates is not None and row >= 0 and 2 * row + 1 < len(rates):
        own = calibrate()
        rates[2 * row], rates[2 * row + 1] = own.spin_iterations_per_ms, own.hash_rounds_per_ms


async def all_measured(rates: Any, limit_s: float = 60.0) -> None:
    """Wait until every row of ``rates`` holds a rate (or ``limit_s`` passed: those that did count)."""
    deadline = time.monotonic() + limit_s
    while rates is not None and not all(rates[i] > 0 for i in range(0, len(rates), 2)):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.01)


def measured(pools: list[tuple[Any, Any]], cols: int) -> Iterator[tuple[int, Calibration]]:
    """(pid, rate) of every process that measured itself, from each pool's (table, rates): the
    pid is the first of its ``cols`` columns in the table."""
    for table, rates in pools:
        for row in range(len(rates) // 2):
            if rates[2 * row] > 0 and table[row * cols]:
                yield int(table[row * cols]), Calibration(rates[2 * row], rates[2 * row + 1])


def for_coordinator() -> Calibration:
    """The calibration that sizes jobs: ``RUNNER_CALIBRATION`` if set, else measured here now."""
    text = os.environ.get(ENV, "").strip()
    return pinned(text) if text else calibrate()


def pinned(text: str) -> Calibration:
    """``RUNNER_CALIBRATION``'s value: ``key=rate,key=rate`` or a JSON file's path."""
    if "=" in text:
        data: dict[str, Any] = {}
        for part in text.split(","):
            key, _, value = part.partition("=")
            try:
                data[key.strip()] = float(value)
            except ValueError:
                raise InputError(f"{ENV}: expected key=number pairs, got {part.strip()[:60]!r}") from None
        return Calibration.from_dict(data)
    try:
        loaded = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{ENV}: cannot read a calibration from {text[:100]!r}: {exc}") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("calibration"), dict):
        loaded = loaded["calibration"]
    if not isinstance(loaded, dict):
        raise InputError(f"{ENV}: {text[:100]!r} holds no calibration object")
    return Calibration.from_dict(loaded, f"{ENV} ({text[:100]})")


def ratio(worker: Calibration, coordinator: Calibration, kind: str) -> float | None:
    """The worker's rate over the coordinator's for ``kind``: below 1, its jobs take longer there."""
    mine, theirs = worker.rate(kind), coordinator.rate(kind)
    return mine / theirs if mine and theirs else None
