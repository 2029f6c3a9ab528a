"""A run over time: buckets of ``{t_s, jobs_per_s, p50_ms, p99_ms, in_flight, loop_lag_ms,
cpu_pct, rss_mb}``, so a warm-up transient, a stall or a backlog that grows is visible.

Buckets are 50 ms wide for the first second, 100 ms until 10 s, then 1 s: a short run still gets
ten or more, a long one one per second. Each bucket's latencies are those of the jobs completed in
it (percentiles of exactly those values, taken as the coordinator moves them into the run's
histograms, which it does here, once per bucket). A bucket ends when the ticker wakes, which is late
when the loop is blocked: ``t_s`` is when it really ended, and rates use the real width.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.engine.ledger import DONE, FAILED, TIMED_OUT, Ledger
from runner.engine.metrics import JobLatencies, LoopLag, ResourceSampler


@dataclass(frozen=True)
class RunStatus:
    """A run as it goes, for live views and metrics: counts so far and the latest bucket."""

    mode: str
    total: int
    submitted: int
    done: int
    failed: int
    timed_out: int
    in_flight: int
    elapsed_s: float
    latest: dict[str, Any] | None  # the last closed bucket of the time series
    rates: tuple[float, ...]  # jobs/s of the recent buckets, oldest first
    finished: bool = False
    # Done jobs so far by latency, cumulative over LATENCY_BOUNDS_S (for a metrics scrape), and
    # the sum of their latencies in seconds.
    latency_counts: tuple[int, ...] = ()
    latency_sum_s: float = 0.0


# Upper bounds of the latency buckets that metrics export (seconds); the last one is +Inf.
LATENCY_BOUNDS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def bucket_width(t_s: float) -> float:
    return 0.05 if t_s < 1.0 else 0.1 if t_s < 10.0 else 1.0


class Timeline:
    def __init__(
        self,
        latencies: JobLatencies,
        ledger: Ledger,
        lag: LoopLag,
        sampler: ResourceSampler,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._latencies, self._ledger, self._lag, self._sampler = latencies, ledger, lag, sampler
        self._clock = clock
        self._start = 0.0
        self._last_t = 0.0
        self._last_done = 0
        self._last_cpu_s = 0.0
        self._latency_counts = [0] * (len(LATENCY_BOUNDS_S) + 1)
        self._latency_sum_s = 0.0
        self.buckets: list[dict[str, Any]] = []

    def begin(self, start: float) -> None:
        self._start = start
        self._last_cpu_s = self._sampler.cpu_s_so_far()

    async def run(self) -> None:
        """Close a bucket at every edge until cancelled (the coordinator closes the last one)."""
        while True:
            t = self._clock() - self._start
            await asyncio.sleep(max(0.0, self._last_t + bucket_width(self._last_t) - t))
            self.close_bucket()

    def status(self, mode: str, total: int, finished: bool = False) -> RunStatus:
        ledger = self._ledger
        return RunStatus(
            mode=mode,
            total=total,
            submitted=ledger.submitted,
            done=ledger.counts[DONE],
            failed=ledger.counts[FAILED],
            timed_out=ledger.counts[TIMED_OUT],
            in_flight=ledger.in_flight,
            elapsed_s=max(0.0, self._clock() - self._start) if self._start else 0.0,
            latest=self.buckets[-1] if self.buckets else None,
            rates=tuple(b["jobs_per_s"] for b in self.buckets[-40:]),
            finished=finished,
            latency_counts=tuple(itertools.accumulate(self._latency_counts)),
            latency_sum_s=self._latency_sum_s,
        )

    def close_bucket(self) -> None:
        now = self._clock() - self._start
        width = now - self._last_t
        if width <= 0:
            return
        done_latencies = self._latencies.flush()
        done = self._ledger.counts[DONE]
        cpu_s = self._sampler.cpu_s_so_far()
        p50 = p99 = None
        if done_latencies is not None and len(done_latencies):
            import numpy as np

            p50, p99 = (round(float(v) * 1000, 3) for v in np.percentile(done_latencies, [50, 99]))
            slots = np.searchsorted(np.asarray(LATENCY_BOUNDS_S), done_latencies, side="left")
            for slot, count in enumerate(np.bincount(slots, minlength=len(self._latency_counts)).tolist()):
                self._latency_counts[slot] += count
            self._latency_sum_s += float(done_latencies.sum())
        self.buckets.append(
            {
                "t_s": round(now, 3),
                "jobs_per_s": round((done - self._last_done) / width, 2),
                "p50_ms": p50,
                "p99_ms": p99,
                "in_flight": self._ledger.in_flight,
                "loop_lag_ms": round(self._lag.take_recent_max() * 1000, 3),
                "cpu_pct": round(max(0.0, cpu_s - self._last_cpu_s) / width * 100, 1),
                "rss_mb": round(self._sampler.last_rss / 2**20, 1),
            }
        )
        self._last_t, self._last_done, self._last_cpu_s = now, done, cpu_s
