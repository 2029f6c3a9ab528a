"""The overhead benchmark's rounds as a results file of ``runner bench``'s kind, so that ``runner
compare`` reads it: one cell per comparison (mode ``process``, mix ``noop vs bare``, ...), whose
repeats are runner's rounds, each with ``bare_jobs_per_s``, the hand-written equivalent's rate in
the round interleaved with it. ``runner compare`` turns that into the figure ``vs_bare`` (runner /
bare), a ratio that machine load moves far less than either rate.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner import __version__
from runner.engine import codec
from runner.engine.bench_results import BenchResults
from runner.engine.machine import describe_machine
from runner.engine.results import SCHEMA_VERSION, CalibrationFigures, Machine
from runner.experiments.plan import Mix
from runner.experiments.sweep import summarize_cell

_NO_BOUND: dict[str, Any] = {"jobs_per_s": None, "limited_by": None, "limits": {}}


def write_results(path: Path, pairs: list[Any], calibration: Any, wall_s: float) -> None:
    """``pairs``: ``overhead.Pair`` with their runs (a cell each, named by mode and baseline kind)."""
    cells = []
    for pair in pairs:
        # The baseline's own name can carry a tuned figure (a chunksize): keep the cell's name stable.
        kind = "measurement on vs off" if pair.baseline == "measurement off" else "noop vs bare"
        cells.append(summarize_cell(pair.name, Mix(kind, {"noop": 1.0}), pair.runs, _NO_BOUND))
    doc = BenchResults(
        schema_version=SCHEMA_VERSION,
        runner_version=__version__,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_s=round(wall_s, 2),
        calibration=CalibrationFigures(**calibration.to_dict()),
        machine=codec.decode(Machine, describe_machine()),
        cells=cells,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(codec.dumps(doc, indent=1))
    print(f"{path}: {len(cells)} cells, written {time.strftime('%H:%M:%S')}")
