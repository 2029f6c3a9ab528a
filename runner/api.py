"""The Python API: send one workload -- your own function, or the built-in kinds -- through several
executors from a notebook, a script or a test, and get back the typed result documents ``runner
submit`` writes.

    import runner
    from mylib import parse_batch

    results = runner.compare(parse_batch, inputs=[{"size": 100}] * 50, modes=["async", "process"])
    results["process"].throughput_jobs_per_s

There is no second code path: the arguments become the spec values the command line collects
(``--job``, ``--path``, ``--inputs``, ``--setup``, ``--jobs``, ...), validated by the same
``WorkloadSpec.build``; the executors and the user's functions are checked by ``check_modes``
before any job runs; and each mode runs through ``run_mode``. Errors are the project's own
(``workers.errors``): ``InputError`` for bad arguments (the command line's message, naming the
argument), ``ServiceError`` for a missing service, ``RunStopped`` (with the partial result) for a
run cut short.

Workers import the user's functions by name -- pool processes, Celery nodes and the gevent worker
are other processes -- so a function given as an object must be defined at the top level of a
module file; the folder that module is imported from is added to the import path of every worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from runner.engine import codec
from runner.engine.coordinator import check_modes, run_mode
from runner.engine.outputs import OutLock, atomic_write, prepare_out_dir
from runner.engine.results import RunResult
from runner.engine.spec import DEFAULTS, WorkloadSpec, parse_modes
from workers.calibration import calibrate
from workers.errors import InputError
from workers.jobs import KINDS
from workers.user_jobs import check_kind, parse_ref

# A job: a function, a (def, async def) pair, or "MODULE:FUNCTION" / "MODULE:SYNC,ASYNC".
JobRef = Callable[..., Any] | tuple[Callable[..., Any], Callable[..., Any]] | str
# Spec values given as keyword arguments beside the named ones (io_ms, rate, celery_workers, ...).
SETTINGS = tuple(name for name in DEFAULTS if name not in ("jobs", "mix", "concurrency", "workers"))
_FLAG = re.compile(r"^--([a-z][a-z-]*)((?: [^:]+)?):")
_ARGUMENT = {"mode": "modes"}


def compare(
    job: JobRef | Mapping[str, JobRef] | None = None,
    *,
    kind: str | None = None,
    inputs: str | Path | Callable[[], Iterable[Any]] | Iterable[Any] | None = None,
    setup: str | Callable[[], Any] | None = None,
    path: str | Path | Iterable[str | Path] = (),
    modes: str | Iterable[str] = "all",
    jobs: int | None = None,
    mix: str | Mapping[str, float] | None = None,
    concurrency: int | None = None,
    workers: int | None = None,
    out_dir: str | Path | None = None,
    **settings: Any,
) -> dict[str, RunResult]:
    """Run the workload through each of ``modes`` in turn (``"all"``: every executor) and return
    each run's result document, by mode, in the order run.

    ``job``: your function (``def`` or ``async def``), a ``(def, async def)`` pair for one kind, a
    ``"MODULE:FUNCTION"`` reference, or a ``{kind: job}`` mapping for several kinds; the kind is
    named ``kind`` or after the function. Without ``job``, the built-in kinds of ``mix`` run.
    ``inputs``: one input per job -- a JSON-lines file, a generator (function or ``"MODULE:NAME"``),
    or a list of JSON values (a list is ``*args``, an object ``**kwargs``, else one argument);
    without it each call gets the job's index. ``setup``: called once per worker process before
    timing. ``path``: folders your modules are imported from (default: the current directory, plus
    the folder of each function given as an object). ``settings`` are any other spec values
    (``io_ms``, ``cpu_ms``, ``timeout``, ``batch``, ``rate``, ``celery_workers``, ...), named as in
    a spec file. With ``out_dir``, each mode's ``result.json`` and ``ledger.jsonl`` are written to
    ``out_dir/MODE``."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise InputError(f"compare(): unknown setting {unknown[0]!r}; settings: {', '.join(SETTINGS)}")
    with contextlib.ExitStack() as files:  # a list of inputs lives in a file as long as the runs
        with _argument_names():
            folders: list[str] = []
            values: dict[str, Any] = {"jobs": jobs, "mix": mix, "concurrency": concurrency, "workers": workers}
            values |= settings
            if job is not None:
                values["user_jobs"] = _user_jobs(job, kind, folders)
                if inputs is not None:
                    values["inputs"] = _inputs(inputs, folders, files)
                if setup is not None:
                    values["setup"] = setup if isinstance(setup, str) else _reference(setup, "setup", folders)
                given = [str(path)] if isinstance(path, str | Path) else [str(p) for p in path]
                values["paths"] = list(dict.fromkeys([*(given or [os.getcwd()]), *folders]))
            elif inputs is not None or setup is not None or kind is not None or path != ():
                raise InputError("compare(): kind, inputs, setup and path are for your own function: give job= too")
            names = parse_modes(modes if isinstance(modes, str) else ",".join(_mode_names(modes)))
            spec = WorkloadSpec.build(values, names)
            check_modes(spec)
        return _run(spec, names, Path(out_dir) if out_dir is not None else None)


