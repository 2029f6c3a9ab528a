"""Optional extras: a user who never runs the cluster or the report does not install docker,
matplotlib or scipy; a command that needs a missing one ends with one line naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faults.helpers import ROOT

# Python treats a None entry in sys.modules as "not installed": the import fails as it would without the package.
_BLOCKED = "import sys; sys.modules[{module!r}] = None; from runner.cli import main; sys.argv = {argv!r}; main()"


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("docker", ["runner", "cluster", "sample", "--project", "nope"], "cluster"),
        (
            "scipy",
            ["runner", "bench", "--modes", "async", "--repeats", "3", "--mix", "noop=1", "--out", "{out}"],
            "report",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(tmp_path: object, module: str, argv: list[str], extra: str) -> None:
    argv = [arg.format(out=tmp_path) for arg in argv]
    code = _BLOCKED.format(module=module, argv=argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("runner: error:") and f"pip install 'runner[{extra}]'" in lines[-1], lines


def test_submit_needs_no_extra() -> None:
    code = (
        "import sys\nfor m in ('docker', 'matplotlib', 'scipy', 'markdown'): sys.modules[m] = None\n"
        "from runner.cli import main\n"
        "sys.argv = ['runner', 'submit', '--mode', 'async', '--jobs', '20', '--json']\nmain()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"done": 20' in proc.stdout
