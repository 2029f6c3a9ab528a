"""The user-job settings checked for form as the spec is built (``--job``, ``--path``, ``--inputs``,
``--setup``, a ``[jobs]`` table), message by message, and the defaults they bring: the user's kinds
in equal weights, one job per input, the working directory as the import path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runner.engine.spec import WorkloadSpec
from workers.errors import InputError

JOB = {"user_jobs": {"w": "mymod:work"}}


def _error(values: dict[str, Any]) -> str:
    with pytest.raises(InputError) as caught:
        WorkloadSpec.build(values, ("async",))
    return str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"user_jobs": ["w"]}, "--spec: [jobs] must be a table of kind = \"MODULE:FUNCTION\", got ['w']"),
        ({"user_jobs": {"sleep": "m:f"}}, "--job: job kind 'sleep' is a built-in kind; give yours another name"),
        ({"user_jobs": {"w": "nocolon"}}, "--job w: 'nocolon' names no function; write MODULE:FUNCTION"),
        ({**JOB, "paths": "abc"}, "--path: expected a list of directories, got 'abc'"),
        ({**JOB, "paths": [""]}, "--path: expected a list of directories, got ['']"),
        ({**JOB, "paths": ["/no/such/dir"]}, "--path: /no/such/dir is not a directory"),
        ({**JOB, "inputs": 5}, "--inputs: expected text, got 5"),
        ({**JOB, "setup": 5}, "--setup: expected text, got 5"),
        ({"inputs": "x.jsonl"}, "--inputs: there is no user job (--job KIND=MODULE:FUNCTION)"),
        ({"setup": "m:s"}, "--setup: there is no user job (--job KIND=MODULE:FUNCTION)"),
        ({**JOB, "setup": "m:a,b"}, "--setup: 'm:a,b' names 2 functions; give one function"),
        ({**JOB, "setup": "bad"}, "--setup: 'bad' names no function; write MODULE:FUNCTION"),
    ],
)
def test_each_bad_setting_has_its_own_message(values: dict[str, Any], message: str) -> None:
    assert _error(values) == message


def test_user_jobs_import_from_the_working_directory_unless_paths_are_given(tmp_path: Path) -> None:
    assert WorkloadSpec.build(JOB, ("async",)).paths == (os.getcwd(),)
    assert WorkloadSpec.build({**JOB, "paths": [str(tmp_path)]}, ("async",)).paths == (str(tmp_path),)
    assert WorkloadSpec.build({}, ("async",)).paths == ()  # no user job, no import path


def test_inputs_and_setup_are_kept_as_given(tmp_path: Path) -> None:
    spec = WorkloadSpec.build({**JOB, "inputs": "mymod:gen", "setup": "mymod:init", "jobs": 7}, ("async",))
    assert (spec.inputs, spec.setup, spec.jobs) == ("mymod:gen", "mymod:init", 7)


def test_user_kinds_default_to_equal_weights_and_one_job_per_input(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("1\n2\n\n3\n")
    values = {"user_jobs": {"a": "m:f", "b": "m:g"}, "inputs": str(tmp_path / "in.jsonl")}
    spec = WorkloadSpec.build(values, ("async",))
    assert spec.mix == {"a": 1.0, "b": 1.0} and spec.jobs == 3  # three inputs (a blank line is none)
    assert WorkloadSpec.build({**values, "jobs": 10}, ("async",)).jobs == 10  # --jobs wins: they cycle
    assert WorkloadSpec.build({**values, "mix": "a=3,b=1"}, ("async",)).mix == {"a": 3.0, "b": 1.0}
