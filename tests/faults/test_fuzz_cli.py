"""Point 9: hypothesis over every command (submit, bench, compare, report, cluster, target) and every
input channel (flags, RUNNER_* variables, REDIS_URL/TARGET_URL, spec and sweep TOML, results
files) -- 5,000 cases in all, in process through click's CliRunner.

Each case must end with exit 0, 1 or 2, no traceback, and on an error exactly one line on stderr.
Options come from the commands themselves; values are valid ones, hostile ones (``1_0``,
Arabic-Indic digits, subnormals, control characters, URLs too broken to parse) or any text at all.
A case whose input passes validation reaches the point where work would start -- calibration, the
Docker client, the HTTP server -- and stops there (``_Reached``): input handling is what is tested
here; real runs are the subject of the other tests, and of the few subprocess cases at the end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.cli.main import cli
from runner.cli.params import StrictNumber, options
from runner.engine.spec import BOUNDS, SPEC_KEYS
from tests.faults.helpers import ROOT
from workers.jobs import KINDS
from workers.registry import MODES


class _Reached(Exception):
    """Input passed validation: the command got as far as starting work."""


def _reached(*_: Any, **__: Any) -> Any:
    raise _Reached


_TMP = Path(tempfile.mkdtemp(prefix="runner-fuzz-"))


@pytest.fixture(scope="module", autouse=True)
def _stop_before_work() -> Iterator[None]:
    """Every command stops where its work would begin; nothing is started, nothing is served."""
    (_TMP / "fifo").exists() or os.mkfifo(_TMP / "fifo")
    (_TMP / "file").write_text("x")
    (_TMP / "dir").mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workers.calibration.calibrate", _reached)
        patch.setattr("runner.experiments.sweep.for_coordinator", _reached)
        patch.setattr("runner.experiments.presets.run_presets", _reached)
        patch.setattr("runner.cli.cluster.ClusterSampler", _reached)
        patch.setattr("runner.target.serve", _reached)
        patch.chdir(_TMP)
        for key in [k for k in os.environ if k.startswith("RUNNER_") or k in ("REDIS_URL", "TARGET_URL")]:
            patch.delenv(key)
        yield
    shutil.rmtree(_TMP, ignore_errors=True)  # made at import, for the strategies: gone with the module


def _settings(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,  # the same cases in every CI run; fuzz further with --hypothesis-seed
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def check(result: Result) -> None:
    """Exit 0/1/2, no traceback, and on an error exactly one line on stderr."""
    exc = result.exception
    if isinstance(exc, _Reached):
        return
    assert exc is None or isinstance(exc, SystemExit), f"uncaught {type(exc).__name__}: {exc}"
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("runner: error: "), result.stderr


# -- values ---------------------------------------------------------------------------------------

_TRICKY_NUMBERS = ["1_0", "\u0661\u0662", "\uff11", "5e-324", "-5e-324", "1e309", "-0", "+5", " 5", "5 ", "0x10"]
_TRICKY_NUMBERS += ["nan", "inf", "-inf", "1e-320", "99999999999999999999999", "1.5", "", "1,2", "1.", ".5", "1e5"]
_TRICKY_TEXT = ["", " ", "\n", "\t", "a\nb", "\x1b[31m", "\u202e", "'", '"', "\\", "%s", "{}", "--help", "-"]
_URLS = [
    "redis://[::1",
    "redis://:s3cret@[::1",
    "redis://h:99999",
    "redis://h:port",
    "redis://h/abc",
    "redis://h/0?db=x",
    "redis://h/0?password=s3cret",
    "http://[::1",
    "http://h:0",
    "notaurl",
    "ftp://h/",
    "unix://",
    "redis://h/0 x",
    "http://h/?a=1",
    "redis://\u0661",
]


def _text() -> st.SearchStrategy[str]:
    """Any text a shell could pass (no NUL or lone surrogate: argv and the environment carry neither)."""
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


def _hostile() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_TRICKY_NUMBERS + _TRICKY_TEXT + _URLS), _text())


_PATHS = ["out", "file", "dir", "fifo", "/proc/version/x", "/dev/null", "/dev/zero", "missing/x.toml", ""]


def _valid(option: click.Option) -> st.SearchStrategy[str]:
    kind = option.type
    if isinstance(kind, click.Choice):
        return st.sampled_from([str(c) for c in kind.choices])
    if isinstance(kind, StrictNumber):
        low, high = max(kind.low, -1e6), min(kind.high, 1e6)
        return (st.integers(int(low), int(high)) if kind.whole else st.floats(low, high)).map(str)
    if isinstance(kind, click.Path):
        return st.sampled_from(_PATHS)
    if option.name == "mode":
        return st.sampled_from([*MODES, "all", "async,thread", "async,async"])
    if option.name in ("modes",):
        return st.sampled_from([*MODES, "all", "async,process", "async,async", ","])
    if option.name in ("mix", "mixes"):
        return st.sampled_from([f"{k}=1" for k in KINDS] + ["sleep=1,cpu=1", "a:sleep=1", "sleep=5e-324"])
    if option.name == "rules":
        return st.sampled_from(["throughput:-5%", "p99:+10%", "nope:+1%", "throughput:-1_0%", "p50:+\u0665%"])
    return _text()


def _value(option: click.Option) -> st.SearchStrategy[str]:
    if isinstance(option.type, click.Path):  # never a path outside the fuzz directory
        return st.sampled_from(_PATHS)
    return st.one_of(_valid(option), _hostile())


_COMMANDS: dict[str, list[click.Option]] = {}
for _path, _opt in options(cli):
    if _path and _opt.name not in ("help", "version"):
        _COMMANDS.setdefault(" ".join(_path), []).append(_opt)
_ARGS = {"report": 1, "compare": 2}


@st.composite
def invocations(draw: st.DrawFn, command: str, via_env: bool) -> tuple[list[str], dict[str, str]]:
    """(argv, environment): some of the command's options, on the command line or in RUNNER_*."""
    chosen = draw(st.lists(st.sampled_from(_COMMANDS[command]), min_size=1, max_size=5, unique_by=lambda o: o.name))
    argv, env = command.split(), {}
    for option in chosen:
        flag = max(option.opts, key=len)
        if option.is_flag:
            if via_env:
                env[str(option.envvar)] = draw(st.sampled_from(["1", "0", "true", "no", "maybe", ""]))
            else:
                argv.append(flag)
            continue
        value = draw(_value(option))
        if via_env:
            env[str(option.envvar)] = value
        else:
            argv.append(f"{flag}={value}")
    if command == "cluster sample" and not any(o.name == "project" for o in chosen):
        argv += ["--project", "p"]
    argv += ["file"] * _ARGS.get(command, 0)
    if draw(st.booleans()):  # the service URLs are input too
        env[draw(st.sampled_from(["REDIS_URL", "TARGET_URL"]))] = draw(st.sampled_from(_URLS))
    return argv, env


