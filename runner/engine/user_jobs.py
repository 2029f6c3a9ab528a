"""The coordinator's side of user jobs: check everything before any executor starts, make the
jobs (each user job carrying its input), and type what the executor recorded for the result.

Loading and running the functions lives in ``workers.user_jobs``, which every worker shares.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator, Mapping
from typing import Any

from runner.engine import results as rs
from runner.engine.spec import WorkloadSpec
from runner.engine.user_inputs import Inputs
from workers.errors import InputError
from workers.jobs import Job
from workers.registry import executor_class
from workers.user_jobs import resolve, setup_function

_SHOWN = 60


def check(spec: WorkloadSpec) -> None:
    """InputError (one line) for anything that would fail every user job: a module or function
    that cannot be loaded, inputs that cannot be read, a first input the signature rejects or an
    executor of this run cannot carry."""
    table = spec.job_table()
    if table is None:
        return
    jobs = resolve(table)
    setup_function(table)
    if spec.inputs:
        inputs = Inputs(spec.inputs, spec.paths)
        inputs.count(limit=spec.jobs)  # every input this run will read is read once now
        first = inputs.first()
    else:
        first = 0  # the job's index
    for kind, job in jobs.items():
        if spec.mix.get(kind, 0) > 0:
            job.check_input(first)
    for mode in spec.modes:
        carrier = executor_class(mode).serialises
        if carrier == "json":
            try:
                json.dumps(first)
            except (TypeError, ValueError) as exc:
                raise InputError(f"--inputs: {mode} sends inputs as JSON; the first input is not: {exc}") from None
        elif carrier == "pickle":
            try:
                pickle.dumps(first)
            except Exception as exc:
                raise InputError(f"--inputs: {mode} pickles inputs, and the first input cannot be: {exc}") from None


def make_jobs(spec: WorkloadSpec, units: Mapping[str, int], targets: Mapping[str, str]) -> Iterator[Job]:
    """Like the built-in workload, with each user job's reference and its input (or its index)."""
    refs = spec.user_jobs
    inputs = Inputs(spec.inputs, spec.paths).stream() if spec.inputs else None
    for job_id, kind in enumerate(spec.kinds()):
        ref = refs.get(kind)
        if ref is None:
            yield Job(job_id, kind, spec.io_ms, units[kind], targets.get(kind, ""))
        else:
            yield Job(job_id, kind, 0.0, 0, ref, job_id if inputs is None else next(inputs))


def figures(spec: WorkloadSpec, recorded: dict[str, Any] | None) -> rs.UserJobs | None:
    if not spec.user_jobs or recorded is None:
        return None
    return rs.UserJobs(
        kinds=dict(spec.user_jobs),
        inputs=spec.inputs or None,
        setup=spec.setup or None,
        serialised_as=recorded["serialised_as"],
        workers=[rs.UserWorker(**w) for w in recorded["workers"]],
        ran=recorded["ran"],
        result_bytes={k: rs.ResultBytes(**v) for k, v in recorded["result_bytes"].items()},
    )
