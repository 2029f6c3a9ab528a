"""Run ``runner submit --json`` as a user would and return its result (shared by the benchmarks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runner.engine.results import RunResult
from workers.calibration import ENV, for_coordinator


def share_calibration() -> None:
    """One calibration for every mode and repeat of a benchmark: measured once here (unless
    RUNNER_CALIBRATION already pins one) and handed to each ``runner submit`` through that
    variable, so every mode runs jobs of the very same size."""
    rates = for_coordinator().to_dict()
    os.environ[ENV] = ",".join(f"{key}={value}" for key, value in rates.items())
    print(f"calibration shared by every run: {os.environ[ENV]}", file=sys.stderr)


def submit(mode: str, args: list[str]) -> RunResult:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", mode, "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = RunResult.from_json(json.loads(out.stdout), "runner submit --json")
    assert result.jobs.done == result.jobs.submitted and result.jobs.lost == 0, result.jobs
    return result
