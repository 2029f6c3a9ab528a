"""Warnings about figures that should not be read as facts: a cell whose repeats scatter (CV above
10 %), a cell with a run that began on a busy machine, and an efficiency above 105 % of the bound
(the bound was not an upper bound: a calibration or bound problem, not a result), and jobs that
did not take the CPU they were sized for, or workers slower than the coordinator (the calibration
check)."""

from __future__ import annotations

import statistics

from runner.engine.bench_results import BenchResults, Cell
from runner.report import format as fmt

MAX_CV = 0.10
MAX_EFFICIENCY = 1.05


def over_bound(cell: Cell) -> bool:
    return cell.summary.efficiency is not None and cell.summary.efficiency > MAX_EFFICIENCY


def cell_name(cell: Cell, cells: list[Cell]) -> str:
    from runner.report.verdicts import axes_label

    where = axes_label(cell, cells)
    return f"{cell.mode} x {cell.mix_name}" + (f" ({where})" if where else "")


def cell_warnings(cell: Cell) -> list[str]:
    s, out = cell.summary, []
    if s.cv is not None and s.cv > MAX_CV:
        out.append(f"its repeats scatter (coefficient of variation {fmt.small_pct(s.cv)}, over {fmt.pct(MAX_CV)})")
    if s.busy_runs:
        out.append(f"{s.busy_runs} of its {len(cell.repeats)} runs began on a busy machine")
    if over_bound(cell):
        out.append(
            f"measured above its bound ({fmt.pct(s.efficiency or 0)}): the bound or the calibration is wrong here, "
            "so this efficiency is a measurement problem, not a result"
        )
    return out + calibration_warnings(cell)


def calibration_warnings(cell: Cell) -> list[str]:
    """From the repeats' calibration checks: kinds off in most runs, workers whose rate differs."""
    checks = [run.calibration_check for run in cell.repeats if run.calibration_check is not None]
    out = []
    for kind in sorted({kind for c in checks for kind in c.kinds}):
        ratios = [k.cpu_ratio for c in checks if (k := c.kinds.get(kind)) is not None and k.cpu_ratio is not None]
        if ratios and 2 * sum(abs(r - 1) > checks[0].threshold for r in ratios) > len(ratios):
            out.append(
                f"its {kind} jobs took {statistics.median(ratios):.2f}x the CPU they were sized for "
                f"(median over {len(ratios)} runs; calibration check)"
            )
    slow = sorted({name for c in checks for name, w in c.workers.items() if w.differs})
    if slow:
        out.append(f"worker(s) {', '.join(slow[:4])} measured a CPU rate more than 25 % from the coordinator's")
    return out


def noise_warnings(doc: BenchResults) -> list[str]:
    """One line per cell that needs care: rerun it with more repeats on a quieter machine."""
    out = []
    for cell in doc.cells:
        found = cell_warnings(cell)
        if found:
            out.append(f"{cell_name(cell, doc.cells)}: {'; '.join(found)}")
    return out
