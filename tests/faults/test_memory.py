"""100,000 jobs with 10,000 in flight. The coordinator never has more than 10,000 jobs in
flight (the ledger's exact peak) and its memory stays flat: resident set size once job 100,000 is
done within 10 % of what it was once job 10,000 was done."""

from __future__ import annotations

import psutil

from runner.engine.coordinator import run_mode
from runner.engine.spec import WorkloadSpec
from runner.engine.timeline import RunStatus


def test_memory_is_flat_and_in_flight_bounded() -> None:
    me = psutil.Process()
    samples: list[tuple[int, int, int]] = []  # (jobs finished, RSS bytes, jobs in flight)

    def progress(status: RunStatus) -> None:
        # Only records: the coordinator swallows a progress callback's exceptions, so the checks
        # come after the run.
        samples.append((status.done + status.failed + status.timed_out, me.memory_info().rss, status.in_flight))

    spec = WorkloadSpec.build(
        {"jobs": 100_000, "mix": "sleep=1", "io_ms": 1, "concurrency": 10_000, "timeout": 60}, ("async",)
    )
    result = run_mode(spec, "async", progress=progress).to_json()
    assert result["jobs"] == {
        "submitted": 100_000,
        "done": 100_000,
        "failed": 0,
        "timed_out": 0,
        "lost": 0,
        "duplicates": 0,
    }
    assert result["peak_in_flight"] == 10_000
    assert len(samples) >= 3 and max(in_flight for _, _, in_flight in samples) <= 10_000
    after_10k = next(rss for finished, rss, _ in samples if finished >= 10_000)
    after_100k = samples[-1][1]
    assert samples[-1][0] == 100_000
    print(f"RSS after job 10,000: {after_10k / 2**20:.1f} MiB, after job 100,000: {after_100k / 2**20:.1f} MiB")
    assert after_100k <= after_10k * 1.10
