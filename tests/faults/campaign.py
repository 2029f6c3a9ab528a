"""The hostile-input campaign of issue 10, as a script: every command run as a real subprocess with
bad flags, environment values, files and services, each classified as ended cleanly or not.

    .venv/bin/python -m tests.faults.campaign [-k SUBSTRING] [-v]

A case ends cleanly when it exits with the expected code (2 bad input, 1 missing service or failed
run), prints exactly one line on stderr and no traceback, and never shows the secret ``s3cret``.
It is not a pytest module: it takes minutes, and its figures go into the closing note of the issue.
The per-point tests in tests/faults/ check the same behaviours faster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.faults.campaign_inputs import files as _files
from tests.faults.campaign_inputs import wrong_server as _wrong_server

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret"
_SAFE = ["--jobs=2", "--io-ms=0", "--cpu-ms=0"]


@dataclass
class Case:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    expect: int = 2  # exit code; 0 = must succeed (then ``check`` judges stdout)
    check: Callable[[str], bool] | None = None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_json(stdout: str) -> bool:
    try:
        return isinstance(json.loads(stdout.splitlines()[0]), dict)
    except (ValueError, IndexError):
        return False


def cases(f: dict[str, str], wrong_port: int) -> list[Case]:
    closed = _closed_port()
    sub = ["submit", *_SAFE]
    c: list[Case] = []
    add = c.append
    # strict numbers
    for flag, value in [
        ("--jobs", "1_0"),
        ("--jobs", "\u0661\u0660"),
        ("--jobs", "99999999999999999999999"),
        ("--io-ms", "1_0.5"),
        ("--io-ms", "\u0661"),
        ("--io-ms", "1e309"),
        ("--cpu-ms", "nan"),
        ("--concurrency", "0"),
        ("--concurrency", "-1"),
        ("--timeout", "0"),
        ("--timeout", "inf"),
        ("--timeout", "-1"),
        ("--batch", "-1"),
        ("--batch", "1_0"),
        ("--workers", "1025"),
        ("--celery-pool", "bad"),
    ]:
        add(Case(f"submit {flag}={value}", ["submit", *_SAFE, f"{flag}={value}"]))
    for mix in ["sleep=1e-320", "sleep=5e-324,cpu=1", "sleep=", "=1", "sleep=1,,cpu=1x", "sleep=\u0661", "sleep=1_0"]:
        add(Case(f"submit --mix {mix}", [*sub, "--mix", mix]))
    for mode in ["async,async", "async, async", ",", "nope", "all,async"]:
        add(Case(f"submit --mode {mode}", [*sub, "--mode", mode]))
    # spec files
    for key in ["fifo", "huge", "nested", "nested_mix", "binary", "spec_dup_mode", "spec_str_jobs", "spec_denormal"]:
        add(Case(f"submit --spec {key}", ["submit", "--io-ms=0", "--cpu-ms=0", "--spec", f[key]]))
    add(Case("submit --spec spec_mode_list", [*sub, "--spec", f["spec_mode_list"]]))
    add(Case("submit --spec /dev/zero", [*sub, "--spec", "/dev/zero"]))
    add(Case("submit --spec /dev/null", [*sub, "--spec", "/dev/null"]))
    add(Case("submit --spec missing", [*sub, "--spec", "/nonexistent/spec.toml"]))
    add(Case("submit --out a file", [*sub, "--out", f["a_file"]]))
    add(Case("submit --out /dev/null", [*sub, "--out", "/dev/null"]))
    add(Case("submit --out /proc/x", [*sub, "--out", "/proc/version/x"]))
    # REDIS_URL and TARGET_URL
    bad_redis = [  # (url, exit code): 2 for a malformed URL, 1 for one that does not answer
        ("redis://[::1", 2),
        (f"redis://:{SECRET}@[::1", 2),
        (f"redis://127.0.0.1:{closed}/0?password={SECRET}", 1),
        (f"redis://:{SECRET}@127.0.0.1:{closed}/0", 1),
        (f"redis://user:{SECRET}@127.0.0.1:{closed}/0", 1),
        ("redis://localhost:99999", 2),
        ("redis://localhost:notaport", 2),
        ("redis://localhost/abc", 2),
        ("http://127.0.0.1:1", 2),
        (f"unix:///nonexistent/redis.sock?password={SECRET}", 1),
        (f"redis://:{SECRET}@127.0.0.1:{closed}/0?db=x", 2),
    ]
    for url, code in bad_redis:
        add(Case(f"celery REDIS_URL={url}", ["submit", *_SAFE, "--mode", "celery"], {"REDIS_URL": url}, code))
    add(
        Case(
            "redis jobs, REDIS_URL unreachable",
            [*sub, "--mix", "redis=1"],
            {"REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{closed}/0"},
            1,
        )
    )
    add(Case("redis jobs, REDIS_URL [::1", [*sub, "--mix", "redis=1"], {"REDIS_URL": "redis://[::1"}))
    add(
        Case("http jobs, TARGET_URL closed", [*sub, "--mix", "http=1"], {"TARGET_URL": f"http://127.0.0.1:{closed}"}, 1)
    )
    add(
        Case(
            "http jobs, TARGET_URL 404 server",
            [*sub, "--mix", "http=1"],
            {"TARGET_URL": f"http://u:{SECRET}@127.0.0.1:{wrong_port}"},
            1,
        )
    )
    add(Case("http jobs, TARGET_URL [::1", [*sub, "--mix", "http=1"], {"TARGET_URL": "http://[::1"}))
    add(Case("http jobs, TARGET_URL not a URL", [*sub, "--mix", "http=1"], {"TARGET_URL": "notaurl"}))
    add(Case("http jobs, TARGET_URL ftp", [*sub, "--mix", "http=1"], {"TARGET_URL": "ftp://127.0.0.1/"}))
    add(Case("http jobs --io-ms 70000", ["submit", "--jobs=1", "--mix", "http=1", "--io-ms", "70000"]))
    add(Case("bench --io-ms 70000 (http mix)", ["bench", "--io-ms", "70000", "--modes", "async"]))
    # settings read at import time
    for var, value in [
        ("RUNNER_CELERY_PREFETCH", "abc"),
        ("RUNNER_CELERY_PREFETCH", "0"),
        ("RUNNER_CELERY_PREFETCH", "1_0"),
        ("RUNNER_VISIBILITY_TIMEOUT", "abc"),
        ("RUNNER_VISIBILITY_TIMEOUT", "-1"),
        ("RUNNER_VISIBILITY_TIMEOUT", "nan"),
        ("RUNNER_QUEUE", " "),
    ]:
        add(Case(f"celery {var}={value}", [*sub, "--mode", "celery"], {var: value}))
    worker = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "--pool", "solo"]
    add(Case("celery worker RUNNER_CELERY_PREFETCH=abc", worker, {"RUNNER_CELERY_PREFETCH": "abc"}))
    add(Case("celery worker RUNNER_VISIBILITY_TIMEOUT=x", worker, {"RUNNER_VISIBILITY_TIMEOUT": "x"}))
    # OS limits, the gevent worker
    add(Case("thread --concurrency 1000000", ["submit", "--jobs=1", "--mode", "thread", "--concurrency", "1000000"]))
    add(Case("gevent worker broken", [*sub, "--mode", "gevent"], {"PYTHONPATH": f["shadow"]}, 1))
    add(Case("celery --celery-workers 0 without REDIS_URL", [*sub, "--mode", "celery", "--celery-workers", "0"]))
    # environment variables as documented
    add(Case("RUNNER_SUBMIT_SPEC missing", sub, {"RUNNER_SUBMIT_SPEC": "/nonexistent/spec.toml"}))
    add(Case("RUNNER_SUBMIT_OUT /proc", sub, {"RUNNER_SUBMIT_OUT": "/proc/version/x"}))
    add(Case("RUNNER_SUBMIT_JSON=1", sub, {"RUNNER_SUBMIT_JSON": "1"}, 0, _is_json))
    add(Case("RUNNER_SUBMIT_JOBS=1_0", ["submit", "--io-ms=0", "--cpu-ms=0"], {"RUNNER_SUBMIT_JOBS": "1_0"}))
    add(Case("RUNNER_SUBMIT_MIX denormal", sub, {"RUNNER_SUBMIT_MIX": "sleep=5e-324"}))
    add(Case("RUNNER_BENCH_OUT /proc", ["bench", "--repeats=0"], {"RUNNER_BENCH_OUT": "/proc/version/x"}))
    add(Case("RUNNER_BENCH_SWEEP missing", ["bench"], {"RUNNER_BENCH_SWEEP": "/nonexistent/sweep.toml"}))
    add(Case("RUNNER_BENCH_MIX bad", ["bench"], {"RUNNER_BENCH_MIX": "nope=1"}))
    add(Case("RUNNER_BENCH_PRESET bad", ["bench"], {"RUNNER_BENCH_PRESET": "nope"}))
    add(Case("RUNNER_BENCH_REPEATS=1_0", ["bench", "--modes", "nope"], {"RUNNER_BENCH_REPEATS": "1_0"}))
    # bench flags and sweep files
    for args in [
        ["--repeats", "0"],
        ["--repeats", "1_0"],
        ["--run-s", "0"],
        ["--run-s", "nan"],
        ["--seed", "1_0"],
        ["--seed", "abc"],
        ["--modes", "async,async"],
        ["--modes", ""],
        ["--modes", ","],
        ["--modes", "nope"],
        ["--mix", ":sleep=1"],
        ["--mix", "a:sleep=1", "--mix", "a:cpu=1"],
        ["--mix", "a:sleep=5e-324"],
        ["--preset", "nope"],
        ["--concurrency", "10,100"],
        ["--out", f["a_file"]],
    ]:
        add(Case(f"bench {' '.join(args)}", ["bench", *args]))
    for key in [
        "fifo",
        "huge",
        "nested",
        "binary",
        "sweep_seed_list",
        "sweep_seed_str",
        "sweep_seed_float",
        "sweep_repeats_bool",
        "sweep_run_s_str",
        "sweep_mixes_empty",
        "sweep_mixes_str",
        "sweep_mix_name_int",
        "sweep_min_max",
        "sweep_modes_str",
        "sweep_modes_dup",
        "sweep_workers_float",
        "sweep_min_jobs_float",
        "sweep_quick_key",
    ]:
        add(Case(f"bench --sweep {key}", ["bench", "--sweep", f[key]]))
    add(Case("bench --sweep /dev/zero", ["bench", "--sweep", "/dev/zero"]))
    # report and compare
    for key in ["results_garbage", "results_list", "results_nan", "results_cells_str", "results_cells_int"]:
        add(Case(f"report {key}", ["report", f[key], "--out", str(Path(f["a_file"]).parent / "r")]))
        add(Case(f"compare {key}", ["compare", f[key], f[key]]))
    add(Case("report results_deep", ["report", f["results_deep"], "--out", str(Path(f["a_file"]).parent / "r")]))
    add(Case("report missing", ["report", "/nonexistent.json"]))
    add(Case("report /dev/zero", ["report", "/dev/zero"]))
    add(Case("report fifo", ["report", f["fifo"]]))
    for rule in ["throughput", "throughput:abc", "nope:+5%", "throughput:-1_0%", "throughput:-\u0665%", "p99:+1e999%"]:
        add(
            Case(
                f"compare --fail-if {rule}",
                ["compare", f["results_ok_empty"], f["results_ok_empty"], "--fail-if", rule],
            )
        )
    # cluster, target, top level
    add(Case("cluster sample no project", ["cluster", "sample"]))
    for args in [["--timeout", "nan"], ["--timeout", "-1"], ["--timeout", "abc"], ["--timeout", "1_0"]]:
        add(Case(f"cluster sample {' '.join(args)}", ["cluster", "sample", "-p", "x", *args]))
    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # whether or not a dockerd runs here
    add(Case("cluster sample, no docker", ["cluster", "sample", "-p", "x", "--timeout", "1"], no_docker, 1))
    add(
        Case(
            "RUNNER_CLUSTER_SAMPLE_TIMEOUT=abc",
            ["cluster", "sample", "-p", "x"],
            {"RUNNER_CLUSTER_SAMPLE_TIMEOUT": "abc"},
        )
    )
    add(Case("target --port 70000", ["target", "--port", "70000"]))
    add(Case("target --port 1_0", ["target", "--port", "1_0", "--host", "999.1.1.1"]))
    add(Case("target --host 999.1.1.1", ["target", "--host", "999.1.1.1", "--port", "0"], expect=1))
    add(Case("target --max-concurrent 0", ["target", "--max-concurrent", "0"]))
    add(Case("RUNNER_TARGET_PORT=x", ["target"], {"RUNNER_TARGET_PORT": "x"}))
    # open loop and metrics (added by the live-view work)
    for args in [["--rate", "1_0"], ["--rate", "-1"], ["--rate", "nan"], ["--rate", "1e-6"], ["--arrivals", "bad"]]:
        add(Case(f"submit {' '.join(args)}", [*sub, *args]))
    add(Case("submit --metrics-port 70000", [*sub, "--metrics-port", "70000"]))
    bad_host = ["--metrics-port", str(closed), "--metrics-host", "999.1.1.1"]
    add(Case("submit --metrics-host 999.1.1.1", [*sub, *bad_host], expect=1))
    add(Case("submit --metrics-port in use", [*sub, "--metrics-port", str(wrong_port)], expect=1))
    # closed or full standard streams
    run = f"exec {sys.executable} -m runner submit {' '.join(_SAFE)}"
    add(Case("stdout closed", ["bash", "-c", f"{run} --json >&-"], expect=0))
    add(Case("stderr closed", ["bash", "-c", f"{run} 2>&-"], expect=0))
    add(Case("stdout on a full disk", ["bash", "-c", f"{run} --json >/dev/full"], expect=1))
    add(Case("unknown command", ["nope"]))
    add(Case("unknown option", ["submit", "--nope"]))
    return c


def _run(argv: list[str], env: dict[str, str], cwd: str, timeout_s: float) -> subprocess.CompletedProcess[str] | None:
    """Run one case; None when it did not exit in time -- then it gets SIGTERM (runner stops what
    it started) and, 10 s later, whatever of its process tree is left is killed."""
    import psutil

    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        tree = psutil.Process(child.pid).children(recursive=True)
        child.terminate()
        try:
            child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        return None
    return subprocess.CompletedProcess(argv, child.returncode, out, err)


def run_case(case: Case, timeout_s: float) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TARGET_URL") and not k.startswith("RUNNER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [case.env.get("PYTHONPATH"), str(ROOT)]))
    env.update({k: v for k, v in case.env.items() if k != "PYTHONPATH"})
    argv = case.argv if case.argv[0] in (sys.executable, "bash") else [sys.executable, "-m", "runner", *case.argv]
    with tempfile.TemporaryDirectory() as cwd:
        proc = _run(argv, env, cwd, timeout_s)
        if proc is None:
            return "hang", f"no exit within {timeout_s:g} s"
    err = proc.stderr.strip()
    if "Traceback" in err:
        return "traceback", err.splitlines()[-1][:160]
    if SECRET in proc.stderr + proc.stdout:
        return "secret shown", err[:160]
    if case.expect == 0:
        ok = proc.returncode == 0 and (case.check is None or case.check(proc.stdout))
        return ("clean" if ok else "wrong"), f"exit {proc.returncode}: {err[-160:]}"
    if proc.returncode == 0:
        return "accepted silently", err[-160:]
    lines = err.splitlines()
    if proc.returncode != case.expect or len(lines) != 1:
        return "wrong", f"exit {proc.returncode}, {len(lines)} lines: {err[-200:]}"
    return "clean", lines[0][:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-v", action="store_true", help="print every case, not only the unclean ones")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _wrong_server() as wrong_port:
        chosen = [c for c in cases(_files(Path(tmp)), wrong_port) if args.k in c.name]
        began = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(lambda c: run_case(c, args.timeout), chosen))
    tally: Counter[str] = Counter()
    for case, (verdict, detail) in zip(chosen, outcomes, strict=True):
        tally[verdict] += 1
        if verdict != "clean" or args.v:
            print(f"{verdict:<18} {case.name}: {detail}")
    print(
        f"{len(chosen)} cases in {time.monotonic() - began:.0f} s: " + ", ".join(f"{n} {k}" for k, n in tally.items())
    )
    return 0 if tally["clean"] == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
