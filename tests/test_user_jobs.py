"""Issue 12, points 1-4: the user's own functions as jobs, in every executor (real pools, real
Celery nodes over the embedded Redis, the real gevent worker), from a module in a directory outside
the repository: both forms and a pair, inputs from a JSON-lines file and from a generator, cycling,
and ``--setup`` run in every worker process before its jobs (the job function checks it)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli import ROOT, run_cli
from workers.registry import MODES

MODULE = """
import asyncio
import os

from runner import offload

READY = None


def setup():
    global READY
    READY = os.getpid()  # the jobs below check that this ran in their own process


def work(x, y=0):
    if READY != os.getpid():
        raise RuntimeError("setup did not run in this process")
    return {"sum": x + y}


async def awork(x, y=0):
    if READY != os.getpid():
        raise RuntimeError("setup did not run in this process")
    await asyncio.sleep(0.001)
    return await offload(add, x, y)


def add(x, y):
    return {"sum": x + y, "pid": os.getpid()}


def gen():
    for i in range(5):
        yield {"x": i, "y": 1}


def boom(x):
    raise ValueError(f"no good: {x}")
"""


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("userjobs")
    assert not where.resolve().is_relative_to(ROOT)  # outside the repository, as a user's would be
    (where / "ujmod.py").write_text(textwrap.dedent(MODULE))
    (where / "inputs.jsonl").write_text('[1, 2]\n{"x": 3}\n\n7\n')
    return where


def submit(user_dir: Path, *args: str, timeout: float = 240) -> dict[str, Any]:
    proc = run_cli("submit", "-q", "--json", "--path", str(user_dir), "--workers", "2", *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# Which form each executor runs for a kind with only a def, only an async def, and both.
FORMS = {
    "async": ("sync", "async", "async"),
    "hybrid": ("sync", "async", "async"),
    "thread": ("sync", "async", "sync"),
    "process": ("sync", "async", "sync"),
    "celery": ("sync", "async", "sync"),
    "gevent": ("sync", "async", "sync"),
}


@pytest.mark.parametrize("source", ["file", "generator"])
@pytest.mark.parametrize("mode", MODES)
def test_both_forms_and_a_pair_run_in_every_executor(mode: str, source: str, user_dir: Path) -> None:
    jobs = ["--job", "s=ujmod:work", "--job", "a=ujmod:awork", "--job", "p=ujmod:awork,work"]
    given = str(user_dir / "inputs.jsonl") if source == "file" else "ujmod:gen"  # both cycle: 3 or 5 inputs
    inputs = ["--inputs", given, "--jobs", "9", "--setup", "ujmod:setup"]
    result = submit(user_dir, "--mode", mode, *jobs, *inputs)
    assert result["jobs"]["done"] == 9 and result["failures"] == {}
    assert result["kinds"] == {"s": 3, "a": 3, "p": 3}  # equal weights without --mix
    user = result["user_jobs"]
    assert user["kinds"] == {"s": "ujmod:work", "a": "ujmod:awork", "p": "ujmod:awork,work"}
    ran = {kind: set(forms) for kind, forms in user["ran"].items()}
    sync_only, async_only, pair = FORMS[mode]
    assert ran == {"s": {sync_only}, "a": {async_only}, "p": {pair}}
    assert sum(n for forms in user["ran"].values() for where in forms.values() for n in where.values()) == 9
    assert user["workers"], "no worker reported its setup"
    for worker in user["workers"]:
        assert worker["import_s"] >= 0 and worker["setup_s"] >= 0
    carried = {"async": "none", "thread": "none", "process": "pickle", "hybrid": "pickle"}.get(mode, "json")
    assert user["serialised_as"] == carried
    if mode in ("process", "celery", "gevent"):  # every result was serialised, measured and dropped
        assert sum(size["count"] for size in user["result_bytes"].values()) == 9
        assert all(size["max"] > 0 for size in user["result_bytes"].values())


def test_process_pool_reports_setup_per_worker_process(user_dir: Path) -> None:
    result = submit(user_dir, "--mode", "process", "--job", "s=ujmod:work", "--setup", "ujmod:setup", "--jobs", "4")
    workers = result["user_jobs"]["workers"]
    assert workers and all(w["worker"].startswith("pid-") for w in workers)
    # every process that ran a job reported its setup (from the warm-up, or with its first job)
    assert {w["worker"] for w in workers} >= set(result["user_jobs"]["ran"]["s"]["sync"])


SLOW_SETUP = """
import os
import time


