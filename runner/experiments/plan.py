"""What ``runner bench`` sweeps, as resolved from defaults, ``--quick``, a sweep file and flags:
executors, mixes, and the axes (workers, concurrency, rate) whose every combination is a cell.
``runner.experiments.sweep`` runs it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.engine.inputs import number
from runner.engine.machine import usable_cpus
from runner.engine.spec import BOUNDS, WorkloadSpec, parse_mix, read_toml
from workers.errors import InputError
from workers.registry import MODES, executor_class

# The four strategies the question is about; --modes all adds hybrid and gevent.
CLASSIC_MODES = ("async", "thread", "process", "celery")


@dataclass(frozen=True)
class Mix:
    name: str
    weights: dict[str, float]


DEFAULT_MIXES = (
    Mix("cpu 0%", {"sleep": 1.0}),
    Mix("cpu 25%", {"sleep": 3.0, "cpu": 1.0}),
    Mix("cpu 50%", {"sleep": 1.0, "cpu": 1.0}),
    Mix("cpu 75%", {"sleep": 1.0, "cpu": 3.0}),
    Mix("cpu 100%", {"cpu": 1.0}),
    Mix("hash", {"hash": 1.0}),
    Mix("http", {"http": 1.0}),
)


@dataclass(frozen=True)
class Sweep:
    modes: tuple[str, ...] = CLASSIC_MODES
    mixes: tuple[Mix, ...] = DEFAULT_MIXES
    repeats: int = 3
    io_ms: float = 50.0
    cpu_ms: float = 10.0
    concurrency: int = 1000
    workers: int = field(default_factory=usable_cpus)
    celery_workers: int | None = None  # same as workers
    celery_pool: str = "prefork"
    batch: int | None = None  # jobs per pool/Celery task; None: each executor's own default
    expect_workers: int = 0  # a cluster's Celery nodes to wait for (celery_workers 0)
    wait_s: float = 30.0
    timeout: float = 60.0
    run_s: float = 2.0
    min_jobs: int = 50
    max_jobs: int = 50_000
    seed: int = 1
    quick: bool = False
    # Sweep axes: empty means the single value above (rates: closed loop only).
    workers_axis: tuple[int, ...] = ()
    concurrency_axis: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    slo_p99_ms: float | None = None
    # The user's own kinds (--job, [jobs]) and what they need; a sweep of them has one mix of
    # them all, in equal weights, unless --mix says otherwise.
    user_jobs: dict[str, str] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    inputs: str = ""
    setup: str = ""

    def worker_counts(self) -> tuple[int, ...]:
        return self.workers_axis or (self.workers,)

    def concurrencies(self) -> tuple[int, ...]:
        return self.concurrency_axis or (self.concurrency,)

    def rate_values(self) -> tuple[float, ...]:
        return self.rates or (0.0,)

    def groups(self) -> list[tuple[int, int]]:
        """The (workers, concurrency) combinations: one set of executor instances each."""
        return [(w, c) for w in self.worker_counts() for c in self.concurrencies()]

    def workload(
        self, mix: Mix, jobs: int, mode: str, at: tuple[int, int] | None = None, rate: float = 0.0
    ) -> WorkloadSpec:
        workers, concurrency = at or (self.workers, self.concurrency)
        values: dict[str, Any] = {k: getattr(self, k) for k in ("io_ms", "cpu_ms", "timeout")}
        values.update(workers=workers, concurrency=concurrency, rate=rate)
        # Local Celery nodes follow the workers axis unless pinned (0: a cluster's nodes).
        values["celery_workers"] = self.celery_workers if self.celery_workers is not None else workers
        values["celery_pool"] = self.celery_pool
        values["batch"] = self.batch
        values["expect_workers"], values["wait_s"] = self.expect_workers, self.wait_s
        values.update(user_jobs=self.user_jobs, paths=self.paths, inputs=self.inputs, setup=self.setup)
        return WorkloadSpec.build({**values, "jobs": jobs, "mix": dict(mix.weights)}, (mode,))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["mixes"] = [{"name": m.name, "mix": m.weights} for m in self.mixes]
        out["modes"] = list(self.modes)
        out["paths"] = list(self.paths)
        if not self.user_jobs:
            for key in ("user_jobs", "paths", "inputs", "setup"):
                del out[key]
        for axis in ("workers_axis", "concurrency_axis", "rates"):
            out[axis] = list(out[axis]) or None
        return out


QUICK = {
    "repeats": 3,
    "io_ms": 20.0,
    "cpu_ms": 5.0,
    "concurrency": 500,
    "run_s": 0.6,
    "min_jobs": 20,
    "max_jobs": 5_000,
    "quick": True,
}
_SWEEP_KEYS = {
    "batch",
    "celery_pool",
    "modes",
    "mixes",
    "repeats",
    "io_ms",
    "cpu_ms",
    "concurrency",
    "workers",
    "celery_workers",
    "expect_workers",
    "wait_s",
    "timeout",
    "run_s",
    "min_jobs",
    "max_jobs",
    "seed",
    "rate",
    "slo_p99_ms",
    "jobs",  # [jobs]: the user's kinds
    "paths",
    "inputs",
    "setup",
}
_AXES = {"workers": "workers_axis", "concurrency": "concurrency_axis"}


def parse_axis(text: str, name: str, kind: type[int] | type[float] = int) -> tuple[Any, ...]:
    """``1,2,4`` -> (1, 2, 4): the values of one sweep axis, as ``--workers``/``--concurrency``/``--rate``
    give them (each number strict: plain ASCII digits)."""
    return tuple(number(f"--{name}", part.strip(), kind is int, -math.inf, math.inf) for part in text.split(","))


def _axis(key: str, value: Any, whole: bool, low: float) -> tuple[Any, ...]:
    items = tuple(value) if isinstance(value, list | tuple) else (value,)
    if not items:
        raise InputError(f"--{key}: name at least one value")
    high = BOUNDS["rate" if key == "rate" else key][2]
    checked = tuple(number(f"--{key}", v, whole, low, high) for v in items)
    if len(set(checked)) != len(checked):
        raise InputError(f"--{key}: each value may appear once")
    return checked


def _resolve_axes(values: dict[str, Any]) -> None:
    """Lists of workers or concurrency become an axis (a single value stays the plain setting);
    rates always form the rate axis, 0 meaning closed loop."""
    for key, axis in _AXES.items():
        value = values.get(key)
        if isinstance(value, list | tuple):
            items = _axis(key, value, True, 1 if len(value) > 1 else BOUNDS[key][1])
            values[key] = items[0]
            if len(items) > 1:
                values[axis] = items
    rate = values.pop("rate", None)
    if rate is not None:
        items = tuple(float(v) for v in _axis("rate", rate, False, 0))
        values["rates"] = items if items != (0.0,) else ()
    if values.get("slo_p99_ms") is not None:
        values["slo_p99_ms"] = number("--slo-p99-ms", values["slo_p99_ms"], False, 0.001, 86_400_000)


# sweep-only numbers -> (whole?, lowest, highest); the workload's own are checked by WorkloadSpec
_SWEEP_NUMBERS: dict[str, tuple[bool, float, float]] = {
    "repeats": (True, 1, 1000),
    "min_jobs": (True, 1, BOUNDS["jobs"][2]),
    "max_jobs": (True, 1, BOUNDS["jobs"][2]),
    "run_s": (False, 0.001, 3600),
    "seed": (True, 0, 2**63 - 1),
}


def parse_named_mix(text: str, user_kinds: tuple[str, ...] = ()) -> Mix:
    """``io:sleep=1`` -> Mix("io", ...); an unnamed ``sleep=1,cpu=1`` is named after itself."""
    name, sep, weights = text.partition(":")
    if not sep:
        name, weights = text, text
    name = name.strip()
    if not name:
        raise InputError(f"--mix: empty name in {text!r}; write NAME:KIND=W,... or KIND=W,...")
    return Mix(name, parse_mix(weights, user_kinds))


def build_sweep(overrides: Mapping[str, Any], *, quick: bool, sweep_file: Path | None = None) -> Sweep:
    """Defaults < --quick < sweep file < flags; every value validated like ``runner submit``'s."""
    values: dict[str, Any] = dict(QUICK) if quick else {}
    if sweep_file is not None:
        values.update(_load_sweep_file(sweep_file))
    values.update({k: v for k, v in overrides.items() if v is not None})
    _user_jobs(values)
    _resolve_axes(values)
    modes = tuple(values.get("modes") or CLASSIC_MODES)
    if modes == ("all",):
        modes = MODES
    for mode in modes:
        executor_class(mode)
    if len(set(modes)) != len(modes):
        raise InputError("--modes: each executor may appear once")
    kinds = tuple(values.get("user_jobs", ()))
    default = (Mix("your jobs", dict.fromkeys(kinds, 1.0)),) if kinds else DEFAULT_MIXES
    mixes = tuple(_mix(m, kinds) for m in values.get("mixes") or default)
    if len({m.name for m in mixes}) != len(mixes):
        raise InputError("--mix: two mixes share a name; name them NAME:KIND=W,...")
    for name, (whole, low, high) in _SWEEP_NUMBERS.items():
        if name in values:
            values[name] = number("--" + name.replace("_", "-"), values[name], whole, low, high)
    sweep = Sweep(**{**values, "modes": modes, "mixes": mixes})
    if sweep.min_jobs > sweep.max_jobs:
        raise InputError("--min-jobs: must not exceed --max-jobs")
    if sweep.slo_p99_ms is not None and not any(sweep.rate_values()):
        raise InputError("--slo-p99-ms: needs a rate axis (--rate R1,R2,...) to find the highest rate meeting it")
    # validates the shared workload values at every point of the axes, and each mix with them
    # (http's delay cap)
    for at in sweep.groups():
        for rate in sweep.rate_values():
            for mix in mixes:
                sweep.workload(mix, sweep.min_jobs, modes[0], at, rate)
    return sweep


