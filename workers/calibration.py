"""Measure how many CPU units make a millisecond on this machine, once per run.

Jobs are specified in milliseconds of CPU (``--cpu-ms``) but carried as units (spin iterations,
hash rounds) so that every executor -- and every remote worker -- does the same work. The
calibration is recorded in the run result so numbers from different machines can be compared.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from workers.jobs import hash_rounds, spin

_SAMPLE_S = 0.03  # per sample; 3 samples per kind keep calibration near 0.2 s in all


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(work: Callable[[int], object], start_units: int) -> float:
    """Units per millisecond: grow the batch until it takes ~_SAMPLE_S, then take a median."""
    units = start_units
    while True:
        began = time.perf_counter()
        work(units)
        took = time.perf_counter() - began
        if took >= _SAMPLE_S / 4:
            break
        units *= 4
    units = max(1, int(units * _SAMPLE_S / took))
    samples = []
    for _ in range(3):
        began = time.perf_counter()
        work(units)
        samples.append(units / ((time.perf_counter() - began) * 1000.0))
    return statistics.median(samples)


def calibrate() -> Calibration:
    return Calibration(
        spin_iterations_per_ms=round(_rate(spin, 1000), 1),
        hash_rounds_per_ms=round(_rate(hash_rounds, 1), 3),
    )
