"""A run records the machine's state when it began, and warns when other work was using the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.faults.helpers import ROOT

_SUBMIT = [sys.executable, "-m", "runner", "submit", "--jobs", "20", "--mix", "sleep=1", "--io-ms", "1"]


def _submit(*extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([*_SUBMIT, *extra], env=env, capture_output=True, text=True, timeout=60)


def test_busy_loops_during_a_run_start_raise_the_noise_warning() -> None:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        time.sleep(0.5)
        as_json = _submit("--json")
        shown = _submit()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert as_json.returncode == 0, as_json.stderr
    machine = json.loads(as_json.stdout)["machine"]
    assert machine["busy"] is True and machine["cpu_busy_pct"] >= 50
    assert set(machine["load_avg"]) == {"1m", "5m", "15m"} and machine["hostname"]
    assert "machine was busy when the run began" in " ".join(shown.stderr.split())