def _user_jobs(values: dict[str, Any]) -> None:
    """The user-job settings, checked and normalised as ``runner submit``'s (spec.WorkloadSpec)."""
    if "jobs" in values:
        if not isinstance(values["jobs"], dict):
            raise InputError("--sweep: 'jobs' must be a table of kind = \"MODULE:FUNCTION\" ([jobs])")
        values["user_jobs"] = {**values.pop("jobs"), **values.get("user_jobs", {})}
    user: dict[str, Any] = {k: values[k] for k in ("user_jobs", "paths", "inputs", "setup") if k in values}
    if user:
        spec = WorkloadSpec.build({**user, "jobs": 1, "mix": {"sleep": 1}}, ("async",))
        values.update(user_jobs=spec.user_jobs, paths=spec.paths, inputs=spec.inputs, setup=spec.setup)


def _mix(entry: Any, kinds: tuple[str, ...]) -> Mix:
    """A mix given as text (--mix) or a sweep file's entry, parsed with the user's kinds known."""
    if isinstance(entry, Mix):
        return entry
    if isinstance(entry, str):
        return parse_named_mix(entry, kinds)
    name, weights = entry
    return Mix(name, parse_mix(weights, kinds))


def _load_sweep_file(path: Path) -> dict[str, Any]:
    data = read_toml(path, "--sweep", _SWEEP_KEYS)
    if "modes" in data:
        if not isinstance(data["modes"], list) or not all(isinstance(m, str) for m in data["modes"]):
            raise InputError(f"--sweep: 'modes' in {path} must be a list of executor names")
        data["modes"] = tuple(data["modes"])
    if "mixes" in data:
        data["mixes"] = tuple(_mix_entry(entry, path) for entry in _as_list(data["mixes"], path))
    return data


def _as_list(value: Any, path: Path) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InputError(f"--sweep: 'mixes' in {path} must be a non-empty array of tables")
    return value


def _mix_entry(entry: Any, path: Path) -> tuple[str, Any]:
    if not isinstance(entry, dict) or set(entry) != {"name", "mix"} or not isinstance(entry["name"], str):
        raise InputError(f"--sweep: each [[mixes]] entry in {path} needs exactly 'name' (text) and 'mix'")
    return entry["name"], entry["mix"]  # parsed in build_sweep, once the user's kinds are known
