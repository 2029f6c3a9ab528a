"""A million jobs stream through in flat memory: generated lazily, results aggregated as they come."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "runner", "submit", "--mode", "async", "--mix", "sleep=1",
                       "--io-ms", "0", "--jobs", "1000000", "--concurrency", "10000", "--json"],
                      capture_output=True, text=True, check=True)
result = json.loads(proc.stdout)
result["child_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(result))
"""


def test_a_million_sleep_jobs_in_under_200_mb() -> None:
    # A wrapper process whose only child is the run, so ru_maxrss is that run's true peak.
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["jobs"]["done"] == 1_000_000 and result["jobs"]["lost"] == 0
    assert result["peak_in_flight"] <= 10_000
    assert result["child_max_rss_mb"] <= 200, result["child_max_rss_mb"]
    assert result["resources"]["coordinator_peak_rss_mb"] <= 200
