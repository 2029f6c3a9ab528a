"""The spec's user jobs (``[jobs]``, ``--setup``, ``--path``) as workers receive them and as the
results record them; ``--mode`` with nothing named; the order of kinds in a mix of three."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.engine.spec import WorkloadSpec, load_spec_file, parse_modes, read_toml
from workers.errors import InputError
from workers.registry import MODES
from workers.user_jobs import JobTable, Ref

USER_KEYS = {"user_jobs", "paths", "inputs", "setup"}


def _user(tmp_path: Path, **more: object) -> WorkloadSpec:
    values = {"user_jobs": {"fetch": "mymod:get,aget"}, "paths": [str(tmp_path)], **more}
    return WorkloadSpec.build(values, ("async",))


def test_the_job_table_workers_load(tmp_path: Path) -> None:
    assert WorkloadSpec.build({}, ("async",)).job_table() is None
    fetch = {"fetch": Ref("mymod", ("get", "aget"))}
    assert _user(tmp_path).job_table() == JobTable(fetch, (str(tmp_path),), None)
    with_setup = _user(tmp_path, setup="mymod:init").job_table()
    assert with_setup == JobTable(fetch, (str(tmp_path),), Ref("mymod", ("init",)))


def test_user_kinds_take_equal_weights_unless_a_mix_is_given(tmp_path: Path) -> None:
    assert _user(tmp_path).mix == {"fetch": 1.0}
    assert _user(tmp_path, mix="fetch=1,sleep=3").mix == {"fetch": 1.0, "sleep": 3.0}


def test_to_dict_records_user_settings_only_when_there_are_user_jobs(tmp_path: Path) -> None:
    recorded = _user(tmp_path, setup="mymod:init").to_dict()
    assert {k: recorded[k] for k in USER_KEYS} == {
        "user_jobs": {"fetch": "mymod:get,aget"},
        "paths": [str(tmp_path)],
        "inputs": "",
        "setup": "mymod:init",
    }
    assert not USER_KEYS & WorkloadSpec.build({}, ("async",)).to_dict().keys()


def test_a_jobs_table_in_a_spec_file_is_the_user_kinds(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[jobs]\nfetch = "mymod:get"\n')
    assert load_spec_file(path) == {"user_jobs": {"fetch": "mymod:get"}}


def test_a_spec_file_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError) as caught:
        read_toml(path, "--spec", ["x"])
    assert str(caught.value) == f"--spec: {path} nests arrays or tables too deeply"


@pytest.mark.parametrize("text", ["", " , "])
def test_no_mode_named_lists_the_choices(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_modes(text)
    assert str(caught.value) == f"--mode: choose one of: {', '.join(MODES)}, or 'all'"
    assert "async, thread" in str(caught.value)


def test_kinds_of_three_weights_in_the_order_exact_round_robin_gives() -> None:
    spec = WorkloadSpec.build({"jobs": 6, "mix": "sleep=3,cpu=1,hash=2"}, ("async",))
    # At the third job sleep and cpu tie on credit; the first in the mix wins.
    assert list(spec.kinds()) == ["sleep", "hash", "sleep", "cpu", "hash", "sleep"]
