"""Where coroutines win and where processes are needed, as two ratios on this machine.

    python benchmarks/executors.py [--repeats 3]

1. I/O only: 2,000 sleep jobs of 100 ms, 200 in flight -- async vs a 2-process pool.
2. CPU only: 100 jobs of 20 ms of pure-Python CPU -- a 2-process pool vs async.

Each case runs ``runner submit --json`` as a user would, alternating the two modes, and prints the
median throughput of each and the ratio (with the min..max of the per-repeat ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _submit import share_calibration, submit

CASES = [
    (
        "I/O only (sleep 100 ms x 2000, 200 in flight)",
        "async",
        "process",
        ["--mix", "sleep=1", "--io-ms", "100", "--jobs", "2000", "--concurrency", "200", "--workers", "2"],
        5.0,
    ),
    (
        "CPU only (20 ms of pure-Python CPU x 100)",
        "process",
        "async",
        ["--mix", "cpu=1", "--cpu-ms", "20", "--jobs", "100", "--workers", "2"],
        1.6,
    ),
]


def throughput(mode: str, args: list[str]) -> float:
    return submit(mode, args).throughput_jobs_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    share_calibration()
    failed = False
    for title, winner, loser, args, goal in CASES:
        ratios, wins, losses = [], [], []
        for _ in range(repeats):
            w, lo = throughput(winner, args), throughput(loser, args)
            wins.append(w)
            losses.append(lo)
            ratios.append(w / lo)
        ratio = statistics.median(ratios)
        verdict = "ok" if ratio >= goal else "BELOW GOAL"
        failed |= ratio < goal
        print(f"{title}")
        print(f"  {winner:8s} {statistics.median(wins):10,.1f} jobs/s")
        print(f"  {loser:8s} {statistics.median(losses):10,.1f} jobs/s")
        print(
            f"  {winner} / {loser} = {ratio:.2f}x (range {min(ratios):.2f}..{max(ratios):.2f}, "
            f"{repeats} repeats; goal >= {goal}x: {verdict})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
