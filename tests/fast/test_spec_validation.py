"""Spec validation, message by message: each bound at its edge, each wrong type, the mix grammar."""

from __future__ import annotations

import itertools
import random
import tomllib
from pathlib import Path
from typing import Any

import pytest

from runner.engine.inputs import plain
from runner.engine.spec import SPEC_KEYS, WorkloadSpec, load_spec_file, parse_mix, read_toml
from workers.errors import InputError


def _value(spec: WorkloadSpec, field: str) -> Any:
    """A spec field, or an executor's own option (celery_workers, celery_pool)."""
    return spec.options[field] if field in spec.options else getattr(spec, field)


def _error(values: dict[str, Any]) -> str:
    with pytest.raises(InputError) as caught:
        WorkloadSpec.build(values, ("async",))
    return str(caught.value)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("jobs", 1, 100_000_000),
        ("concurrency", 1, 1_000_000),
        ("workers", 0, 1024),
        ("celery_workers", 0, 1024),
        ("batch", 0, 100_000),
    ],
)
def test_whole_numbers_hold_their_bounds(field: str, low: int, high: int) -> None:
    flag = "--" + field.replace("_", "-")
    for ok in (low, high, str(high)):
        assert _value(WorkloadSpec.build({field: ok}, ("async",)), field) == int(ok)
    assert _error({field: low - 1}) == f"{flag}: {low - 1!r} is out of range ({plain(low)} to {plain(high)})"
    assert _error({field: high + 1}) == f"{flag}: {high + 1!r} is out of range ({plain(low)} to {plain(high)})"
    assert _error({field: 2.5}) == f"{flag}: expected a whole number in plain digits, got 2.5"
    assert _error({field: True}) == f"{flag}: expected a whole number in plain digits, got True"
    assert _error({field: "ten"}) == f"{flag}: expected a whole number in plain digits, got 'ten'"
    assert _error({field: [1]}) == f"{flag}: expected a whole number in plain digits, got [1]"
    assert _value(WorkloadSpec.build({field: 3.0}, ("async",)), field) == 3  # a whole float is fine


@pytest.mark.parametrize(
    ("field", "low", "high"), [("io_ms", 0, 600_000), ("cpu_ms", 0, 600_000), ("timeout", 0.001, 86_400)]
)
def test_numbers_hold_their_bounds(field: str, low: float, high: float) -> None:
    flag = "--" + field.replace("_", "-")
    for ok in (low, high, str(high)):
        assert _value(WorkloadSpec.build({field: ok}, ("async",)), field) == float(ok)
    below, above = low - 0.0005 if low else -1, high + 1
    assert _error({field: below}) == f"{flag}: {below!r} is out of range ({plain(low)} to {plain(high)})"
    assert _error({field: above}) == f"{flag}: {above!r} is out of range ({plain(low)} to {plain(high)})"
    assert _error({field: "nan"}) == f"{flag}: expected a number in plain digits, got 'nan'"
    assert _error({field: float("inf")}) == f"{flag}: expected a finite number, got inf"
    assert _error({field: "x"}) == f"{flag}: expected a number in plain digits, got 'x'"
    assert _error({field: False}) == f"{flag}: expected a number in plain digits, got False"


def test_values_not_given_take_the_defaults_and_none_means_not_given() -> None:
    spec = WorkloadSpec.build({"jobs": None, "workers": 3, "celery_workers": None}, ("thread", "async"))
    assert spec.jobs == 1000 and spec.workers == 3 and spec.options["celery_workers"] == 3
    assert spec.modes == ("thread", "async")
    assert spec.to_dict()["modes"] == ["thread", "async"] and spec.to_dict()["mix"] == {"sleep": 0.5, "cpu": 0.5}
    assert WorkloadSpec.build({"workers": 0}, ("async",)).options["celery_workers"] == 0


def test_celery_pool_is_a_choice() -> None:
    assert WorkloadSpec.build({"celery_pool": "gevent"}, ("async",)).options["celery_pool"] == "gevent"
    assert _error({"celery_pool": "solo"}) == "--celery-pool: choose one of prefork, threads, gevent, got 'solo'"


