"""Point 7: every option of every command answers to exactly ``RUNNER_<COMMAND>_<OPTION>``.

The walk takes the options from the commands themselves (a new option is covered without editing
this file), checks that ``--help`` names each variable, and sets each option once on the command
line and once through its variable, parsing it as the command would run it: the value must reach
the command's parameters. A few are then checked end to end through a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from runner.cli.main import cli
from runner.cli.params import StrictNumber, envvar_name, options
from tests.faults.helpers import ROOT

_ALL = [(path, opt) for path, opt in options(cli) if path and opt.name not in ("help", "version")]


def _sample(option: click.Option) -> tuple[str, Any]:
    """(text to give, value the command must receive)."""
    kind = option.type
    if option.is_flag:
        return "1", True
    if isinstance(kind, click.Choice):
        text: str = str(kind.choices[-1])
        value: Any = text
    elif isinstance(kind, StrictNumber):
        number = max(kind.low, min(kind.high, 7 if kind.whole else 2.5))
        text, value = str(number), number
    elif isinstance(kind, click.Path):
        text = "some/where"
        value = Path(text) if kind.type is Path else text
    else:
        text = value = "x7"
    return text, ((value,) if option.multiple else value)


def _id(case: tuple[list[str], click.Option]) -> str:
    return " ".join(case[0]) + " " + max(case[1].opts, key=len)


def _command(path: list[str]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _parse(path: list[str], args: list[str], env: dict[str, str]) -> dict[str, Any]:
    command = _command(path)
    extra = ["x.json"] * sum(isinstance(p, click.Argument) for p in command.params)  # report/compare files
    if any(o.required and o.name != "project" for o in command.params if isinstance(o, click.Option)):
        raise AssertionError("a required option this test does not know how to fill")
    if path == ["cluster", "sample"] and "--project" not in args and "RUNNER_CLUSTER_SAMPLE_PROJECT" not in env:
        args = [*args, "--project", "p"]
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with command.make_context(" ".join(path), [*args, *extra]) as ctx:
            return dict(ctx.params)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_every_command_is_walked() -> None:
    walked = {" ".join(path) for path, _ in _ALL}
    assert walked == {"submit", "bench", "report", "compare", "target", "cluster sample"}


@pytest.mark.parametrize("case", _ALL, ids=_id)
def test_option_answers_to_its_variable(case: tuple[list[str], click.Option], monkeypatch: pytest.MonkeyPatch) -> None:
    path, option = case
    for key in [k for k in os.environ if k.startswith("RUNNER_")]:
        monkeypatch.delenv(key)
    name = envvar_name(path, option)
    assert option.envvar == name
    assert name == "RUNNER_" + "_".join([*path, max(option.opts, key=len)[2:]]).upper().replace("-", "_")
    help_text = CliRunner().invoke(cli, [*path, "--help"], terminal_width=400).output
    assert name in help_text, f"--help does not name {name}"
    text, expected = _sample(option)
    flag = max(option.opts, key=len)
    via_flag = _parse(path, [flag] if option.is_flag else [flag, text], {})
    via_env = _parse(path, [], {name: text})
    assert via_flag[option.name] == expected
    assert via_env[option.name] == expected, f"{name}={text} did not reach {flag}"


def test_a_bad_value_in_a_variable_is_named() -> None:
    result = CliRunner().invoke(cli, ["submit"], env={"RUNNER_SUBMIT_CONCURRENCY": "1_0"})
    assert result.exit_code == 2
    assert "RUNNER_SUBMIT_CONCURRENCY" in result.stderr and "Traceback" not in result.stderr


def _runner(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "runner", *args], capture_output=True, text=True, timeout=120, env=full, cwd=cwd
    )


def test_spec_out_and_json_from_the_environment_end_to_end(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('jobs = 7\nmix = "sleep=1"\nio_ms = 0\n')
    out = tmp_path / "out"
    env = {"RUNNER_SUBMIT_SPEC": str(spec), "RUNNER_SUBMIT_OUT": str(out), "RUNNER_SUBMIT_JSON": "1"}
    proc = _runner(["submit", "--cpu-ms", "0"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["jobs"]["submitted"] == 7 and result["spec"]["mix"] == {"sleep": 1.0}
    assert json.loads((out / "result.json").read_text())["jobs"]["done"] == 7


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("RUNNER_BENCH_SWEEP", "/nonexistent/sweep.toml", "--sweep"),
        ("RUNNER_BENCH_MIX", "io:nope=1", "nope"),
        ("RUNNER_BENCH_PRESET", "nope", "nope"),
    ],
)
def test_bench_variables_end_to_end(variable: str, value: str, named: str, tmp_path: Path) -> None:
    """Each of these used to be ignored, starting a whole sweep; now each fails at once. (That
    RUNNER_BENCH_OUT reaches bench is shown by the walk above.)"""
    proc = _runner(["bench"], {variable: value}, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], proc.stderr
