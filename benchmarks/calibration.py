"""Calibration on a quiet machine and with two busy processes, by the old rule (wall clock, median
of three) and the current one (CPU time of the thread, best of five).

    python benchmarks/calibration.py [--rounds 5]

Quiet and busy measurements alternate, round by round, so a machine whose speed drifts (other
users, a host's neighbours) moves both alike. Prints each rule's spin and hash rates, quiet and
busy (medians over the rounds), the median of the rounds' busy/quiet ratios (the closer to 1.00,
the less a busy machine shortens the jobs it sizes) with their range, and the load averages: on a
machine that others load too, "quiet" is only as quiet as they let it be.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from workers.calibration import Calibration, calibrate
from workers.jobs import hash_rounds, spin


def wall_median(work: Callable[[int], object], units: int) -> float:
    samples = []
    for _ in range(3):
        began = time.perf_counter()
        work(units)
        samples.append(units / ((time.perf_counter() - began) * 1000.0))
    return statistics.median(samples)


def measure(sizing: Calibration) -> dict[str, float]:
    """One round of both rules; the wall rule's batches are 30 ms by ``sizing``."""
    current = calibrate()
    return {
        "wall spin": wall_median(spin, sizing.units("cpu", 30)),
        "wall hash": wall_median(hash_rounds, sizing.units("hash", 30)),
        "cpu spin": current.spin_iterations_per_ms,
        "cpu hash": current.hash_rounds_per_ms,
    }


def busy_round(sizing: Calibration) -> dict[str, float]:
    busy_procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        return measure(sizing)
    finally:
        for proc in busy_procs:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    sizing = calibrate()
    quiet: dict[str, list[float]] = {}
    busy: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, value in measure(sizing).items():
            quiet.setdefault(name, []).append(value)
        for name, value in busy_round(sizing).items():
            busy.setdefault(name, []).append(value)
    load_after = os.getloadavg()
    print(f"{'rule':<10} {'quiet':>10} {'2 busy':>10} {'busy/quiet':>11} {'range':>12}")
    for name in quiet:
        ratios = [b / q for q, b in zip(quiet[name], busy[name], strict=True)]
        q, b = statistics.median(quiet[name]), statistics.median(busy[name])
        span = f"{min(ratios):.2f}..{max(ratios):.2f}"
        print(f"{name:<10} {q:>10.2f} {b:>10.2f} {statistics.median(ratios):>11.2f} {span:>12}")
    loads = " / ".join(f"{a:.2f}" for a in load_before), " / ".join(f"{a:.2f}" for a in load_after)
    where = f"{args.rounds} rounds on {os.cpu_count()} cores"
    print(f"{where}; load average (1/5/15 min) {loads[0]} before, {loads[1]} after")


if __name__ == "__main__":
    main()
