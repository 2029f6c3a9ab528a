"""The workload spec: what to run, from flags or a TOML file, validated into one dataclass.

Precedence: built-in defaults < spec file < environment (``RUNNER_SUBMIT_...``) and flags.
Every problem raises ``InputError`` with a one-line message naming the field.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import random
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.engine.inputs import is_subnormal, number, parse_float, read_text_file, shown
from runner.engine.machine import usable_cpus
from workers.errors import InputError
from workers.jobs import KINDS
from workers.options import OptionValue
from workers.registry import MODES, executor_class, executor_options
from workers.user_jobs import JobTable, check_kind, parse_ref

# Options an executor declares for itself (Celery's node count and pool): defaults, bounds and
# choices come from the executor (``workers.options``), never written here.
EXECUTOR_OPTIONS = {option.name: option for option in executor_options()}

DEFAULTS: dict[str, Any] = {
    "jobs": 1000,
    "mix": "sleep=0.5,cpu=0.5",
    "io_ms": 50.0,
    "cpu_ms": 10.0,
    "concurrency": 100,
    "workers": None,  # CPU count, resolved in WorkloadSpec.build
    "timeout": 60.0,
    "batch": None,  # None: each executor's own (Celery 1, pools 0); 0: sized from measured job cost
    "rate": 0.0,  # jobs/s on a schedule (open loop); 0: a new job whenever one ends (closed loop)
    "arrivals": "constant",  # open loop: evenly spaced, or a Poisson process (seeded, reproducible)
    "expect_workers": 0,  # celery with a cluster's workers: nodes to wait for before timing starts
    "wait_s": 30.0,  # ... and for how long
    **{name: option.default for name, option in EXECUTOR_OPTIONS.items()},  # None: same as workers
}
ARRIVALS = ("constant", "poisson")

# field -> (type, minimum, maximum); bounds keep a typo from asking for a week-long run. Tests
# and other readers take the bounds from here.
BOUNDS: dict[str, tuple[type, float, float]] = {
    "jobs": (int, 1, 100_000_000),
    "io_ms": (float, 0, 600_000),
    "cpu_ms": (float, 0, 600_000),
    "concurrency": (int, 1, 1_000_000),
    "workers": (int, 0, 1024),
    "timeout": (float, 0.001, 86_400),
    "batch": (int, 0, 100_000),
    "rate": (float, 0, 10_000_000),
    "expect_workers": (int, 0, 1024),
    "wait_s": (float, 0, 3600),
    **{name: (int, *option.bounds) for name, option in EXECUTOR_OPTIONS.items() if option.bounds},
}
USER_KEYS = ("paths", "inputs", "setup")  # user jobs' settings; their table is ``[jobs]`` (``user_jobs`` here)
SPEC_KEYS = ("mode", *DEFAULTS, *USER_KEYS)
# The longest delay ``runner target`` serves (runner.target imports aiohttp, so the figure lives here).
TARGET_MAX_DELAY_MS = 60_000
_LONGEST_SCHEDULE_S = 7 * 86_400  # an open-loop schedule longer than a week is a typo


@dataclass(frozen=True)
class WorkloadSpec:
    jobs: int
    mix: dict[str, float]
    io_ms: float
    cpu_ms: float
    concurrency: int
    workers: int
    timeout: float
    batch: int | None = None
    rate: float = 0.0
    arrivals: str = "constant"
    expect_workers: int = 0
    wait_s: float = 30.0
    modes: tuple[str, ...] = field(default=("async",))
    options: dict[str, OptionValue] = field(default_factory=dict)  # the executors' own, by name
    user_jobs: dict[str, str] = field(default_factory=dict)  # kind -> MODULE:FUNCTION (--job, [jobs])
    paths: tuple[str, ...] = ()  # where user modules are imported from (absolute)
    inputs: str = ""  # --inputs: a JSON-lines file or MODULE:GENERATOR
    setup: str = ""  # --setup MODULE:FUNCTION, once per worker process

    @classmethod
    def build(cls, values: Mapping[str, Any], modes: tuple[str, ...]) -> WorkloadSpec:
        user = _user_settings(values)
        values = {**values}
        if user["user_jobs"] and values.get("mix") is None:  # the user's kinds, equal weights
            values["mix"] = dict.fromkeys(user["user_jobs"], 1.0)
        if user["inputs"] and values.get("jobs") is None:  # as many jobs as inputs
            from runner.engine.user_inputs import Inputs

            values["jobs"] = Inputs(user["inputs"], user["paths"]).count()
        merged = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
        if merged["workers"] is None:
            merged["workers"] = usable_cpus()
        for name in EXECUTOR_OPTIONS:
            if merged[name] is None:
                merged[name] = merged["workers"]
        num = {name: _number(name, merged[name]) for name in BOUNDS if merged[name] is not None}
        options: dict[str, OptionValue] = {
            name: int(num[name]) if option.bounds else _choice(name, merged[name], option.choices)
            for name, option in EXECUTOR_OPTIONS.items()
        }
        mix = merged["mix"]
        spec = cls(
            jobs=int(num["jobs"]),
            mix=parse_mix(mix, tuple(user["user_jobs"])),
            io_ms=float(num["io_ms"]),
            cpu_ms=float(num["cpu_ms"]),
            concurrency=int(num["concurrency"]),
            workers=int(num["workers"]),
            timeout=float(num["timeout"]),
            batch=int(num["batch"]) if "batch" in num else None,
            rate=float(num["rate"]),
            expect_workers=int(num["expect_workers"]),
            wait_s=float(num["wait_s"]),
            arrivals=_choice("arrivals", merged["arrivals"], ARRIVALS),
            modes=modes,
            options=options,
            **user,
        )
        if len(set(modes)) != len(modes):
            raise InputError(f"--mode: each executor may appear once, got {','.join(modes)}")
        if "http" in spec.mix and spec.mix["http"] > 0 and spec.io_ms > TARGET_MAX_DELAY_MS:
            raise InputError(
                f"--io-ms: http jobs wait on the target's /delay, which serves at most {TARGET_MAX_DELAY_MS} ms; "
                f"got {spec.io_ms:g}"
            )
        if spec.rate > 0 and (spec.jobs - 1) / spec.rate > _LONGEST_SCHEDULE_S:  # a rate typed per hour, not per second
            days = (spec.jobs - 1) / spec.rate / 86_400
            raise InputError(
                f"--rate: {spec.jobs} jobs at {spec.rate:g}/s would take {days:.3g} days to start; "
                f"at most {_LONGEST_SCHEDULE_S // 86_400} days"
            )
        return spec

    def kind_counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(self.mix, 0)
        counts.update(collections.Counter(self.kinds()))  # counted in C: this runs after every run
        return counts

    def kinds(self) -> Iterator[str]:
        """The kind of each job in order, spread evenly and exactly in proportion to the mix
        (smooth weighted round-robin): lazy, so a million-job run holds no list."""
        total = sum(self.mix.values())
        weights = [(kind, weight / total) for kind, weight in self.mix.items() if weight > 0]
        if len(weights) == 1:
            yield from itertools.repeat(weights[0][0], self.jobs)
            return
        credit = dict.fromkeys((kind for kind, _ in weights), 0.0)
        for _ in range(self.jobs):
            for kind, share in weights:
                credit[kind] += share
            chosen = max(credit, key=credit.__getitem__)
            credit[chosen] -= 1.0
            yield chosen

    @property
    def open_loop(self) -> bool:
        return self.rate > 0

    def arrival_offsets(self) -> Iterator[float]:
        """Open loop: when each job is meant to start, in seconds from the start of the run --
        every 1/rate s, or exponential gaps of mean 1/rate (seed 0: every mode of a comparison
        gets the same arrivals). Lazy, like ``kinds``."""
        if self.arrivals == "poisson":
            draw = random.Random(0).expovariate
            at = 0.0
            for _ in range(self.jobs):
                yield at
                at += draw(self.rate)
        else:
            period = 1.0 / self.rate
            for i in range(self.jobs):
                yield i * period

    def job_table(self) -> JobTable | None:
        """What every worker loads to run the user's kinds (None: built-in kinds only)."""
        if not self.user_jobs:
            return None
        jobs = {kind: parse_ref(ref, f"--job {kind}") for kind, ref in self.user_jobs.items()}
        setup = parse_ref(self.setup, "--setup", pair=False) if self.setup else None
        return JobTable(jobs, self.paths, setup)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modes"] = list(self.modes)
        out["paths"] = list(self.paths)
        if not self.user_jobs:  # built-in kinds only: the spec reads as it always did
            for key in ("user_jobs", "paths", "inputs", "setup"):
                del out[key]
        return {**out, **out.pop("options")}  # executor options sit beside the others, as in a spec file


