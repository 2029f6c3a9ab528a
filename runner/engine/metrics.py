"""Measurements taken while a run goes: latency histograms, event-loop lag, CPU and memory.

Latencies go into HDR histograms (microsecond resolution, 3 significant digits, up to an hour),
so percentiles stay exact enough without keeping a sample per job. Resources are sampled by a
thread every 100 ms with psutil: the coordinator, the executor's worker processes and their
children.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from array import array
from collections.abc import Container
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

_MAX_US = 3_600_000_000


class Latency:
    """An HDR histogram of durations, fed in seconds, reported in milliseconds.

    ``record`` only appends to a buffer (a C call, a few tens of nanoseconds): feeding the
    histogram one value at a time costs about a microsecond, which would be most of the
    coordinator's budget per no-op job. ``flush`` moves the buffer into the histogram in bulk --
    values rounded to the histogram's own precision, then recorded once per distinct value.
    """

    def __init__(self) -> None:
        self._hist = HdrHistogram(1, _MAX_US, 3)
        self._buffer = array("d")
        self.record = self._buffer.append
        self._counts: Any = None  # numpy counts by (shift, mantissa) key, not yet in the histogram

    def record_repeated(self, seconds: float, count: int) -> None:
        self._buffer.extend(array("d", (seconds,)) * count)

    def flush(self) -> None:
        if not self._buffer:
            return
        import numpy as np

        seconds = np.frombuffer(self._buffer, dtype=np.float64).copy()
        del self._buffer[:]
        self.record_many(seconds)

    def record_many(self, seconds: Any) -> None:
        """Record a numpy array of durations in seconds."""
        import numpy as np

        micros = np.clip(seconds * 1e6, 1, _MAX_US).astype(np.int64)
        # Keep 11 significant bits, as the histogram does for 3 significant digits, and count
        # each (shift, mantissa) pair with one bincount: linear time, no sort, and the same
        # buckets in the end. One record_value per distinct bucket, not per value.
        shift = np.maximum(0, np.frexp(micros.astype(np.float64))[1] - 11)
        keys = (shift << 11) | (micros >> shift)  # mantissa < 2**11
        counts = np.bincount(keys)
        # Counted here, in numpy, across flushes; the histogram gets them once, when read: its
        # record_value is Python, a microsecond per distinct bucket, for every flush otherwise.
        if self._counts is None or len(self._counts) < len(counts):
            grown = np.zeros(max(len(counts), 0 if self._counts is None else len(self._counts)), dtype=np.int64)
            if self._counts is not None:
                grown[: len(self._counts)] = self._counts
            self._counts = grown
        self._counts[: len(counts)] += counts

    def _settle(self) -> None:
        """Everything recorded so far into the histogram."""
        self.flush()
        if self._counts is None:
            return
        import numpy as np

        counts, self._counts = self._counts, None
        for key in np.flatnonzero(counts).tolist():
            self._hist.record_value((key & 2047) << (key >> 11), int(counts[key]))

    @property
    def count(self) -> int:
        self._settle()
        return int(self._hist.get_total_count())

    def encode(self) -> str:
        """Compressed, base64 form, small enough to keep per run in a results file."""
        self._settle()
        return bytes(self._hist.encode()).decode("ascii")

    @classmethod
    def merged(cls, encoded: list[str]) -> Latency:
        """One histogram holding every value of the encoded ones (e.g. a cell's repeats)."""
        merged = cls()
        for text in encoded:
            merged._hist.decode_and_add(text.encode("ascii"))
        return merged

    def summary(self) -> dict[str, float]:
        self._settle()
        hist = self._hist
        if hist.get_total_count() == 0:
            return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
        (p50, p95, p99), mean = _percentiles_and_mean(hist, (50, 95, 99))
        return {
            "p50": p50 / 1000,
            "p95": p95 / 1000,
            "p99": p99 / 1000,
            "max": hist.get_max_value() / 1000,
            "mean": round(mean / 1000, 3),
        }


def _percentiles_and_mean(hist: HdrHistogram, percentiles: tuple[float, ...]) -> tuple[list[int], float]:
    """What ``get_percentile_to_value_dict`` and ``get_mean_value`` answer, the same figures, from
    the counts array in numpy: theirs walk every bucket in Python, ~0.4 s per summary set of a
    100,000-job run, which every run of a sweep waited for after its timing had ended."""
    import numpy as np

    filled = min(hist.counts_len, hist.encoder.payload.counts_len)  # a decoded one may be shorter
    counts = np.ctypeslib.as_array(hist.counts)[:filled].astype(np.int64)
    index = np.arange(filled, dtype=np.int64)
    half_magnitude, half = hist.sub_bucket_half_count_magnitude, hist.sub_bucket_half_count
    bucket = (index >> half_magnitude) - 1
    sub = (index & (half - 1)) + half
    first = bucket < 0  # the first bucket also holds the values below half its count
    sub[first] -= half
    bucket[first] = 0
    lowest = sub << (bucket + hist.unit_magnitude)
    size = np.int64(1) << (bucket + hist.unit_magnitude)  # the span of values one count stands for
    total = int(hist.get_total_count())
    targets = [max(int(p * total / 100 + 0.5), 1) for p in percentiles]
    at = np.searchsorted(np.cumsum(counts), targets, side="left")
    values = [int(lowest[i] + size[i] - 1) for i in at]  # each bucket's highest equivalent value
    mean = float(np.dot(counts.astype(np.float64), (lowest + (size >> 1)).astype(np.float64))) / total
    return values, mean


class JobLatencies:
    """Per done job: latency (from the intended start in open loop, from hand-off in closed loop),
    the part of it spent waiting in the coordinator for a driver (open loop only), the service
    time (where it ran), and what is left, the queue wait. Appends per job; the queue wait is
    computed in bulk at flush. Failed and timed-out jobs: their latency, in histograms of their own."""

    def __init__(self) -> None:
        # numpy now, before the run: imported by the first flush mid-run, its ~13 MB would show
        # as a step in the coordinator's memory that has nothing to do with the jobs.
        importlib.import_module("numpy")
        self.total, self.service, self.queue_wait = Latency(), Latency(), Latency()
        self.coordinator_wait, self.failed, self.timed_out = Latency(), Latency(), Latency()
        self._total, self._service, self._wait = array("d"), array("d"), array("d")
        self.record_total, self.record_service = self._total.append, self._service.append
        self.record_wait = self._wait.append

    def record_batch(self, latency_s: float, service_s: Any, failed: Container[int]) -> None:
        """A batch's jobs, all handed off and answered together (one latency), each with its own
        service time (an ``array('d')``); the ``failed`` indexes go to the failed histogram."""
        if not failed:
            self._total.extend(array("d", (latency_s,)) * len(service_s))
            self._service.extend(service_s)
            return
        for index, service in enumerate(service_s):
            if index in failed:
                self.failed.record(latency_s)
            else:
                self.record_total(latency_s)
                self.record_service(service)

    def flush(self) -> Any:
        """Move the buffered values into the histograms; returns the done jobs' latencies that
        were moved (a numpy array, in seconds), or None when there were none."""
        for other in (self.failed, self.timed_out):
            other.flush()
        if not self._total:
            return None
        import numpy as np

        total = np.frombuffer(self._total, dtype=np.float64).copy()
        service = np.frombuffer(self._service, dtype=np.float64).copy()
        waited = np.frombuffer(self._wait, dtype=np.float64).copy() if self._wait else np.zeros_like(total)
        del self._total[:], self._service[:], self._wait[:]
        self.total.record_many(total)
        self.service.record_many(service)
        self.queue_wait.record_many(np.maximum(total - waited - service, 0.0))
        if waited.any():
            self.coordinator_wait.record_many(waited)
        return total

    def summary(self) -> dict[str, Any]:
        self.flush()
        return {
            "latency_ms": self.total.summary(),
            "coordinator_wait_ms": self.coordinator_wait.summary(),
            "queue_wait_ms": self.queue_wait.summary(),
            "service_ms": self.service.summary(),
            "latency_by_outcome_ms": {
                outcome: {"count": hist.count, **hist.summary()}
                for outcome, hist in (("done", self.total), ("failed", self.failed), ("timed_out", self.timed_out))
            },
        }

    def encode(self) -> dict[str, str]:
        self.flush()
        return {
            "latency": self.total.encode(),
            "coordinator_wait": self.coordinator_wait.encode(),
            "queue_wait": self.queue_wait.encode(),
            "service": self.service.encode(),
            "failed": self.failed.encode(),
            "timed_out": self.timed_out.encode(),
        }


class LoopLag:
    """How late the event loop wakes a coroutine that asked to sleep ``interval_s``: the time
    every other coroutine waited too, e.g. behind a CPU-bound job running inline."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.latency = Latency()
        self._recent_max = 0.0
        self._task: asyncio.Task[None] | None = None

    def take_recent_max(self) -> float:
        """The longest lag since the last call, in seconds (for a time series)."""
        recent, self._recent_max = self._recent_max, 0.0
        return recent

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="loop-lag")

    async def _watch(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, time.perf_counter() - before - self.interval_s)
            self.latency.record(lag)
            if lag > self._recent_max:
                self._recent_max = lag

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class ResourceSampler:
    """Peak RSS and CPU seconds of the coordinator and the worker processes (with children)."""

    def __init__(self, worker_pids: list[int], interval_s: float = 0.1, enabled: bool = True) -> None:
        self._enabled = enabled
        self._me = psutil.Process()
        self._roots = [p for p in (_proc(pid) for pid in worker_pids) if p is not None]
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self.coordinator_peak_rss = 0
        self.workers_peak_rss = 0
        self.total_peak_rss = 0
        self.last_rss = 0  # coordinator and workers at the latest sample
        self._thread = threading.Thread(target=self._loop, name="resource-sampler", daemon=True)
        self._tree: list[psutil.Process] | None = None
        self._samples = 0

    def start(self) -> None:
        if not self._enabled:
            return
        self._sample()
        self._cpu_start = dict(self._cpu_last)
        self._thread.start()

    def cpu_s_so_far(self) -> float:
        """CPU seconds of the coordinator and workers, as of the latest sample."""
        return sum(last - self._cpu_start.get(pid, 0.0) for pid, last in list(self._cpu_last.items()))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._enabled:
            self._thread.join()
            self._tree = None  # the last sample sees every process there is now
            self._sample()
        cpu_s = sum(last - self._cpu_start.get(pid, 0.0) for pid, last in self._cpu_last.items())
        coordinator_cpu = self._cpu_last.get(self._me.pid, 0.0) - self._cpu_start.get(self._me.pid, 0.0)
        return {
            "coordinator_peak_rss_mb": round(self.coordinator_peak_rss / 2**20, 1),
            "workers_peak_rss_mb": round(self.workers_peak_rss / 2**20, 1),
            "peak_rss_mb": round(self.total_peak_rss / 2**20, 1),
            "cpu_s": round(cpu_s, 3),
            "coordinator_cpu_s": round(coordinator_cpu, 3),
            "worker_processes": max(0, len(self._cpu_last) - 1),
        }

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _workers(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for root in self._roots:
            try:
                found.append(root)
                found.extend(root.children(recursive=True))
            except psutil.Error:
                continue
        return found

    def _sample(self) -> None:
        # Finding children scans every process on the machine: the worker tree is looked up once
        # a second (it changes only when a worker dies), its members measured every interval.
        self._samples += 1
        if self._tree is None or self._samples % _TREE_EVERY == 0:
            self._tree = self._workers()
        mine = self._measure(self._me)
        workers = sum(self._measure(proc) for proc in self._tree)
        self.coordinator_peak_rss = max(self.coordinator_peak_rss, mine)
        self.workers_peak_rss = max(self.workers_peak_rss, workers)
        self.total_peak_rss = max(self.total_peak_rss, mine + workers)
        self.last_rss = mine + workers

    def _measure(self, proc: psutil.Process) -> int:
        try:
            with proc.oneshot():
                cpu = proc.cpu_times()
                rss = int(proc.memory_info().rss)
        except psutil.Error:
            return 0  # gone: keep the CPU time it was last seen with
        self._cpu_last[proc.pid] = cpu.user + cpu.system
        return rss


_TREE_EVERY = 10  # samples between two look-ups of the worker processes' children


def _proc(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