def _run(spec: WorkloadSpec, names: tuple[str, ...], out: Path | None) -> dict[str, RunResult]:
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


def _user_jobs(job: JobRef | Mapping[str, JobRef], kind: str | None, folders: list[str]) -> dict[str, str]:
    if isinstance(job, Mapping):
        if kind is not None:
            raise InputError("compare(): kind names a single job; a mapping of jobs names its own kinds")
        if not job:
            raise InputError("compare(): job: the mapping of kinds to functions is empty")
        return {check_kind(k, KINDS, "--job"): _job_ref(v, folders) for k, v in job.items()}
    ref = _job_ref(job, folders)
    name = kind if kind is not None else parse_ref(ref, "--job").names[0]
    return {check_kind(name, KINDS, "--job"): ref}


def _job_ref(job: JobRef, folders: list[str]) -> str:
    if isinstance(job, str):
        return str(parse_ref(job, "--job"))
    if isinstance(job, tuple):
        if len(job) != 2:
            raise InputError(f"compare(): job: a pair is (def, async def), got {len(job)} items")
        refs = [_reference(fn, "job", folders) for fn in job]
        modules = {ref.partition(":")[0] for ref in refs}
        if len(modules) != 1:
            raise InputError(f"compare(): job: the two forms of one kind must be in one module, got {sorted(modules)}")
        return f"{modules.pop()}:{','.join(ref.partition(':')[2] for ref in refs)}"
    return _reference(job, "job", folders)


def _reference(fn: Any, what: str, folders: list[str]) -> str:
    """``MODULE:NAME`` for a function object, and the folder its module is imported from."""
    if hasattr(fn, "apply_async") and callable(getattr(fn, "run", None)):
        fn = fn.run  # a Celery task (@app.task): the function it wraps
    module_name, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not callable(fn) or not isinstance(module_name, str) or not isinstance(name, str):
        raise InputError(f"compare(): {what} must be a function or 'MODULE:FUNCTION', got {type(fn).__name__}")
    if "." in name or not name.isidentifier():
        raise InputError(
            f"compare(): {what} {name} is not a function at the top level of its module; workers import it "
            "by name, so define it with def at the top level of a module file"
        )
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        raise InputError(
            f"compare(): {what} {name} was defined in {module_name}, which has no file (a notebook or the "
            "interactive prompt); workers import functions by name, so put it in a module file and import it"
        )
    if module_name == "__main__":  # a script: imported again under its own name, as multiprocessing does
        found = getattr(module, "__spec__", None)  # set under `python -m pkg.mod`
        module_name = found.name if found is not None and found.name != "__main__" else Path(file).stem
    depth = module_name.count(".") + (Path(file).stem == "__init__")
    folders.append(str(Path(file).resolve().parents[depth]))
    return f"{module_name}:{name}"


def _inputs(inputs: Any, folders: list[str], stack: contextlib.ExitStack) -> str:
    if isinstance(inputs, str | Path):
        return str(inputs)
    if callable(inputs):
        return _reference(inputs, "inputs", folders)
    if not isinstance(inputs, Iterable):
        raise InputError(f"compare(): inputs must be a file, a generator or a list, got {type(inputs).__name__}")
    # A list of values travels as a JSON-lines file, read by the same streaming reader as --inputs.
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="runner-inputs-"))
    file = Path(folder) / "inputs.jsonl"
    with file.open("w", encoding="utf-8") as out:
        for n, value in enumerate(inputs):
            try:
                out.write(json.dumps(value, allow_nan=False) + "\n")
            except (TypeError, ValueError) as exc:
                raise InputError(f"compare(): inputs[{n}] is not a JSON value: {exc}") from None
    return str(file)


@contextlib.contextmanager
def _argument_names() -> Iterator[None]:
    """The spec's messages name command-line flags (``--io-ms: ...``); here they name the
    arguments (``compare(): io_ms: ...``)."""
    try:
        yield
    except InputError as exc:
        message = _FLAG.sub(_argument, str(exc), count=1)
        raise InputError(message if message.startswith("compare()") else f"compare(): {message}") from exc


def _argument(match: re.Match[str]) -> str:
    flag = match.group(1)
    return _ARGUMENT.get(flag, flag.replace("-", "_")) + match.group(2) + ":"


def _mode_names(modes: Iterable[str]) -> list[str]:
    names = list(modes)
    if not names or not all(isinstance(name, str) and name.strip() for name in names):
        raise InputError(f"modes must be executor names, got {names!r}")
    return names
