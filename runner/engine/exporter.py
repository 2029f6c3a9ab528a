"""Metrics a dashboard can read: ``--metrics-port PORT`` serves Prometheus / OpenMetrics text while
``submit`` or ``bench`` runs (prometheus_client's own HTTP server, on a thread of its own).

It is fed the coordinator's ``RunStatus`` snapshots (the same the live view shows) and reads only
the latest one at scrape time, so a scrape never touches the run's own data structures:

    runner_jobs_total{mode,outcome}           counter: jobs ended done, failed, timed_out
    runner_jobs_in_flight{mode}               gauge
    runner_throughput_jobs_per_second{mode}   gauge: the latest time-series bucket
    runner_loop_lag_seconds{mode}             gauge: the latest bucket's longest event-loop lag
    runner_job_latency_seconds{mode}          histogram of done jobs' latency

Counts add up over the runs of the process (a sweep's repeats), as Prometheus counters must only
grow. It binds to 127.0.0.1 unless told otherwise: the figures say what runs on the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from runner.engine.timeline import LATENCY_BOUNDS_S, RunStatus
from workers.errors import InputError, ServiceError

_OUTCOMES = ("done", "failed", "timed_out")


class MetricsExporter:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import CollectorRegistry

        if not 1 <= port <= 65535:
            raise InputError(f"--metrics-port: {port} is not a port (1 to 65535)")
        self.port, self.host = port, host
        self._lock = threading.Lock()
        self._current: dict[str, RunStatus] = {}  # mode -> latest snapshot of the run going on
        self._earlier: dict[str, dict[str, Any]] = {}  # mode -> totals of its finished runs
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # a custom collector: it has collect()
        self._server: Any = None

    def start(self) -> None:
        from prometheus_client import start_http_server

        try:
            self._server, _ = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise ServiceError(
                f"--metrics-port: cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MetricsExporter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def update(self, status: RunStatus) -> None:
        with self._lock:
            if status.finished:
                totals = self._earlier.setdefault(status.mode, _empty())
                for outcome in _OUTCOMES:
                    totals[outcome] += getattr(status, outcome)
                totals["latency_counts"] = [
                    a + b for a, b in zip(totals["latency_counts"], status.latency_counts, strict=False)
                ] or list(status.latency_counts)
                totals["latency_sum_s"] += status.latency_sum_s
                self._current.pop(status.mode, None)
            else:
                self._current[status.mode] = status

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self._lock:
            current = dict(self._current)
            earlier = {mode: dict(totals) for mode, totals in self._earlier.items()}
        jobs = CounterMetricFamily("runner_jobs", "Jobs that ended, by outcome", labels=["mode", "outcome"])
        in_flight = GaugeMetricFamily("runner_jobs_in_flight", "Jobs handed out and not ended", labels=["mode"])
        rate = GaugeMetricFamily(
            "runner_throughput_jobs_per_second", "Done jobs per second, latest bucket", labels=["mode"]
        )
        lag = GaugeMetricFamily("runner_loop_lag_seconds", "Longest event-loop lag, latest bucket", labels=["mode"])
        latency = HistogramMetricFamily("runner_job_latency_seconds", "Latency of done jobs", labels=["mode"])
        for mode in sorted(set(current) | set(earlier)):
            totals = earlier.get(mode, _empty())
            now = current.get(mode)
            for outcome in _OUTCOMES:
                jobs.add_metric([mode, outcome], totals[outcome] + (getattr(now, outcome) if now else 0))
            in_flight.add_metric([mode], now.in_flight if now else 0)
            latest = (now.latest if now else None) or {}
            rate.add_metric([mode], float(latest.get("jobs_per_s") or 0.0))
            lag.add_metric([mode], float(latest.get("loop_lag_ms") or 0.0) / 1000)
            counts = list(totals["latency_counts"]) or [0] * (len(LATENCY_BOUNDS_S) + 1)
            if now and now.latency_counts:
                counts = [a + b for a, b in zip(counts, now.latency_counts, strict=True)]
            bounds = [*(f"{b:g}" for b in LATENCY_BOUNDS_S), "+Inf"]
            total_sum = totals["latency_sum_s"] + (now.latency_sum_s if now else 0.0)
            latency.add_metric([mode], list(zip(bounds, counts, strict=True)), total_sum)
        yield from (jobs, in_flight, rate, lag, latency)


def _empty() -> dict[str, Any]:
    return {"done": 0, "failed": 0, "timed_out": 0, "latency_counts": [], "latency_sum_s": 0.0}
