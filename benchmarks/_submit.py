"""Run ``runner submit --json`` as a user would and return its result (shared by the benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys

from runner.engine.results import RunResult


def submit(mode: str, args: list[str]) -> RunResult:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", mode, "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = RunResult.from_json(json.loads(out.stdout), "runner submit --json")
    assert result.jobs.done == result.jobs.submitted and result.jobs.lost == 0, result.jobs
    return result