def _invoke(argv: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, argv, env=env)


_CASES = {"submit": 1000, "bench": 700, "report": 150, "compare": 150, "cluster sample": 150, "target": 150}


@pytest.mark.parametrize("command", sorted(_CASES))
@pytest.mark.parametrize("via_env", [False, True], ids=["flags", "environment"])
def test_flags_and_environment(command: str, via_env: bool) -> None:
    @_settings(_CASES[command] // 2 if via_env else _CASES[command])
    @given(invocations(command, via_env))
    def run(case: tuple[list[str], dict[str, str]]) -> None:
        argv, env = case
        check(_invoke(argv, env))

    run()


# -- TOML files: spec and sweep ---------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + "}"


_SCALAR = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    _text(),
    st.sampled_from(_TRICKY_NUMBERS),
    st.sampled_from([5e-324, 1e-310, 1e308, -0.0]),
)
_VALUE = st.recursive(
    _SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text(), inner, max_size=3), max_leaves=6
)
_MIX_TABLE = st.dictionaries(st.sampled_from([*KINDS, "nope", ""]), _VALUE, max_size=4)
_SWEEP_KEYS = ["modes", "mixes", "repeats", "run_s", "min_jobs", "max_jobs", "seed", *BOUNDS, "celery_pool"]


@st.composite
def toml_documents(draw: st.DrawFn, keys: list[str]) -> str:
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from([*keys, "unknown_key"]), max_size=5, unique=True)):
        if key == "mix":
            doc[key] = draw(st.one_of(_MIX_TABLE, _VALUE, st.sampled_from(["sleep=1", "sleep=5e-324", "x=1"])))
        elif key == "mixes":
            entry = st.fixed_dictionaries({"name": st.one_of(_text(), _VALUE), "mix": st.one_of(_MIX_TABLE, _VALUE)})
            doc[key] = draw(st.one_of(st.lists(entry, max_size=3), _VALUE))
        elif key in ("mode", "modes"):
            names = st.sampled_from([*MODES, "all", "nope", ""])
            doc[key] = draw(st.one_of(names, st.lists(names, max_size=3), _VALUE))
        else:
            doc[key] = draw(_VALUE)
    text = "\n".join(f"{_toml(k)} = {_toml(v)}" for k, v in doc.items()) + "\n"
    return draw(st.one_of(st.just(text), st.just(text), _text(), st.just(text[: len(text) // 2])))


@_settings(600)
@given(toml_documents(list(SPEC_KEYS)), st.booleans())
def test_spec_files(text: str, batch_flag: bool) -> None:
    path = _TMP / "spec.toml"
    path.write_text(text, encoding="utf-8")
    extra = ["--batch", "1_0"] if batch_flag else []
    check(_invoke(["submit", "--spec", str(path), *extra]))


@_settings(600)
@given(toml_documents(_SWEEP_KEYS))
def test_sweep_files(text: str) -> None:
    path = _TMP / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    check(_invoke(["bench", "--sweep", str(path)]))


# -- results files ------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text(), inner, max_size=3),
    max_leaves=5,
)


def _structurally_wrong() -> st.SearchStrategy[dict[str, Any]]:
    """The right kind and version, and any shape below: cells, machine, presets of any type."""
    cell = st.dictionaries(st.sampled_from(["mode", "mix_name", "mix", "summary", "repeats", "x"]), _JSON, max_size=5)
    return st.fixed_dictionaries(
        {"kind": st.just("runner-bench"), "schema_version": st.just(1)},
        optional={
            "cells": st.one_of(st.lists(cell, max_size=3), _JSON),
            "machine": _JSON,
            "presets": _JSON,
            "sweep": _JSON,
            "verdicts": _JSON,
            "started_at": _JSON,
        },
    )


@st.composite
def results_files(draw: st.DrawFn) -> bytes:
    """Not JSON, JSON of any shape, a document that is not a runner-bench result, or one whose
    kind and version are right and whose body is of any shape."""
    return draw(
        st.one_of(
            st.binary(max_size=60),
            _text().map(str.encode),
            _JSON.map(lambda v: json.dumps(v).encode()),
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["runner-bench", "other", 1]), "schema_version": st.one_of(_JSON, st.just(2))}
            )
            .filter(lambda d: not (d["kind"] == "runner-bench" and d["schema_version"] == 1))
            .map(lambda v: json.dumps(v).encode()),
            st.sampled_from([b"NaN", b"[" * 100_000, b'{"kind": "runner-bench", "schema_version": 1.0000001}']),
            _structurally_wrong().map(lambda v: json.dumps(v).encode()),
        )
    )


