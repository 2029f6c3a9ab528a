"""``runner bench`` through the command line (in-process) on the stub executor: --quick, --seed,
--sweep and flags, and what the results file and report then hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli import invoke
from tests.stub_executor import StubExecutor

_SMALL = ("--modes", "stub", "--mix", "io:sleep=1", "--mix", "cpu:cpu=1", "--run-s", "0.02", "--io-ms", "1")


def _bench(out: Path, *args: str) -> dict[str, Any]:
    result = invoke("bench", *_SMALL, *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    return json.loads((out / "results.json").read_text())  # type: ignore[no-any-return]


def test_quick_sizes_the_sweep_and_flags_win(stub: type[StubExecutor], tmp_path: Path) -> None:
    doc = _bench(tmp_path, "--quick", "--concurrency", "7")
    sweep = doc["sweep"]
    assert sweep["quick"] is True and sweep["repeats"] == 3 and sweep["cpu_ms"] == 5.0
    assert sweep["min_jobs"] == 20 and sweep["max_jobs"] == 5000
    assert sweep["concurrency"] == 7 and sweep["io_ms"] == 1.0 and sweep["run_s"] == 0.02  # flags win
    assert [(c["mode"], c["mix_name"], len(c["repeats"])) for c in doc["cells"]] == [
        ("stub", "io", 3),
        ("stub", "cpu", 3),
    ]
    assert all(c["summary"]["jobs"]["lost"] == 0 for c in doc["cells"])
    for name in ("report.md", "report.html", "summary.csv"):
        assert (tmp_path / name).is_file()
    plain = _bench(tmp_path / "plain")
    assert plain["sweep"]["quick"] is False and plain["sweep"]["cpu_ms"] == 10.0


def test_seed_fixes_the_run_order(stub: type[StubExecutor], tmp_path: Path) -> None:
    orders = []
    for run, seed in enumerate(("7", "7", "8")):
        stub.made.clear()
        doc = _bench(tmp_path / str(run), "--repeats", "4", "--seed", seed)
        assert doc["sweep"]["seed"] == int(seed)
        (made,) = stub.made
        assert made.first_kinds[0] == "sleep" and len(made.first_kinds) == 9  # warm-up, then 2 mixes x 4
        orders.append(made.first_kinds[1:])
    assert sorted(orders[0]) == ["cpu"] * 4 + ["sleep"] * 4
    assert orders[0] == orders[1]  # the same seed, the same order
    assert orders[0] != orders[2]  # another seed, another order (for these two seeds)
    assert orders[0] != ["sleep"] * 4 + ["cpu"] * 4  # shuffled, not mix by mix


def test_sweep_file_then_flags(stub: type[StubExecutor], tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(
        'modes = ["stub"]\nrepeats = 2\nio_ms = 3\nrun_s = 0.02\nseed = 5\n'
        '[[mixes]]\nname = "only-io"\nmix = { sleep = 1 }\n'
    )
    result = invoke("bench", "--sweep", str(path), "--seed", "6", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["sweep"]["modes"] == ["stub"] and doc["sweep"]["repeats"] == 2 and doc["sweep"]["io_ms"] == 3
    assert doc["sweep"]["seed"] == 6  # the flag wins over the file
    assert [c["mix_name"] for c in doc["cells"]] == ["only-io"] and len(doc["cells"][0]["repeats"]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("repeats = 2\nspeed = 1\n")
    result = invoke("bench", "--sweep", str(bad))
    assert result.exit_code == 2 and "--sweep: unknown key 'speed'" in result.stderr


def test_modes_all_is_the_six_executors(stub: type[StubExecutor], tmp_path: Path) -> None:
    # Checked before any run: celery without local nodes needs REDIS_URL, which shows celery is in.
    result = invoke("bench", "--modes", "all", "--celery-workers", "0", "--out", str(tmp_path))
    assert result.exit_code == 2 and "--celery-workers 0" in result.stderr
    assert not (tmp_path / "results.json").exists()