def test_mix_grammar() -> None:
    assert parse_mix(" sleep = 2 , ,cpu") == {"sleep": 2.0, "cpu": 1.0}
    assert parse_mix({"hash": 3}) == {"hash": 3.0}
    assert parse_mix("sleep=0,cpu=1") == {"sleep": 0.0, "cpu": 1.0}
    spec = WorkloadSpec.build({"mix": {"sleep": 1, "cpu": 0}, "jobs": 4}, ("async",))
    assert list(spec.kinds()) == ["sleep"] * 4 and spec.kind_counts() == {"sleep": 4, "cpu": 0}


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ("cpu=1,cpu=2", "--mix: kind 'cpu' given twice"),
        ("warp=1", "--mix: unknown job kind 'warp'; choose from: "),
        ("cpu=x", "--mix: weight for 'cpu' is not a number in plain digits: 'x'"),
        ({"cpu": True}, "--mix: weight for 'cpu' is not a number in plain digits: True"),
        ({"cpu": None}, "--mix: weight for 'cpu' is not a number in plain digits: None"),
        ("cpu=-1", "--mix: weight for 'cpu' must be a finite number >= 0, got '-1'"),
        ("cpu=inf", "--mix: weight for 'cpu' is not a number in plain digits: 'inf'"),
        ("cpu=0", "--mix: at least one weight must be above 0"),
        ("cpu=1e308,sleep=1e308", "--mix: weights are too large to add up; use proportions such as sleep=1,cpu=2"),
        ("", "--mix: expected kind=weight pairs such as sleep=0.5,cpu=0.5, got {}"),
        (["cpu"], "--mix: expected kind=weight pairs such as sleep=0.5,cpu=0.5, got ['cpu']"),
    ],
)
def test_bad_mixes_say_what_is_wrong(mix: Any, message: str) -> None:
    assert _error({"mix": mix}).startswith(message)


def test_kinds_interleave_by_weight() -> None:
    spec = WorkloadSpec.build({"jobs": 6, "mix": "sleep=1,cpu=2"}, ("async",))
    assert list(spec.kinds()) == ["cpu", "sleep", "cpu", "cpu", "sleep", "cpu"]
    assert spec.kind_counts() == {"sleep": 2, "cpu": 4}


def test_toml_files(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('mode = "thread"\njobs = 3\n')
    assert load_spec_file(path) == {"mode": "thread", "jobs": 3}
    path.write_text("mode = 3\n")
    with pytest.raises(InputError) as caught:
        load_spec_file(path)
    assert str(caught.value) == f"--spec: 'mode' in {path} must be a string such as \"async\""
    path.write_text("jobs = [\n")
    with pytest.raises(InputError) as caught:
        load_spec_file(path)
    try:
        tomllib.loads("jobs = [\n")
    except tomllib.TOMLDecodeError as exc:
        first_line = str(exc).splitlines()[0]
    assert str(caught.value) == f"--spec: {path} is not valid TOML: {first_line}"
    path.write_text("zeta = 1\nalpha = 2\n")
    with pytest.raises(InputError) as caught:
        read_toml(path, "--x", ["b", "a"])
    assert str(caught.value) == f"--x: unknown key 'alpha' in {path}; known keys: a, b"
    with pytest.raises(InputError) as caught:
        load_spec_file(tmp_path / "none.toml")
    assert str(caught.value) == f"--spec: cannot read {tmp_path / 'none.toml'}: No such file or directory"
    assert SPEC_KEYS[0] == "mode" and "batch" in SPEC_KEYS


def test_arrivals_of_an_open_loop() -> None:
    spec = WorkloadSpec.build({"jobs": 4, "rate": 10}, ("async",))
    assert list(spec.arrival_offsets()) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    poisson = WorkloadSpec.build({"jobs": 200, "rate": 50, "arrivals": "poisson"}, ("async",))
    offsets = list(poisson.arrival_offsets())
    assert offsets[0] == 0.0 and offsets == sorted(offsets) and len(set(offsets)) == 200
    assert offsets == list(poisson.arrival_offsets())  # seed 0: every mode gets the same arrivals
    assert 2.0 < offsets[-1] < 6.0  # 199 gaps of mean 20 ms
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert len({round(g, 9) for g in gaps}) == 199  # exponential gaps, not a fixed period
    assert gaps[0] == random.Random(0).expovariate(50)  # seed 0, as documented


def test_range_ends_read_as_people_write_them() -> None:
    assert _error({"jobs": -3}) == "--jobs: -3 is out of range (1 to 100,000,000)"
    assert _error({"timeout": 0}) == "--timeout: 0 is out of range (0.001 to 86,400)"
    assert _error({"workers": 2000}) == "--workers: 2000 is out of range (0 to 1,024)"
    assert [plain(x) for x in (0, 1, 999, 1000.0, 0.5, 1e7, -2000)] == [
        "0",
        "1",
        "999",
        "1,000",
        "0.5",
        "10,000,000",
        "-2,000",
    ]