@_settings(350)
@given(results_files(), st.sampled_from(["report", "compare"]))
def test_results_files(data: bytes, command: str) -> None:
    path = _TMP / "results.json"
    path.write_bytes(data)
    argv = (
        ["report", str(path), "--out", str(_TMP / "report")]
        if command == "report"
        else ["compare", str(path), str(path)]
    )
    check(_invoke(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "--jobs", "5", "--mode", "async,thread"],
        ["bench", "--modes", "async", "--repeats", "1"],
        ["bench", "--preset", "spawn"],
        ["cluster", "sample", "--project", "p"],
        ["target", "--port", "0"],
    ],
)
def test_valid_input_reaches_the_start_of_work(argv: list[str]) -> None:
    """The guard above is where valid input ends up: so the fuzz cases that pass validation are
    stopped there, and those that fail are failed by runner itself."""
    assert isinstance(_invoke(argv).exception, _Reached)


def test_the_cases_add_up_to_5000() -> None:
    total = sum(n + n // 2 for n in _CASES.values()) + 600 + 600 + 350
    assert total >= 5000, total


# -- a few real subprocess runs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["submit", "--jobs", "1_0"], {}, 2),
        (["submit", "--mode", "async,async"], {}, 2),
        (["submit", "--mix", "sleep=5e-324"], {}, 2),
        (["submit", "--batch", "\u0661"], {}, 2),
        (["bench", "--seed", "1_0"], {}, 2),
        (["bench"], {"RUNNER_BENCH_RUN_S": "nan"}, 2),
        (["compare", "file", "file", "--fail-if", "p99:+\u0665%"], {}, 2),
        (["submit", "--jobs", "3", "--io-ms", "0", "--cpu-ms", "0", "--batch", "1", "--json"], {}, 0),
    ],
)
def test_through_a_real_subprocess(args: list[str], env: dict[str, str], code: int, tmp_path: Path) -> None:
    (tmp_path / "file").write_text('{"kind": "runner-bench", "schema_version": 1, "cells": []}')
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    full.update(env, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *args], capture_output=True, text=True, timeout=120, env=full, cwd=tmp_path
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    if code:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    else:
        assert json.loads(proc.stdout)["jobs"]["done"] == 3
