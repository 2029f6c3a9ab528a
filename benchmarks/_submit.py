"""Run ``runner submit --json`` as a user would and return its result (shared by the benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def submit(mode: str, args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "runner", "submit", "--mode", mode, "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    jobs = result["jobs"]
    assert jobs["done"] == jobs["submitted"] and jobs["lost"] == 0, jobs
    return result
