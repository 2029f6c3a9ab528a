"""``compare``'s warnings when two results files come from different machines or calibrations:
each difference in one exact line, and nothing when the machines agree."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner.engine.bench_results import BenchResults
from runner.engine.results import SCHEMA_VERSION, CalibrationFigures, Machine
from runner.report.compare import machine_warnings

PACKAGES = {"celery": "5.3.6", "uvloop": "0.19.0"}
MACHINE = Machine(cpus=2, cpu_model="Xeon A", memory_gb=4.0, os="Linux", python="3.11.9", packages=PACKAGES)
RATES = CalibrationFigures(spin_iterations_per_ms=1000.0, hash_rounds_per_ms=50.0)


def _results(machine: Machine = MACHINE, calibration: CalibrationFigures | None = RATES) -> BenchResults:
    return BenchResults(
        schema_version=SCHEMA_VERSION, runner_version="0", started_at="", wall_s=1.0,
        machine=machine, calibration=calibration,
    )  # fmt: skip


def _packages(base: dict[str, str], new: dict[str, str]) -> list[str]:
    return machine_warnings(_results(replace(MACHINE, packages=base)), _results(replace(MACHINE, packages=new)))


def test_alike_machines_give_no_warning() -> None:
    # State at the start of a run (load, governor...) is not the machine: it never warns.
    busy = replace(MACHINE, load_avg={"1m": 3.0}, busy=True, governor="powersave", hostname="other")
    assert machine_warnings(_results(), _results(busy)) == []


def test_cores_cpu_model_and_python_each_in_one_line() -> None:
    other = replace(MACHINE, cpus=8, cpu_model="Epyc B", python="3.12.1")
    assert machine_warnings(_results(), _results(other)) == [
        "the machines differ: cores 2 vs 8",
        "the machines differ: CPU model Xeon A vs Epyc B",
        "the machines differ: Python 3.11.9 vs 3.12.1",
    ]


def test_package_versions_changed_added_and_removed() -> None:
    # sorted by name; "-" where one side lacks the package
    assert _packages({"a": "1", "b": "1", "same": "2"}, {"b": "2", "c": "3", "same": "2"}) == [
        "package versions differ: a 1 vs -, b 1 vs 2, c - vs 3"
    ]


def test_five_packages_are_named_and_the_rest_counted() -> None:
    five = {f"p{i}": "2" for i in range(5)}
    assert _packages({}, five) == ["package versions differ: p0 - vs 2, p1 - vs 2, p2 - vs 2, p3 - vs 2, p4 - vs 2"]
    six = {f"p{i}": "2" for i in range(6)}
    assert _packages({}, six) == [
        "package versions differ: p0 - vs 2, p1 - vs 2, p2 - vs 2, p3 - vs 2, p4 - vs 2 and 1 more"
    ]


@pytest.mark.parametrize(
    ("spin", "hashes", "expected"),
    [
        (1200.0, 50.0, ["the calibrations differ by more than 10 %: spin_iterations_per_ms 1,000.0 vs 1,200.0"]),
        (1000.0, 44.0, ["the calibrations differ by more than 10 %: hash_rounds_per_ms 50.0 vs 44.0"]),
        (1090.0, 54.5, []),  # within 10 %
    ],
)
def test_calibrations_more_than_ten_percent_apart(spin: float, hashes: float, expected: list[str]) -> None:
    new = CalibrationFigures(spin_iterations_per_ms=spin, hash_rounds_per_ms=hashes)
    assert machine_warnings(_results(), _results(calibration=new)) == expected


def test_small_rates_compare_as_ratios() -> None:
    slow = CalibrationFigures(spin_iterations_per_ms=0.5, hash_rounds_per_ms=0.5)
    fast = CalibrationFigures(spin_iterations_per_ms=1.0, hash_rounds_per_ms=0.5)
    assert machine_warnings(_results(calibration=slow), _results(calibration=fast)) == [
        "the calibrations differ by more than 10 %: spin_iterations_per_ms 0.5 vs 1.0"
    ]


def test_a_missing_or_zero_calibration_is_not_compared() -> None:
    zero = CalibrationFigures(spin_iterations_per_ms=0.0, hash_rounds_per_ms=50.0)
    assert machine_warnings(_results(calibration=None), _results()) == []
    assert machine_warnings(_results(), _results(calibration=None)) == []
    assert machine_warnings(_results(calibration=zero), _results()) == []
