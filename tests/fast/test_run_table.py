"""The summary table a run prints (``runner.report.terminal.run_table``), on a stub run's result."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from runner.engine.results import RunResult
from runner.engine.spec import WorkloadSpec
from runner.report.terminal import run_table
from tests.stub_executor import StubExecutor, measured_on_stub


def _row(table_text: str, name: str) -> str:
    return next(line for line in table_text.splitlines() if name in line)


def _text(result: RunResult) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(run_table(result))
    return console.export_text()


def test_peak_rss_names_its_worker_processes_in_the_right_number(stub: type[StubExecutor]) -> None:
    result = measured_on_stub(WorkloadSpec.build({"jobs": 4, "mix": "noop=1"}, ("stub",)))
    assert "in 0 processes)" in _row(_text(result), "peak RSS")  # the stub runs in the coordinator
    for n, words in ((1, "in 1 process)"), (2, "in 2 processes)")):
        counted = replace(result, resources=replace(result.resources, worker_processes=n))
        assert words in _row(_text(counted), "peak RSS")


def test_a_calibration_warning_has_a_row_of_its_own(stub: type[StubExecutor]) -> None:
    from tests.stub_executor import StubPlan

    stub.plan = StubPlan(cpu_s=0.05)  # 50 ms of CPU for jobs sized 10 ms: the calibration did not hold
    result = measured_on_stub(WorkloadSpec.build({"jobs": 8, "mix": "cpu=1", "cpu_ms": 10}, ("stub",)))
    assert result.calibration_check is not None and result.calibration_check.warnings
    labels = [cells[1].strip() for line in _text(result).splitlines() if len(cells := line.split("│")) > 2]
    assert [label for label in labels if "calibration" in label] == ["calibration", "calibration warning"]
