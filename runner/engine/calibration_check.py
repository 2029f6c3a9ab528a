"""Did the calibration hold where the work ran? Checked after every run, recorded in the result.

Two checks (``runner.engine.results.CalibrationCheck``):

- Each worker process's own rate -- measured as it started, where it runs -- against the
  coordinator's, which sized the jobs. More than ``WORKER_THRESHOLD`` (25 %) apart means the same
  units take longer (or less) there: another machine, another interpreter. The result names the
  worker, and the bench's bound is computed with the workers' rate.
- The done ``cpu`` and ``hash`` jobs' CPU time, measured by the thread that ran each, against the
  ``--cpu-ms`` they were sized for (median per kind). More than ``THRESHOLD`` (15 %) off means the
  jobs did not take what their figures claim. 15 %: the calibration keeps the fastest of five
  samples, so a typical job takes a few per cent more CPU than the calibrated figure, and repeated
  spin calibrations on the loaded 2-core development machine spread by 10 % and more (hash by
  2 %); 10 % would flag sound runs, a wider margin would hide a 20 % slower worker. ``mixed``
  jobs are not checked: their I/O phase lets other jobs' CPU into the same thread's clock (event
  loop, greenlets). Wall-clock service / cpu_ms is recorded beside it, as context only: it also
  holds waits for the GIL (threads) or for a core shared with other processes.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from runner.engine.results import CalibrationCheck, KindCheck, WorkerRate
from workers.base import JobReport
from workers.calibration import DIFFERS, Calibration, ratio

THRESHOLD = 0.15
WORKER_THRESHOLD = DIFFERS
CHECKED = ("cpu", "hash")  # kinds sized by --cpu-ms with no I/O phase
_KEEP = 20_000  # samples kept per kind: past it, every other one is dropped (and later ones thinned alike)


class _Thinned:
    """A bounded, evenly spread sample of a long run's values (every ``stride``-th one)."""

    __slots__ = ("seen", "stride", "values")

    def __init__(self) -> None:
        self.values: list[tuple[float, float | None]] = []
        self.seen = 0
        self.stride = 1

    def add(self, service_s: float, cpu_s: float | None) -> None:
        self.seen += 1
        if self.seen % self.stride:
            return
        self.values.append((service_s, cpu_s))
        if len(self.values) >= 2 * _KEEP:
            self.values = self.values[1::2]
            self.stride *= 2


class ServiceSamples:
    """Service and CPU times of the done jobs of the checked kinds, as the coordinator gets them."""

    def __init__(self, kinds: Mapping[str, float]) -> None:
        self.kinds = {kind: _Thinned() for kind in CHECKED if kind in kinds}

    def add(self, kind: str, report: JobReport) -> None:
        samples = self.kinds.get(kind)
        if samples is not None:
            samples.add(report.service_s, report.cpu_s)


def check(
    samples: ServiceSamples, cpu_ms: float, coordinator: Calibration, workers: Mapping[str, Calibration]
) -> CalibrationCheck:
    warnings: list[str] = []
    rates: dict[str, WorkerRate] = {}
    for name, rate in sorted(workers.items()):
        spin, hashed = ratio(rate, coordinator, "cpu") or 1.0, ratio(rate, coordinator, "hash") or 1.0
        differs = max(abs(spin - 1), abs(hashed - 1)) > WORKER_THRESHOLD
        rates[name] = WorkerRate(
            **rate.to_dict(), spin_ratio=round(spin, 3), hash_ratio=round(hashed, 3), differs=differs
        )
        if differs:
            slower = min(spin, hashed) < 1 - WORKER_THRESHOLD
            warnings.append(
                f"worker {name} runs CPU units at {spin:.2f}x (spin) / {hashed:.2f}x (hash) the coordinator's "
                f"rate (measured as each started): its jobs take {'longer' if slower else 'less'} than --cpu-ms "
                "there (another machine, or one whose speed changed)"
            )
    kinds: dict[str, KindCheck] = {}
    for kind, thinned in samples.kinds.items():
        if not thinned.values or cpu_ms <= 0:
            continue
        expected = expected_ratio(coordinator, workers, kind)
        service_ms = statistics.median(s for s, _ in thinned.values) * 1000
        cpus = [c for _, c in thinned.values if c is not None]
        cpu_med = statistics.median(cpus) * 1000 if cpus else None
        cpu_ratio = cpu_med / cpu_ms if cpu_med is not None else None
        off = cpu_ratio is not None and abs(cpu_ratio - 1) > THRESHOLD
        kinds[kind] = KindCheck(
            jobs=thinned.seen,
            cpu_ms=cpu_ms,
            median_cpu_ms=None if cpu_med is None else round(cpu_med, 3),
            cpu_ratio=None if cpu_ratio is None else round(cpu_ratio, 3),
            median_service_ms=round(service_ms, 3),
            service_ratio=round(service_ms / cpu_ms, 3),
            expected_ratio=round(expected, 3),
            off=off,
        )
        if off and cpu_ratio is not None:
            why = (
                f"the workers' own calibration predicts {expected:.2f}x"
                if abs(expected - 1) > WORKER_THRESHOLD
                else "the calibration did not hold (the machine changed speed, or the calibration is pinned "
                "with RUNNER_CALIBRATION from another machine)"
            )
            warnings.append(
                f"{kind} jobs sized for {cpu_ms:g} ms took {cpu_med:.3g} ms of CPU (median, {cpu_ratio:.2f}x): {why}"
            )
    return CalibrationCheck(
        threshold=THRESHOLD, worker_threshold=WORKER_THRESHOLD, workers=rates, kinds=kinds, warnings=warnings
    )


def expected_ratio(coordinator: Calibration, workers: Mapping[str, Calibration], kind: str) -> float:
    """How much longer than sized a job of ``kind`` takes on these workers, by their own rates
    (1.0 when the jobs run in the coordinator's process)."""
    ratios = [r for r in (ratio(rate, coordinator, kind) for rate in workers.values()) if r]
    return 1.0 / statistics.fmean(ratios) if ratios else 1.0


def cpu_ms_scale(coordinator: Calibration, workers: Mapping[str, Calibration]) -> dict[str, float]:
    """For the bound: how much longer GIL-holding (spin) and GIL-free (hash) work takes on the
    workers than it was sized for -- only where their rates differ by more than ``WORKER_THRESHOLD``."""
    scale = {}
    for part, kind in (("gil", "cpu"), ("free", "hash")):
        stretch = expected_ratio(coordinator, workers, kind)
        scale[part] = stretch if abs(1 / stretch - 1) > WORKER_THRESHOLD else 1.0
    return scale
