"""The calibration check in words and tables: the terminal's rows for one run, and the bench
report's section (Markdown, hence HTML too). What is checked and why: ``runner.engine.calibration_check``."""

from __future__ import annotations

import statistics
from collections import defaultdict

from runner.engine.bench_results import BenchResults
from runner.engine.results import CalibrationCheck, RunResult
from runner.report import format as fmt


def _workers_text(check: CalibrationCheck) -> str:
    if not check.workers:
        return "the coordinator's: the jobs ran in its process"
    spins = [w.spin_ratio for w in check.workers.values()]
    hashes = [w.hash_ratio for w in check.workers.values()]
    return f"{len(spins)} worker(s) measured their own: spin {_span(spins)}x, hash {_span(hashes)}x the coordinator's"


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if round(low, 2) == round(high, 2) else f"{low:.2f}-{high:.2f}"


def terminal_rows(result: RunResult) -> list[tuple[str, str]]:
    """Rows for ``runner submit``'s table: whose calibration, CPU per job against --cpu-ms, warnings."""
    check = result.calibration_check
    if check is None:
        return []
    rows = [("calibration", _workers_text(check))]
    for kind, k in check.kinds.items():
        cpu = "no CPU time reported" if k.median_cpu_ms is None else f"{fmt.num(k.median_cpu_ms)} ms CPU"
        text = f"{cpu} for {k.cpu_ms:g} ms sized ({_ratio(k.cpu_ratio)}); wall {fmt.num(k.median_service_ms)} ms"
        rows.append((f"{kind} job, median", f"[yellow]{text}" if k.off else text))
    rows += [("[yellow]calibration warning", f"[yellow]{w}") for w in check.warnings]
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown_section(doc: BenchResults) -> list[str]:
    """Per mode and kind over every measured run: CPU and wall time per job against --cpu-ms, and
    the workers whose own rate differed from the coordinator's."""
    cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
    wall: dict[tuple[str, str], list[float]] = defaultdict(list)
    expected: dict[tuple[str, str], float] = {}
    differing: dict[str, tuple[str, float, float]] = {}
    threshold = None
    for cell in doc.cells:
        for run in cell.repeats:
            check = run.calibration_check
            if check is None:
                continue
            threshold = check.threshold
            for kind, k in check.kinds.items():
                key = (cell.mode, kind)
                if k.cpu_ratio is not None:
                    cpu[key].append(k.cpu_ratio)
                wall[key].append(k.service_ratio)
                expected[key] = k.expected_ratio
            for name, w in check.workers.items():
                if w.differs:
                    differing[name] = (cell.mode, w.spin_ratio, w.hash_ratio)
    if threshold is None or not wall:
        return []
    rows = []
    for key in sorted(wall):
        ratio = statistics.median(cpu[key]) if cpu[key] else None
        off = ratio is not None and abs(ratio - 1) > threshold
        flag = f"**off by more than {fmt.pct(threshold)}**" if off else "ok"
        rows.append([*key, _ratio(ratio), _ratio(statistics.median(wall[key])), _ratio(expected[key]), flag])
    from runner.report.markdown import table

    out = [
        "## Calibration check\n",
        "Did the jobs take the CPU they were sized for? Median over the measured runs of each run's median CPU "
        "time per job (measured by the thread that ran it, where it ran) over `--cpu-ms`; wall-clock service "
        "over `--cpu-ms` beside it also holds waits for the GIL or a shared core. *Expected* is what the "
        "workers' own calibrations predict (1.00 where the jobs run in the coordinator's process). Flagged "
        f"beyond {fmt.pct(threshold)}: the calibration keeps the fastest of five samples, so a sound run reads "
        "a few per cent above 1.\n",
        table(["mode", "kind", "CPU / sized", "wall / sized", "expected", "check"], rows),
    ]
    if differing:
        lines = [
            f"- {name} ({mode}): spin {spin:.2f}x, hash {hashed:.2f}x the coordinator's rate"
            for name, (mode, spin, hashed) in sorted(differing.items())
        ]
        out += [
            "Workers whose own rate differs from the coordinator's by more than 25 % (another or a slower "
            "machine; the bound uses their rate):\n",
            "\n".join(lines) + "\n",
        ]
    return out
