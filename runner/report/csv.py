"""``summary.csv``: one row per cell of a sweep, figures unformatted (for spreadsheets and scripts)."""

from __future__ import annotations

import csv
import io

from runner.engine.bench_results import BenchResults
from runner.report.charts import Chart

CSV_FIELDS = [
    "mode",
    "mix",
    "cpu_share",
    "jobs_per_run",
    "repeats",
    "throughput_mean",
    "throughput_ci_low",
    "throughput_ci_high",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "queue_wait_p50_ms",
    "service_p50_ms",
    "loop_lag_p99_ms",
    "cpu_utilisation",
    "peak_rss_mb",
    "bound_jobs_per_s",
    "limited_by",
    "efficiency",
    "submitted",
    "done",
    "failed",
    "timed_out",
    "lost",
    "duplicates",
    # the sweep axes and noise, after the older columns so scripts reading by position keep working
    "workers",
    "concurrency",
    "load",
    "rate_per_s",
    "peak_in_flight",
    "cv",
    "busy_runs",
    "jobs_per_task",  # mean over the repeats; empty for executors that send no tasks
    "batch",  # the --batch setting: auto, 1 (one task per job) or N
]


class CsvExporter:
    filename = "summary.csv"

    def wanted(self, doc: BenchResults) -> bool:
        return bool(doc.cells)

    def render(self, doc: BenchResults, charts: list[Chart]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_FIELDS)
        for c in doc.cells:
            s, t, lat, jobs = c.summary, c.summary.throughput, c.summary.latency_ms, c.summary.jobs
            writer.writerow(
                [
                    c.mode,
                    c.mix_name,
                    c.cpu_share,
                    c.jobs_per_run,
                    t.n,
                    t.mean,
                    *t.ci95[:2],
                    lat.p50,
                    lat.p95,
                    lat.p99,
                    lat.max,
                    s.queue_wait_ms.p50,
                    s.service_ms.p50,
                    s.loop_lag_p99_ms.mean,
                    s.cpu_utilisation,
                    s.peak_rss_mb,
                    s.bound.jobs_per_s,
                    s.bound.limited_by,
                    s.efficiency,
                    jobs.submitted,
                    jobs.done,
                    jobs.failed,
                    jobs.timed_out,
                    jobs.lost,
                    jobs.duplicates,
                    c.workers,
                    c.concurrency,
                    "open" if c.open_loop else "closed",
                    c.rate_per_s or 0.0,
                    s.peak_in_flight,
                    s.cv,
                    s.busy_runs,
                    s.jobs_per_task,
                    s.batch,
                ]
            )
        return buffer.getvalue()
