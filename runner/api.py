"""The Python API: send one workload through several executors from a notebook, a script or a
test, and get back the typed result documents ``runner submit`` writes.

    import runner
    results = runner.compare(mix="sleep=1", modes=["async", "thread"], jobs=200, io_ms=20)
    results["async"].throughput_jobs_per_s

There is no second code path: the arguments become the same spec values the command line
collects (validated by ``WorkloadSpec.build``, so a bad value raises the ``InputError`` whose
message the command line would print), the executors are checked by ``check_modes`` before any
job runs, and each mode runs through ``run_mode``. Errors are the project's own
(``workers.errors``): ``InputError`` for bad arguments, ``ServiceError`` for a missing service,
``RunStopped`` (with the partial result) for a run cut short.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from runner.engine import codec
from runner.engine.coordinator import check_modes, run_mode
from runner.engine.outputs import OutLock, atomic_write, prepare_out_dir
from runner.engine.results import RunResult
from runner.engine.spec import DEFAULTS, WorkloadSpec, parse_modes
from workers.calibration import calibrate
from workers.errors import InputError

_FLAG = re.compile(r"^--([a-z][a-z-]*):")
_ARGUMENT = {"mode": "modes"}
# Spec values given as keyword arguments beside the named ones (io_ms, rate, celery_workers, ...).
SETTINGS = tuple(name for name in DEFAULTS if name not in ("jobs", "mix", "concurrency", "workers"))


def compare(
    *,
    modes: str | Iterable[str] = "all",
    jobs: int | None = None,
    mix: str | Mapping[str, float] | None = None,
    concurrency: int | None = None,
    workers: int | None = None,
    out_dir: str | Path | None = None,
    **settings: Any,
) -> dict[str, RunResult]:
    """Run the workload through each of ``modes`` in turn (``"all"``: every executor) and return
    each run's result document, by mode, in the order run. ``settings`` are any other spec values
    (``io_ms``, ``cpu_ms``, ``timeout``, ``batch``, ``rate``, ``celery_workers``, ...), named as in a
    spec file. With ``out_dir``, each mode's ``result.json`` and ``ledger.jsonl`` are written
    there as by ``runner submit --out`` (one folder per mode)."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise InputError(f"compare(): unknown setting {unknown[0]!r}; settings: {', '.join(SETTINGS)}")
    values = {"jobs": jobs, "mix": mix, "concurrency": concurrency, "workers": workers, **settings}
    with _argument_names():
        names = parse_modes(modes if isinstance(modes, str) else ",".join(_mode_names(modes)))
        spec = WorkloadSpec.build(values, names)
        check_modes(spec)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        prepare_out_dir(out, "out_dir")  # before any run, not after the first
    calibration = calibrate()
    results: dict[str, RunResult] = {}
    with OutLock(out, "out_dir") if out is not None else contextlib.nullcontext():
        for name in names:
            target = out / name if out is not None else None
            result = run_mode(spec, name, out_dir=target, calibration=calibration)
            if target is not None:
                atomic_write(target / "result.json", codec.dumps(result, indent=2) + "\n")
            results[name] = result
    return results


@contextlib.contextmanager
def _argument_names() -> Iterator[None]:
    """The spec's messages name command-line flags (``--io-ms: ...``); here they name the
    arguments (``compare(): io_ms: ...``)."""
    try:
        yield
    except InputError as exc:
        message = _FLAG.sub(lambda m: _ARGUMENT.get(m.group(1), m.group(1).replace("-", "_")) + ":", str(exc), count=1)
        raise InputError(message if message.startswith("compare()") else f"compare(): {message}") from exc


def _mode_names(modes: Iterable[str]) -> list[str]:
    names = list(modes)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise InputError(f"modes must be executor names, got {names!r}")
    return names
