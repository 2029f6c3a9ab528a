"""``runner bench --preset NAME``: the claims of "Asynchronous Programming" (Tai Le, 2023), measured
on this machine.

Every figure is measured here; the article's own figures are carried beside ours (``article``)
only so a report can show both. Estimates are ``{"mean", "ci95", "half_width", "n"}`` over
repeats (``runner.engine.stats.estimate``); ratios carry the half-width of their 95 % interval.

``requests`` -- 3 HTTP calls of 3 s (0.3 s with ``--quick``) against ``runner target``
(``TARGET_URL`` if set), through runner's own executors and ``measure``:
    variants.sequential   thread executor, 1 call in flight: one call after another
    variants.coroutines   async executor (aiohttp on uvloop), 3 in flight
    variants.threads      thread executor, 3 threads
  Each variant: ``wall_s`` (estimate of the time for all calls), ``samples``, ``ideal_s`` (calls
  x delay, or one delay when concurrent), ``call_ms_p50``. ``ratios[variant]``: wall time over the
  sequential one. One warm-up run per executor (connections opened) is kept apart; repeats are
  interleaved so drift hits every variant alike.

``spawn`` -- creation cost of N coroutines / threads / processes (see ``runner.experiments.spawn_cost``), each
  measurement in a fresh interpreter. ``kinds[kind]``: ``n``, ``time_per_unit_us`` and
  ``memory_per_unit_kib`` (estimates over repeats), ``million`` (linear extrapolation to 10^6 units:
  seconds and MiB -- an extrapolation, not a measurement), ``samples``. ``order_holds``: whether
  per-unit time and memory rise coroutine < thread < process (fork). ``process-spawn`` (a fresh
  interpreter per process, as runner's pool starts them) is reported beside, outside the order.

``blocking`` -- CPU jobs of ``cpu_ms`` (calibrated pure-Python ``spin``) on a uvloop loop, while
  HTTP probes (``GET /delay/10``) and a 10 ms loop-lag timer run beside them:
    modes.inline      the job runs in the coroutine: it holds the loop for its whole duration
    modes.offloaded   ``loop.run_in_executor(ProcessPoolExecutor)``; the pool has CPUs - 1 workers
                      (at least 1), so the loop keeps a core, and as many jobs are in flight
  Each mode: estimates of ``loop_lag_p99_ms``, ``probe_p99_ms``, ``probe_p50_ms``,
  ``job_ms_p50`` (how long a CPU job took, as its caller saw it), ``jobs_per_s``, and the raw
  ``repeats``. ``ratios``: inline over offloaded for lag and probe p99.

``race`` -- N read-modify-write increments of one shared counter by 4 coroutines, threads or
  processes (``runner.experiments.race``: with and without an ``await`` or a lock between read and
  write, processes on shared memory and on private copies): ``variants[]`` with ``lost`` and
  ``lost_per_million``, beside the article's claim per strategy (``article``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import uvloop

from runner import __version__
from runner.engine import codec, preflight
from runner.engine.bench_results import BenchResults
from runner.engine.coordinator import executor_config, measure
from runner.engine.machine import describe_machine
from runner.engine.preset_results import (
    BlockingPlan,
    Million,
    OrderHolds,
    Presets,
    RaceFigure,
    RequestsArticle,
    RequestsFigure,
    RequestsPlan,
    RequestsVariant,
    SpawnArticle,
    SpawnFigure,
    SpawnKind,
    SpawnPlan,
    VsSequential,
)
from runner.engine.results import SCHEMA_VERSION, Machine
from runner.engine.services import LocalServices
from runner.engine.spec import WorkloadSpec
from runner.engine.stats import Interval, estimate, ratio
from runner.experiments.blocking import run_blocking
from runner.experiments.spawn_cost import measure_in_child
from workers.base import Executor
from workers.calibration import for_coordinator
from workers.errors import InputError, RunnerError
from workers.registry import executor_class
from workers.urls import redact

PRESETS = ("requests", "spawn", "blocking", "race")

Step = Callable[[int, int, str], None]

# The article's figures, quoted so reports can put ours beside them.
ARTICLE: dict[str, dict[str, Any]] = {
    "requests": {
        "calls": 3,
        "call_s": 3.0,
        "sequential_s": 11.448,
        "gevent_s": 4.113,
        "asyncio_s": 4.879,
        "where": "httpbin.org/delay/3 over the internet",
    },
    "spawn": {
        "coroutine": {"n": 1_000_000, "time_s": 6.777, "memory_mib": 1111.67},
        "thread": {"n": 1_000_000, "time_s": 43.584, "memory_mib": 2660.73},
        "process": {"n": 1_000, "time_s": 0.379, "memory_mib": None, "million_s": 379.0},
    },
    "blocking": {"claim": "a CPU-bound coroutine blocks the event loop; run CPU work in a process pool"},
}


QUICK_PLANS = (
    RequestsPlan(call_ms=300.0, repeats=5),
    SpawnPlan(coroutine=20_000, thread=500, process=10, process_spawn=4, repeats=5),
    BlockingPlan(jobs=25, cpu_ms=20.0, repeats=3),
)
FULL_PLANS = (RequestsPlan(), SpawnPlan(), BlockingPlan())
RACE_INCREMENTS = {True: 100_000, False: 1_000_000}  # per variant, by --quick


def expand(names: Sequence[str]) -> list[str]:
    """Preset names in canonical order, 'all' meaning every preset, each once."""
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted.update(PRESETS)
        elif name in PRESETS:
            wanted.add(name)
        else:
            raise InputError(f"--preset: unknown preset {name!r}; choose from: {', '.join(PRESETS)}, all")
    if not wanted:
        raise InputError("--preset: name at least one preset")
    return [p for p in PRESETS if p in wanted]


class _Progress:
    def __init__(self, total: int, step: Step) -> None:
        self.done, self.total, self._step = 0, total, step

    def next(self, label: str) -> None:
        self._step(self.done, self.total, label)
        self.done += 1


def run_presets(names: Sequence[str], *, quick: bool, step: Callable[[int, int, str], None]) -> BenchResults:
    """Run the named presets; return the results document (see the module docstring). The verdicts
    are drawn by the report (``runner.report.verdicts``) from these figures."""
    chosen = expand(names)
    req, spawn, block = QUICK_PLANS if quick else FULL_PLANS
    steps = {
        "requests": 1 + 3 * req.repeats,
        "spawn": len(spawn.counts()) * spawn.repeats,
        "blocking": 1 + 2 * block.repeats,
        "race": 1,
    }
    progress = _Progress(sum(steps[name] for name in chosen), step)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.perf_counter()
    uses_target = any(name in ("requests", "blocking") for name in chosen)
    if uses_target:
        preflight.check_environment((), {"http"})
    with LocalServices() as services:
        if uses_target:  # a wrong TARGET_URL fails here, not in every call of the demonstration
            preflight.check_services({"http": services.target_url()})
        presets = Presets(
            requests=run_requests(req, services, progress) if "requests" in chosen else None,
            spawn=run_spawn(spawn, progress) if "spawn" in chosen else None,
            blocking=run_blocking(block, services, progress.next, ARTICLE["blocking"])
            if "blocking" in chosen
            else None,
            race=run_race(RACE_INCREMENTS[quick], progress) if "race" in chosen else None,
        )
    step(progress.total, progress.total, "done")
    return BenchResults(
        schema_version=SCHEMA_VERSION,
        runner_version=__version__,
        started_at=started_at,
        wall_s=round(time.perf_counter() - began, 2),
        quick=quick,
        machine=codec.decode(Machine, describe_machine()),
        cells=[],
        presets=presets,
    )


# --- race --------------------------------------------------------------------------------------


def run_race(increments: int, progress: _Progress) -> RaceFigure:
    """The race-conditions row: every variant of ``runner.experiments.race`` once."""
    from runner.experiments.race import measure_races

    progress.next(f"race: {increments:,} increments per variant")
    return RaceFigure.from_json(measure_races(increments, workers=4), "race")


# --- requests ----------------------------------------------------------------------------------

_REQUEST_VARIANTS = (  # name, executor, calls in flight (None: all at once), what it is
    ("sequential", "thread", 1, "one call after another (one thread, a pooled sync client)"),
    ("coroutines", "async", None, "all calls at once as coroutines (aiohttp on uvloop)"),
    ("threads", "thread", None, "all calls at once, one thread each (a pooled sync client)"),
)


def run_requests(plan: RequestsPlan, services: LocalServices, progress: _Progress) -> RequestsFigure:
    target = services.target_url()
    calibration = for_coordinator()  # measure() records it; http jobs burn no CPU units

    def spec(in_flight: int | None, call_ms: float, mode: str) -> WorkloadSpec:
        values = {
            "jobs": plan.calls,
            "mix": {"http": 1.0},
            "io_ms": call_ms,
            "concurrency": in_flight or plan.calls,
            "workers": 1,
            "timeout": max(60.0, 4 * plan.calls * call_ms / 1000),
        }
        return WorkloadSpec.build(values, (mode,))

    async def go() -> dict[str, list[tuple[float, float]]]:  # per variant: (wall s, call ms p50) per repeat
        executors: dict[str, Executor] = {}
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in _REQUEST_VARIANTS}
        async with contextlib.AsyncExitStack() as started:  # stops every executor, even if one stop() raises
            for name, mode, in_flight, _ in _REQUEST_VARIANTS:
                first = spec(in_flight, plan.call_ms, mode)
                executors[name] = await started.enter_async_context(
                    executor_class(mode)(executor_config(first), services)
                )
            progress.next("requests: warm-up (connections opened, kept apart)")
            for name, mode, in_flight, _ in _REQUEST_VARIANTS:
                await measure(executors[name], spec(in_flight, 1.0, mode), calibration, services)
            for r in range(plan.repeats):
                for name, mode, in_flight, _ in _REQUEST_VARIANTS:
                    progress.next(f"requests: {name}, repeat {r + 1}/{plan.repeats}")
                    result = await measure(executors[name], spec(in_flight, plan.call_ms, mode), calibration, services)
                    done = result.jobs.done
                    if done != plan.calls:
                        reasons = "; ".join(result.failures) or "timed out"
                        raise RunnerError(f"requests preset: {done} of {plan.calls} calls succeeded: {reasons}")
                    runs[name].append((result.wall_s, result.latency_ms.p50))
        return runs

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop:
        runs = loop.run(go())
    call_s = plan.call_ms / 1000
    variants: dict[str, RequestsVariant] = {}
    for name, mode, in_flight, what in _REQUEST_VARIANTS:
        walls = [wall for wall, _ in runs[name]]
        variants[name] = RequestsVariant(
            what=what,
            executor=mode,
            in_flight=in_flight or plan.calls,
            wall_s=Interval.of(estimate(walls)),
            samples=walls,
            ideal_s=call_s * (plan.calls if in_flight == 1 else 1),
            call_ms_p50=sorted(p50 for _, p50 in runs[name])[len(walls) // 2],
        )
    base = variants["sequential"].wall_s.estimate()
    ratios = {}
    for name in ("coroutines", "threads"):
        value, half = ratio(variants[name].wall_s.estimate(), base)
        ratios[name] = VsSequential(vs_sequential=value, half_width=half)
    where = "TARGET_URL" if os.environ.get("TARGET_URL") else "runner target, started locally"
    return RequestsFigure(
        plan=plan,
        target=where,
        target_url=redact(target),
        variants=variants,
        ratios=ratios,
        article=codec.decode(RequestsArticle, ARTICLE["requests"]),
    )


# --- spawn -------------------------------------------------------------------------------------

_ORDER = ("coroutine", "thread", "process")


def run_spawn(plan: SpawnPlan, progress: _Progress) -> SpawnFigure:
    counts = plan.counts()
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in counts}
    for r in range(plan.repeats):
        for kind, n in counts.items():  # interleaved, so drift on the machine hits every kind alike
            progress.next(f"spawn: {n:,} x {kind}, repeat {r + 1}/{plan.repeats}")
            samples[kind].append(measure_in_child(kind, n))
    kinds: dict[str, SpawnKind] = {}
    for kind, n in counts.items():
        per_us = [s["create_s"] / n * 1e6 for s in samples[kind]]
        per_kib = [s["memory_bytes"] / n / 1024 for s in samples[kind]]
        t, m = estimate(per_us), estimate(per_kib)
        kinds[kind] = SpawnKind(
            n=n,
            time_per_unit_us=Interval.of(t),
            memory_per_unit_kib=Interval.of(m),
            million=Million(time_s=t.mean, memory_mib=m.mean * 1e6 / 1024),
            samples=samples[kind],
        )
    means = {k: (kinds[k].time_per_unit_us.mean, kinds[k].memory_per_unit_kib.mean) for k in _ORDER}
    order = OrderHolds(
        time=means["coroutine"][0] < means["thread"][0] < means["process"][0],
        memory=means["coroutine"][1] < means["thread"][1] < means["process"][1],
    )
    article = {kind: codec.decode(SpawnArticle, figures) for kind, figures in ARTICLE["spawn"].items()}
    return SpawnFigure(plan=plan, kinds=kinds, order_holds=order, article=article)
