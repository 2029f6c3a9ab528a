"""The mutation score of ``make mutate``, module by module, from mutmut's results in ``mutants/``.

    python tests/mutation_score.py [--recheck] [--jobs N] [--only PATTERN] [--explained FILE]

mutmut calls a mutant "timeout" when its tests run past 3x (their clean time + 10 s), which on a
busy machine happens to mutants that merely ran slowly. So a timeout (or a "suspicious" mutant,
whose tests' process died of a signal) is never counted on mutmut's word: ``--recheck`` runs each
one again alone, with generous limits (a test: 5x its
clean time, at least 10 s; all of them: 5x, at least 60 s), and records what it did -- a test
failed (killed), a test or the whole run went past its limit (a hang: killed, since a run that
never ends is caught), or they passed (survived). The verdicts are kept in
``mutants/rechecks.json`` with the hash of the mutated function and of its tests' files, so a
changed function or test is checked again (and its old verdict no longer counts). Timeouts not
rechecked count as not killed.

Survivors named in the survivors file (``NAME  why``, one per line; ``#`` comments) -- equivalent
mutants, and those only the full tier kills -- are counted apart as explained; the others are
listed, as are listed names that no longer survive (killed since, or renumbered). The last line is
``mutation score: K/N killed (P%)`` over every mutant generated: one no test reaches counts against it.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mutmut.stats import status_by_exit_code

MUTANTS = Path("mutants")
RECHECKS = MUTANTS / "rechecks.json"
EXPLAINED = Path("tests/data/mutation-survivors.txt")
_SUPPORT = {"tests/conftest.py", "tests/fast/conftest.py", "tests/stub_executor.py"}
_MEMORY_LIMIT = 8 << 30  # address space of a rechecked mutant's tests

_COUNTED = {"killed", "timeout", "survived", "no tests", "skipped"}
# mutmut's word is not taken for these: a timeout may be a slow survivor on a busy machine, and a
# "suspicious" one (its tests' process died of a signal, e.g. one a broken handler let through) is
# run again alone to see what it is.
_RECHECKED = {"timeout", "suspicious"}


def status(code: int | None) -> str:
    """mutmut's own reading of a mutant's exit code, "not run" for none yet; any other (a
    segfault, an interrupted check) is "suspicious"."""
    name = status_by_exit_code[code]
    return "not run" if code is None else name if name in _COUNTED else "suspicious"


def function_of(mutant: str) -> tuple[str, str]:
    """``pkg.mod.xǁClassǁname__mutmut_7`` -> (``pkg.mod.xǁClassǁname``, ``xǁClassǁname``)."""
    mangled = re.sub(r"__mutmut_\d+$", "", mutant)
    return mangled, mangled.rsplit(".", 1)[1]


Results = dict[str, tuple[dict[str, int | None], dict[str, str]]]  # source file -> (codes, function hashes)


def load_results() -> Results:
    """Per source file: mutmut's exit code per mutant and the hash per mutated function."""
    out = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        out[str(meta.relative_to(MUTANTS))[: -len(".meta")]] = (data["exit_code_by_key"], data["hash_by_function_name"])
    return out