def parse_modes(text: str) -> tuple[str, ...]:
    """``--mode``: executor names separated by commas, or ``all``; InputError naming the choices."""
    if text.strip() == "all":
        return MODES
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes:
        raise InputError(f"--mode: choose one of: {', '.join(MODES)}, or 'all'")
    for name in modes:
        executor_class(name)  # raises InputError naming the valid choices
    return modes


def _number(name: str, value: Any) -> int | float:
    kind, low, high = BOUNDS[name]
    return number("--" + name.replace("_", "-"), value, kind is int, low, high)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"--{name.replace('_', '-')}: choose one of {', '.join(choices)}, got {shown(value)}")
    return str(value)


def _user_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The user-job settings, checked for form (imports come later, in ``check_user_jobs``)."""
    table = values.get("user_jobs") or {}
    if not isinstance(table, Mapping):
        raise InputError(f'--spec: [jobs] must be a table of kind = "MODULE:FUNCTION", got {shown(table)}')
    jobs = {check_kind(kind, KINDS, "--job"): str(parse_ref(ref, f"--job {kind}")) for kind, ref in table.items()}
    paths = values.get("paths") or ()
    if not isinstance(paths, list | tuple) or not all(isinstance(p, str) and p for p in paths):
        raise InputError(f"--path: expected a list of directories, got {shown(paths)}")
    for path in paths:
        if not os.path.isdir(path):
            raise InputError(f"--path: {path} is not a directory")
    inputs, setup = values.get("inputs") or "", values.get("setup") or ""
    for flag, text in (("--inputs", inputs), ("--setup", setup)):
        if not isinstance(text, str):
            raise InputError(f"{flag}: expected text, got {shown(text)}")
    if (inputs or setup) and not jobs:
        raise InputError(f"{'--inputs' if inputs else '--setup'}: there is no user job (--job KIND=MODULE:FUNCTION)")
    if setup:
        setup = str(parse_ref(setup, "--setup", pair=False))
    absolute = tuple(os.path.abspath(p) for p in (paths or ([os.getcwd()] if jobs else [])))
    return {"user_jobs": jobs, "paths": absolute, "inputs": inputs, "setup": setup}


def parse_mix(text: str | Mapping[str, Any], user_kinds: tuple[str, ...] = ()) -> dict[str, float]:
    """``sleep=0.5,cpu=0.5`` -> {"sleep": 0.5, "cpu": 0.5}; a bare kind means weight 1; a table
    (from TOML) is checked the same way."""
    if not isinstance(text, str):
        return _mix_table(text, user_kinds)
    pairs: dict[str, Any] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, weight = part.partition("=")
        kind = kind.strip()
        if kind in pairs:
            raise InputError(f"--mix: kind {shown(kind)} given twice")
        pairs[kind] = weight.strip() if sep else 1.0
    return _mix_table(pairs, user_kinds)


def _mix_table(table: Any, user_kinds: tuple[str, ...] = ()) -> dict[str, float]:
    if not isinstance(table, Mapping) or not table:
        raise InputError(f"--mix: expected kind=weight pairs such as sleep=0.5,cpu=0.5, got {shown(table)}")
    mix: dict[str, float] = {}
    for kind, weight in table.items():
        if kind not in KINDS and kind not in user_kinds:
            known = ", ".join((*KINDS, *user_kinds))
            raise InputError(f"--mix: unknown job kind {shown(kind)}; choose from: {known}")
        value: float | None = None
        if isinstance(weight, str):
            value = parse_float(weight.strip())
        elif isinstance(weight, int | float) and not isinstance(weight, bool):
            value = float(weight)
        if value is None:
            raise InputError(f"--mix: weight for {kind!r} is not a number in plain digits: {shown(weight)}")
        if not math.isfinite(value) or value < 0 or is_subnormal(value):
            raise InputError(f"--mix: weight for {kind!r} must be a finite number >= 0, got {shown(weight)}")
        mix[kind] = value
    total = sum(mix.values())
    if total <= 0:
        raise InputError("--mix: at least one weight must be above 0")
    if not math.isfinite(total):
        raise InputError("--mix: weights are too large to add up; use proportions such as sleep=1,cpu=2")
    return mix


def read_toml(path: Path, flag: str, known: Iterable[str]) -> dict[str, Any]:
    """A TOML file's table, or InputError naming ``flag``: unreadable, not TOML, or a key not in ``known``."""
    text = read_text_file(path, flag)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{flag}: {path} is not valid TOML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise InputError(f"{flag}: {path} nests arrays or tables too deeply") from None
    known = sorted(known)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"{flag}: unknown key {shown(unknown[0])} in {path}; known keys: {', '.join(known)}")
    return data


def load_spec_file(path: Path) -> dict[str, Any]:
    """Read a TOML spec; keys are the flag names with underscores (io_ms, cpu_ms, ...)."""
    data = read_toml(path, "--spec", SPEC_KEYS)
    if "mode" in data and not isinstance(data["mode"], str):
        raise InputError(f"--spec: 'mode' in {path} must be a string such as \"async\"")
    if isinstance(data.get("jobs"), dict):  # [jobs]: the user's kinds, not the job count
        data["user_jobs"] = data.pop("jobs")
    return data
