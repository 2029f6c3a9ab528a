"""Measure how many CPU units make a millisecond on this machine, once per run.

Jobs are specified in milliseconds of CPU (``--cpu-ms``) but carried as units (spin iterations,
hash rounds) so that every executor -- and every remote worker -- does the same work. The
calibration is recorded in the run result so numbers from different machines can be compared.

Samples are timed in CPU time of the calibrating thread (``time.thread_time``), not wall time,
and the best of several is kept: other processes competing for the cores stretch wall time but
not the CPU time the work takes, so a busy machine no longer makes jobs come out short. (With two
busy processes on 2 cores, wall-clock medians read 2.5x low.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from workers.jobs import hash_rounds, spin

_SAMPLE_S = 0.02  # CPU time per sample; 5 samples per kind keep calibration near 0.25 s in all
_SAMPLES = 5


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
    return Calibration(
        spin_iterations_per_ms=round(_rate(spin, 1000), 1),
        hash_rounds_per_ms=round(_rate(hash_rounds, 1), 3),
    )