def recheck(mutant: str, tests: list[str], per_test_s: float, limit_s: float) -> str:
    """Run one mutant's tests alone: "killed", "hang" or "survived". A test that runs past
    ``per_test_s`` (pytest-timeout) or all of them past ``limit_s`` is a hang."""
    path = os.pathsep.join(filter(None, [str(MUTANTS.resolve()), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MUTANT_UNDER_TEST": mutant, "PYTHONPATH": path}
    command = [sys.executable, "-m", "pytest", "--rootdir=.", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-o", f"timeout={per_test_s:.0f}", *tests]
    # its own process group: a hung test's children go with it
    proc = subprocess.Popen(
        command,
        cwd=MUTANTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _bound(proc.pid, limit_s)  # at once: pytest takes far longer to start than this
    try:
        out, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "hang"
    if proc.returncode == 0:
        return "survived"
    hung = proc.returncode == -signal.SIGXCPU or b"+ Timeout +" in out
    return "hang" if hung else "killed"


def _tests_digest(tests: list[str]) -> str:
    """The contents of the files holding ``tests``, and of what every test leans on (conftest, the
    stub executor): a verdict is stale once they change."""
    return _files_digest(tuple(sorted({t.split("::", 1)[0] for t in tests} | _SUPPORT)))


@functools.cache  # mutants of one function share their files: each set is read once a run
def _files_digest(files: tuple[str, ...]) -> str:
    content = b"".join((MUTANTS / f).read_bytes() for f in files if (MUTANTS / f).exists())
    return hashlib.sha1(content).hexdigest()[:12]


def _bound(pid: int, limit_s: float) -> None:
    """Limits for a rechecked mutant: one that loops filling memory (``_chunk`` 60 extends a deque
    for ever) must fail on its own, not take the machine's memory or outlive the wall limit."""
    resource.prlimit(pid, resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    resource.prlimit(pid, resource.RLIMIT_CPU, (int(limit_s) + 1, int(limit_s) + 2))


def timeouts(results: Results) -> list[tuple[str, str, list[str]]]:
    """Each mutant mutmut left to a recheck (timeout, suspicious), with the digest its verdict must
    carry to be current, and its tests."""
    stats_file = MUTANTS / "mutmut-stats.json"
    if not stats_file.exists():
        return []
    tests_by_function: dict[str, list[str]] = json.loads(stats_file.read_text())["tests_by_mangled_function_name"]
    out = []
    for codes, hashes in results.values():
        for mutant, code in codes.items():
            if status(code) in _RECHECKED:
                mangled, function = function_of(mutant)
                tests = sorted(tests_by_function.get(mangled, []))
                out.append((mutant, f"{hashes.get(function, '')}:{_tests_digest(tests)}", tests))
    return out


def current_verdicts(results: Results) -> dict[str, str]:
    """The recorded verdicts still true: a timeout whose function or tests changed since it was
    rechecked counts as not rechecked (a test written since may kill it)."""
    known: dict[str, dict[str, str]] = json.loads(RECHECKS.read_text()) if RECHECKS.exists() else {}
    return {m: known[m]["verdict"] for m, digest, _ in timeouts(results) if known.get(m, {}).get("hash") == digest}


def recheck_timeouts(results: Results, jobs: int, only: str) -> dict[str, str]:
    known: dict[str, dict[str, str]] = json.loads(RECHECKS.read_text()) if RECHECKS.exists() else {}
    durations: dict[str, float] = json.loads((MUTANTS / "mutmut-stats.json").read_text())["duration_by_test"]
    todo = []
    for mutant, digest, tests in timeouts(results):
        entry = known.get(mutant)
        if (entry and entry["hash"] == digest) or not fnmatch.fnmatch(mutant, only):
            continue
        times = [durations.get(t, 0.0) for t in tests] or [0.0]
        todo.append((mutant, digest, tests, max(10.0, 5 * max(times)), max(60.0, 5 * sum(times))))
    if todo:
        print(f"rechecking {len(todo)} mutants, {jobs} at a time", file=sys.stderr)
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        verdicts = pool.map(lambda item: recheck(item[0], item[2], item[3], item[4]), todo)
        for (mutant, digest, *_), verdict in zip(todo, verdicts, strict=True):
            known[mutant] = {"hash": digest, "verdict": verdict}
            RECHECKS.write_text(json.dumps(known, indent=1, sort_keys=True))  # kept as it goes: a cut run keeps them
    return current_verdicts(results)


def read_explained(path: Path) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.split("#", 1)[0].split() for line in path.read_text().splitlines())
    return {words[0] for words in lines if words}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recheck", action="store_true", help="run every unrechecked timeout again, alone")
    parser.add_argument("--only", default="*", help="recheck only the mutants matching this (e.g. 'runner.report.*')")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="rechecks at a time")
    parser.add_argument("--explained", type=Path, default=EXPLAINED, help="survivors with why")
    args = parser.parse_args()
    results = load_results()
    if not results:
        sys.exit("no mutmut results in mutants/: run make mutate first")
    verdicts = recheck_timeouts(results, args.jobs, args.only) if args.recheck else current_verdicts(results)
    explained = read_explained(args.explained)

    total: Counter[str] = Counter()
    survivors: list[str] = []
    for path, (codes, _) in results.items():
        counts: Counter[str] = Counter()
        for mutant, code in codes.items():
            state = status(code)
            if state in _RECHECKED:
                rechecked = verdicts.get(mutant)
                counts["hang" if rechecked == "hang" else "rechecked" if rechecked else f"{state}, not rechecked"] += 1
                state = {"killed": "killed", "hang": "killed", "survived": "survived"}.get(rechecked or "", state)
            if state == "survived":
                survivors.append(mutant)
                if mutant in explained:
                    counts["explained"] += 1
            counts[state] += 1
        counts["all"] = len(codes)
        total += counts
        print(_line(counts, path))
    unexplained = [m for m in survivors if m not in explained]
    stale = sorted(explained - set(survivors))
    if unexplained:
        print(f"\n{len(unexplained)} survivors not in {args.explained}:")
        print("\n".join(f"  {m}" for m in sorted(unexplained)))
    if stale:
        print(f"\n{len(stale)} names in {args.explained} that no longer survive (killed, renamed or not run):")
        print("\n".join(f"  {m}" for m in stale))
    print(f"\nall modules: {_detail(total)}")
    print(_score(total))


def _score(counts: Counter[str]) -> str:
    killed, n = counts["killed"], counts["all"]
    return f"mutation score: {killed}/{n} killed ({100 * killed / max(1, n):.1f}%)"


def _detail(counts: Counter[str]) -> str:
    shown = (
        "survived",
        "explained",
        "hang",
        "rechecked",
        "timeout, not rechecked",
        "suspicious, not rechecked",
        "no tests",
        "not run",
    )
    return ", ".join(f"{key} {counts[key]}" for key in shown if counts[key])


def _line(counts: Counter[str], where: str) -> str:
    return f"{_score(counts):<44} {where} ({_detail(counts)})"


if __name__ == "__main__":
    main()
