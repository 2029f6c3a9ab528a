"""Outputs that are whole or absent, and measurements that survive a full disk: a read-only or full
``--out`` (real tmpfs mounts), a symbolic link planted for the ledger or result.json, two runs on one
``--out``, and results files that are not results. Each ends with one line on stderr and the exit
code of its kind; none with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli.main import cli
from runner.engine.results import RunResult
from tests.faults.helpers import ROOT

OLD_SWEEP = ROOT / "tests" / "data" / "v1-sweep-results.json"
_QUICK = ["--mix", "sleep=1", "--io-ms", "1", "--concurrency", "50"]


def _runner(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
    )


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str, progress: bool = False) -> str:
    """The error is one line; with ``progress``, bench's step lines may come before it."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    if progress:
        lines = [line for line in lines if not line.startswith("[")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts a real tmpfs (root only) and unmounts it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_read_only_out_fails_before_any_job_runs(mount_tmpfs: Callable[[str], Path], tmp_path: Path) -> None:
    read_only = mount_tmpfs("ro,size=64k")
    proc = _runner("submit", "--jobs", "10", *_QUICK, "--out", str(read_only / "run"))
    _one_line(proc, 1, "--out", "Read-only file system")
    began = time.monotonic()
    proc = _runner("bench", "--modes", "async", "--mix", "io:sleep=1", "--repeats", "1", "--out", str(read_only))
    _one_line(proc, 1, "--out", "Read-only file system")
    assert time.monotonic() - began < 30  # refused before the sweep, not after it


def test_full_disk_keeps_the_measured_result(mount_tmpfs: Callable[[str], Path], tmp_path: Path) -> None:
    full = mount_tmpfs("size=8k")  # two pages: the lock file's and one more; the ledger fills it
    saved_in = tmp_path / "tmp"
    saved_in.mkdir()
    proc = _runner("submit", "--jobs", "2000", *_QUICK, "--json", "--out", str(full), env={"TMPDIR": str(saved_in)})
    line = _one_line(proc, 1, "No space left on device", "ledger is incomplete", "saved to")
    (saved,) = saved_in.glob("saved-result-*.json")
    assert str(saved) in line
    result = RunResult.from_json(json.loads(saved.read_text()))
    assert result.jobs.done == 2000 and result.jobs.adds_up()  # the whole measurement, kept
    assert RunResult.from_json(json.loads(proc.stdout)) == result  # and printed, as --json asks
    assert not [p.name for p in full.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers


def test_full_disk_in_bench_keeps_results_json(mount_tmpfs: Callable[[str], Path], tmp_path: Path) -> None:
    full = mount_tmpfs("size=8k")
    saved_in = tmp_path / "tmp"
    saved_in.mkdir()
    args = ["--modes", "async", "--mix", "io:sleep=1", "--repeats", "1", "--io-ms", "1", "--run-s", "0.05"]
    proc = _runner("bench", *args, "--out", str(full), env={"TMPDIR": str(saved_in)}, timeout=180)
    line = _one_line(proc, 1, "results.json", "No space left on device", "saved to", progress=True)
    (saved,) = saved_in.glob("saved-results-*.json")
    assert str(saved) in line
    result = CliRunner().invoke(cli, ["report", str(saved), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0 and (tmp_path / "report" / "report.md").is_file()


def test_symlinked_ledger_is_refused(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere.txt"
    out.mkdir()
    (out / "ledger.jsonl").symlink_to(elsewhere)
    proc = _runner("submit", "--jobs", "10", *_QUICK, "--out", str(out))
    _one_line(proc, 1, "ledger.jsonl", "symbolic link")
    assert not elsewhere.exists()  # nothing was written through the link


def test_symlinked_result_json_is_replaced_not_followed(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere.txt"
    out.mkdir()
    elsewhere.write_text("precious\n")
    (out / "result.json").symlink_to(elsewhere)
    (out / "notes.txt").write_text("mine\n")  # a file of the user's own in a non-empty --out
    proc = _runner("submit", "--jobs", "10", *_QUICK, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert elsewhere.read_text() == "precious\n"
    assert not (out / "result.json").is_symlink() and RunResult.from_json(json.loads((out / "result.json").read_text()))
    assert (out / "notes.txt").read_text() == "mine\n"  # runner replaces only its own files


def test_two_runs_on_one_out_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slow = ["--jobs", "3", "--mix", "sleep=1", "--io-ms", "1500", "--concurrency", "1"]
    first = subprocess.Popen(
        [sys.executable, "-m", "runner", "submit", *slow, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        lock = out / ".runner.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.05)
        assert lock.read_text().strip() == str(first.pid)
        second = _runner("submit", "--jobs", "10", *_QUICK, "--out", str(out))
        _one_line(second, 1, "in use by another runner", f"pid {first.pid}")
        bench = _runner("bench", "--modes", "async", "--mix", "io:sleep=1", "--repeats", "1", "--out", str(out))
        _one_line(bench, 1, "in use by another runner")
    finally:
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert RunResult.from_json(json.loads((out / "result.json").read_text())).jobs.done == 3
    assert _runner("submit", "--jobs", "10", *_QUICK, "--out", str(out)).returncode == 0  # free again


def _broken(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1, 2]", "not a results file"),
        ('"results"', "not a results file"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"kind": "runner-bench", "schema_version": 2}', "schema_version 2"),
        ('{"kind": "runner-bench", "schema_version": 1}', "runner_version: missing"),
        ("{not json", "invalid JSON"),
    ],
)
def test_report_and_compare_on_invalid_results_exit_2(tmp_path: Path, text: str, needle: str) -> None:
    bad = _broken(tmp_path, "bad.json", text)
    for args in (["report", str(bad)], ["compare", str(OLD_SWEEP), str(bad)], ["compare", str(bad), str(OLD_SWEEP)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, result.stderr)


def test_report_refuses_a_fifo_instead_of_waiting_on_it(tmp_path: Path) -> None:
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    proc = _runner("report", str(fifo), timeout=30)
    _one_line(proc, 2, "not a regular file")


def test_wrong_types_in_cells_through_a_real_subprocess(tmp_path: Path) -> None:
    data = json.loads(OLD_SWEEP.read_text())
    data["cells"][2]["repeats"][0]["latency_ms"]["p99"] = [1, 2]
    bad = _broken(tmp_path, "bad.json", json.dumps(data))
    for command in ("report", "compare"):
        args = [str(bad)] if command == "report" else [str(OLD_SWEEP), str(bad)]
        proc = _runner(command, *args)
        assert proc.stdout == ""
        _one_line(proc, 2, "cells[2].repeats[0].latency_ms.p99: expected a number")
