"""One way to run the command line in tests: ``run_cli`` (a real ``python -m runner`` subprocess,
as a user runs it), ``spawn_cli`` (the same, left running, for signals), and ``invoke`` (click's
CliRunner, in-process: fast, and it sees executors registered by the test such as the stub)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
RUNNER = (sys.executable, "-m", "runner")


def cli_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment with the repository importable, then ``env`` on top (a value of
    None removes the variable)."""
    merged = dict(os.environ)
    merged["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), merged.get("PYTHONPATH", "")) if p)
    for key, value in (env or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def run_cli(
    *args: str, env: Mapping[str, str | None] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``runner ARGS`` as a subprocess, to the end; stdout and stderr captured as text."""
    return subprocess.run([*RUNNER, *args], capture_output=True, text=True, timeout=timeout, env=cli_env(env))


def spawn_cli(*args: str, env: Mapping[str, str | None] | None = None, **popen: Any) -> subprocess.Popen[Any]:
    """``runner ARGS`` started in its own session (so a test can signal its whole group); pipes for
    stdout and stderr unless ``popen`` says otherwise."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([*RUNNER, *args], env=cli_env(env), start_new_session=True, **popen)


def invoke(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """``runner ARGS`` in this process through click's CliRunner (stderr kept apart from stdout)."""
    from runner.cli.main import cli

    return CliRunner().invoke(cli, list(args), env=env)
