"""The Python API (``runner.compare``): light to import, the same typed results as the command
line for a user's function, clear errors from the project's exception tree, and the README's
example run as written."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runner
from runner.engine.results import RunResult
from tests.cli import ROOT, cli_env
from workers.errors import InputError, RunnerError

HEAVY = ("celery", "redis", "aiohttp", "uvloop", "click", "gevent", "runner.engine.coordinator", "runner.api")


def test_import_runner_stays_light() -> None:
    code = f"import sys, runner; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.fixture()
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module of the user's, in a folder outside the repository, imported as a notebook would."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "userfuncs.py").write_text(
        textwrap.dedent(
            """
            import asyncio

            def square(x, offset=0):
                return x * x + offset

            async def square_async(x, offset=0):
                await asyncio.sleep(0)
                return x * x + offset

            def numbers():
                return iter(range(5))
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    yield importlib.import_module("userfuncs")
    sys.modules.pop("userfuncs", None)


def test_compare_runs_a_function_object_and_returns_typed_results(user_module: Any, tmp_path: Path) -> None:
    results = runner.compare(
        (user_module.square, user_module.square_async),
        inputs=[[3], {"x": 2, "offset": 1}],
        modes=["async", "thread"],
        jobs=6,
        concurrency=2,
        out_dir=tmp_path / "out",
    )
    assert list(results) == ["async", "thread"]
    for mode, result in results.items():
        assert isinstance(result, RunResult) and result.mode == mode
        assert (result.jobs.submitted, result.jobs.done, result.jobs.failed, result.jobs.lost) == (6, 6, 0, 0)
        assert result.kinds == {"square": 6}
        assert result.user_jobs is not None and result.user_jobs.kinds == {"square": "userfuncs:square,square_async"}
        written = RunResult.from_json(json.loads((tmp_path / "out" / mode / "result.json").read_text()))
        assert written.jobs == result.jobs
    assert "async" in results["async"].user_jobs.ran["square"]  # type: ignore[union-attr]
    assert "sync" in results["thread"].user_jobs.ran["square"]  # type: ignore[union-attr]


def test_compare_takes_references_kinds_and_a_generator(user_module: Any) -> None:
    result = runner.compare(
        {"sq": "userfuncs:square"}, inputs=user_module.numbers, modes="async", path=Path(user_module.__file__).parent
    )["async"]
    assert result.kinds == {"sq": 5} and result.jobs.done == 5  # without jobs=: one job per input


def one() -> int:
    return 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job": lambda: 1}, r"^compare\(\): job <lambda> is not a function at the top level"),
        ({"job": "nosuchmodule_xyz:fn"}, r"^compare\(\): job fn: module 'nosuchmodule_xyz' not found"),
        ({"job": "os"}, r"^compare\(\): job: 'os' names no function"),
        ({"job": one, "kind": "hash"}, r"^compare\(\): job: job kind 'hash' is a built-in kind"),
        ({"job": one, "inputs": [object()]}, r"^compare\(\): inputs\[0\] is not a JSON value"),
        ({"inputs": [1, 2]}, r"^compare\(\): kind, inputs, setup and path are for your own function"),
        ({"path": "examples"}, r"^compare\(\): kind, inputs, setup and path are for your own function"),
        ({"modes": "fastest"}, r"^compare\(\): modes: unknown executor 'fastest'; choose one of: async"),
        ({"modes": []}, r"^compare\(\): modes must be executor names"),
        ({"jobs": 0}, r"^compare\(\): jobs: 0 is out of range"),
        ({"io_ms": "soon"}, r"^compare\(\): io_ms: expected a number"),
        ({"iom_s": 3}, r"^compare\(\): unknown setting 'iom_s'; settings: io_ms, cpu_ms"),
        ({"job": (one,)}, r"^compare\(\): job: a pair is \(def, async def\), got 1 items"),
    ],
)
def test_bad_arguments_raise_input_error_before_any_run(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        runner.compare(**kwargs)
    assert isinstance(info.value, RunnerError) and "\n" not in str(info.value)


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### The Python API") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's Python API section has a python block"
    return found.group(1)


def test_the_readme_example_runs_as_written() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _readme_example()], cwd=ROOT, capture_output=True, text=True, env=cli_env(), timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["async", "thread", "process"], done.stdout
    assert all("20/20 done" in line for line in lines), done.stdout
