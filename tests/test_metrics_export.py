"""--metrics-port: a scrape during a real run parses as Prometheus text and adds up."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.faults.helpers import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    return {
        family.name: [(s.name, dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_a_scrape_during_a_run_reads_jobs_in_flight_and_latency() -> None:
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", "thread", "--jobs", "3000", "--mix", "sleep=3,fail=1"]
    cmd += ["--io-ms", "5", "--concurrency", "20", "--rate", "600", "--metrics-port", str(port), "--json", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scrapes = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # not listening yet, or already gone
                scrapes.append(_scrape(port))
            time.sleep(0.3)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    during = [s for s in scrapes if any(v > 0 for n, _, v in s["runner_jobs"] if n == "runner_jobs_total")]
    assert len(during) >= 3, "the run should have been scraped while it went"
    metrics = during[len(during) // 2]
    jobs = {labels["outcome"]: v for name, labels, v in metrics["runner_jobs"] if name == "runner_jobs_total"}
    assert set(jobs) == {"done", "failed", "timed_out"} and 0 < jobs["done"] + jobs["failed"] < 3000
    assert jobs["failed"] > 0 and jobs["timed_out"] == 0
    buckets = [
        (labels["le"], v) for name, labels, v in metrics["runner_job_latency_seconds"] if name.endswith("_bucket")
    ]
    counts = [v for _, v in buckets]
    assert buckets[-1][0] == "+Inf" and counts == sorted(counts) and counts[-1] > 0
    count = next(v for name, _, v in metrics["runner_job_latency_seconds"] if name.endswith("_count"))
    assert count == counts[-1] <= jobs["done"]
    assert {labels["mode"] for _, labels, _ in metrics["runner_jobs_in_flight"]} == {"thread"}
    done_counts = [
        next(v for n, lab, v in s["runner_jobs"] if n == "runner_jobs_total" and lab["outcome"] == "done")
        for s in during
    ]
    assert done_counts == sorted(done_counts)  # a counter only grows


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "runner", "submit", "--jobs", "5", "--mix", "sleep=1", "--io-ms", "1"]
        done = subprocess.run([*cmd, "--metrics-port", str(port)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "--metrics-port" in done.stderr, done.stderr
