"""Calibration on a quiet machine and with two busy processes, by the old rule (wall clock, median
of three) and the current one (CPU time of the thread, best of five).

    python benchmarks/calibration.py [--rounds 5]

Prints each rule's spin and hash rates, quiet and busy, and the busy/quiet ratio: the closer to
1.00, the less a busy machine shortens the jobs it sizes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from workers.calibration import calibrate
from workers.jobs import hash_rounds, spin


def wall_median(work: Callable[[int], object], units: int) -> float:
    samples = []
    for _ in range(3):
        began = time.perf_counter()
        work(units)
        samples.append(units / ((time.perf_counter() - began) * 1000.0))
    return statistics.median(samples)


def measure(rounds: int) -> dict[str, float]:
    current = [calibrate() for _ in range(rounds)]
    spin_units = round(current[0].spin_iterations_per_ms * 30)
    hash_units = max(1, round(current[0].hash_rounds_per_ms * 30))
    return {
        "wall spin": statistics.median(wall_median(spin, spin_units) for _ in range(rounds)),
        "wall hash": statistics.median(wall_median(hash_rounds, hash_units) for _ in range(rounds)),
        "cpu spin": statistics.median(c.spin_iterations_per_ms for c in current),
        "cpu hash": statistics.median(c.hash_rounds_per_ms for c in current),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    quiet = measure(args.rounds)
    busy_procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        busy = measure(args.rounds)
    finally:
        for proc in busy_procs:
            proc.kill()
            proc.wait()
    print(f"{'rule':<10} {'quiet':>10} {'2 busy':>10} {'busy/quiet':>11}")
    for name in quiet:
        print(f"{name:<10} {quiet[name]:>10.2f} {busy[name]:>10.2f} {busy[name] / quiet[name]:>11.2f}")


if __name__ == "__main__":
    main()