def setup():
    # the first process to get here is ready at once; the others take 1 s
    try:
        os.close(os.open(os.path.join(os.path.dirname(__file__), "first"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(1.0)


def work(x):
    return x
"""


def test_every_pool_process_is_measured_even_when_one_starts_late(tmp_path: Path) -> None:
    # The first process took every warm-up task while the other was still in its setup: the
    # resource figures then counted one process of two (its CPU and memory left out).
    (tmp_path / "slowstart.py").write_text(textwrap.dedent(SLOW_SETUP))
    args = ["--mode", "process", "--job", "w=slowstart:work", "--setup", "slowstart:setup", "--jobs", "40"]
    result = submit(tmp_path, *args)
    assert result["jobs"]["done"] == 40
    assert result["resources"]["worker_processes"] == 2
    assert len(result["user_jobs"]["workers"]) == 2  # each reported its setup


FAILING_SETUP = SLOW_SETUP.replace("time.sleep(1.0)", "time.sleep(0.5)\n        raise OSError('port 8000 is taken')")


def test_a_setup_failing_in_a_late_process_fails_the_start(tmp_path: Path) -> None:
    # Its jobs ran as nothing and counted done (23 of 40), the function never called, before the
    # warm-up heard from every process.
    (tmp_path / "latefail.py").write_text(textwrap.dedent(FAILING_SETUP.replace("def work(x)", "def work(x=0)")))
    args = ["--mode", "process", "--workers", "2", "--job", "w=latefail:work", "--setup", "latefail:setup"]
    proc = run_cli("submit", "-q", "--path", str(tmp_path), *args, "--jobs", "40", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "runner: error: --setup latefail:setup raised OSError: port 8000 is taken\n"


def test_a_pool_process_whose_setup_failed_fails_user_jobs_it_is_given(tmp_path: Path) -> None:
    # Should a process be handed a user job anyway, the job fails with the setup's error.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from runner.engine.spec import WorkloadSpec
    from workers.jobs import Job
    from workers.process_child import COLS, init_process, run_wire
    from workers.user_jobs import SetupFailed

    (tmp_path / "latefail.py").write_text(textwrap.dedent(FAILING_SETUP))
    (tmp_path / "first").touch()  # every process is a late one: its setup raises
    values = {"user_jobs": {"w": "latefail:work"}, "setup": "latefail:setup", "paths": [str(tmp_path)]}
    table = WorkloadSpec.build(values, ("process",)).job_table()
    ctx = multiprocessing.get_context("spawn")
    init = (ctx.Array("q", COLS, lock=False), ctx.Value("i", 0), table, None)
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=init_process, initargs=init) as pool:
        with pytest.raises(SetupFailed, match="port 8000 is taken"):
            pool.submit(run_wire, Job(0, "w", 0.0, 0, "latefail:work", 1).to_wire(), 1).result(60)
        assert pool.submit(run_wire, Job(1, "noop", 0.0, 0, "").to_wire(), 2).result(60)[0] >= 0  # built-ins run


def test_generator_inputs_without_jobs_give_one_job_each(user_dir: Path) -> None:
    result = submit(
        user_dir, "--mode", "thread", "--job", "s=ujmod:work", "--inputs", "ujmod:gen", "--setup", "ujmod:setup"
    )
    assert result["jobs"]["submitted"] == 5 and result["jobs"]["done"] == 5


def test_inputs_cycle_when_jobs_asks_for_more(user_dir: Path) -> None:
    args = ["--job", "s=ujmod:work", "--inputs", str(user_dir / "inputs.jsonl"), "--setup", "ujmod:setup"]
    assert submit(user_dir, "--mode", "async", *args)["jobs"]["done"] == 3  # three JSON lines, one blank
    assert submit(user_dir, "--mode", "async", *args, "--jobs", "10")["jobs"]["done"] == 10


def test_without_inputs_each_call_gets_the_job_index(user_dir: Path, tmp_path: Path) -> None:
    probe = tmp_path / "check.py"  # rejects anything but an index of this run
    probe.write_text("def g(i):\n    assert isinstance(i, int) and 0 <= i < 6, i\n    return i\n")
    result = submit(tmp_path, "--mode", "process", "--job", "k=check:g", "--jobs", "6")
    assert result["jobs"]["done"] == 6
    assert result["user_jobs"]["result_bytes"]["k"]["count"] == 6


def test_user_kinds_mix_with_built_in_ones(user_dir: Path) -> None:
    # http and redis jobs among them get the services' addresses (started for them) as without user jobs
    mix = "s=1,sleep=1,http=1,redis=1"
    args = ["--job", "s=ujmod:work", "--setup", "ujmod:setup", "--mix", mix, "--io-ms", "1"]
    result = submit(user_dir, "--mode", "async", *args, "--jobs", "8")
    assert result["kinds"] == {"s": 2, "sleep": 2, "http": 2, "redis": 2}
    assert result["jobs"]["done"] == 8, result["failures"]


def test_a_raising_function_fails_with_its_type_and_message(user_dir: Path) -> None:
    result = submit(user_dir, "--mode", "process", "--job", "b=ujmod:boom", "--jobs", "3")
    assert result["jobs"]["failed"] == 3
    assert set(result["failures"]) == {"ValueError: no good: 0", "ValueError: no good: 1", "ValueError: no good: 2"}


def test_a_spec_file_jobs_table(user_dir: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'mode = "thread"\npaths = ["{user_dir}"]\nsetup = "ujmod:setup"\n'
        f'inputs = "{user_dir / "inputs.jsonl"}"\n\n[jobs]\ns = "ujmod:work"\n'
    )
    proc = run_cli("submit", "-q", "--json", "--spec", str(spec))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["jobs"]["done"] == 3 and result["spec"]["user_jobs"] == {"s": "ujmod:work"}


def test_a_celery_task_object_stands_for_its_function(tmp_path: Path) -> None:
    (tmp_path / "taskmod.py").write_text(
        "from celery import Celery\n\napp = Celery('mine', set_as_current=False)\n\n\n"
        "@app.task\ndef add(x, y):\n    return x + y\n"
    )
    (tmp_path / "pairs.jsonl").write_text("[1, 2]\n[3, 4]\n")
    result = submit(tmp_path, "--mode", "process", "--job", "t=taskmod:add", "--inputs", str(tmp_path / "pairs.jsonl"))
    assert result["jobs"]["done"] == 2 and result["user_jobs"]["ran"]["t"].keys() == {"sync"}


def test_bench_sweeps_user_jobs(user_dir: Path, tmp_path: Path) -> None:
    args = ["--quick", "--modes", "async,thread", "--repeats", "1", "--out", str(tmp_path)]
    job = ["--job", "s=ujmod:work", "--setup", "ujmod:setup", "--path", str(user_dir)]
    proc = run_cli("bench", "-q", *args, *job, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [c["mix_name"] for c in doc["cells"]] == ["your jobs", "your jobs"]
    assert all(c["summary"]["jobs"]["failed"] == 0 for c in doc["cells"])


def test_a_sweep_file_jobs_table_and_mixes_naming_user_kinds(user_dir: Path, tmp_path: Path) -> None:
    from runner.experiments.sweep import build_sweep

    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        f'modes = ["async"]\npaths = ["{user_dir}"]\n\n[jobs]\ns = "ujmod:work"\n\n'
        '[[mixes]]\nname = "half"\nmix = {s = 1, sleep = 1}\n'
    )
    sweep = build_sweep({}, quick=True, sweep_file=sweep_file)
    assert sweep.user_jobs == {"s": "ujmod:work"} and sweep.paths == (str(user_dir),)
    assert [(m.name, m.weights) for m in sweep.mixes] == [("half", {"s": 1.0, "sleep": 1.0})]
    spec = sweep.workload(sweep.mixes[0], 10, "async")
    assert spec.user_jobs == {"s": "ujmod:work"} and spec.job_table() is not None
    only = build_sweep({"user_job": None, "user_jobs": {"t": "ujmod:work"}, "paths": [str(user_dir)]}, quick=True)
    assert [(m.name, m.weights) for m in only.mixes] == [("your jobs", {"t": 1.0})]
