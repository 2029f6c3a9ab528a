from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from runner.engine.machine import usable_cpus
from runner.engine.spec import WorkloadSpec, load_spec_file, parse_mix
from workers.errors import InputError

pytestmark = pytest.mark.fast


def test_mix_parses_weights_and_bare_kinds() -> None:
    assert parse_mix("sleep=0.5, cpu=0.5") == {"sleep": 0.5, "cpu": 0.5}
    assert parse_mix("http") == {"http": 1.0}


@pytest.mark.parametrize("text", ["cpu=abc", "nope=1", "cpu=1,cpu=2", "cpu=-1", "cpu=inf", "cpu=0", ""])
def test_bad_mixes(text: str) -> None:
    with pytest.raises(InputError, match="--mix"):
        parse_mix(text)


def test_kinds_follow_the_mix_exactly_and_interleave() -> None:
    spec = WorkloadSpec.build({"jobs": 1000, "mix": "sleep=0.25,cpu=0.5,http=0.25"}, ("async",))
    kinds = list(spec.kinds())
    assert Counter(kinds) == {"sleep": 250, "cpu": 500, "http": 250}
    assert Counter(kinds[:8]) == {"sleep": 2, "cpu": 4, "http": 2}  # spread, not in blocks


def test_kinds_are_lazy() -> None:
    spec = WorkloadSpec.build({"jobs": 100_000_000, "mix": "sleep=1,cpu=3"}, ("async",))
    tracemalloc.start()
    try:
        kinds = spec.kinds()
        first = list(itertools.islice(kinds, 8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first == ["cpu", "sleep", "cpu", "cpu", "cpu", "sleep", "cpu", "cpu"]
    assert peak < 1_000_000  # a list of 100 million kinds would need 800 MB


def test_defaults_and_bounds() -> None:
    spec = WorkloadSpec.build({}, ("async",))
    assert spec.jobs == 1000 and spec.timeout == 60 and spec.concurrency == 100
    assert spec.batch is None  # each executor's own default (Celery 1, the pools 0)
    assert spec.mix == {"sleep": 0.5, "cpu": 0.5} and spec.io_ms == 50 and spec.cpu_ms == 10
    assert spec.workers == usable_cpus() and spec.options["celery_workers"] == spec.workers
    assert spec.options["celery_pool"] == "prefork" and spec.modes == ("async",)
    with pytest.raises(InputError, match="--concurrency"):
        WorkloadSpec.build({"concurrency": 0}, ("async",))
    with pytest.raises(InputError, match="--jobs"):
        WorkloadSpec.build({"jobs": True}, ("async",))


def test_spec_file_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("jobs = 3\nwhatever = 1\n")
    with pytest.raises(InputError, match="'whatever'"):
        load_spec_file(path)
