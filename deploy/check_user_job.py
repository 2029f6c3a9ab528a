"""Check the result of a user job run on the cluster's Celery workers (used by deploy/cluster-test.sh).

    python deploy/check_user_job.py reports/cluster-test/user-job/result.json --kind orders --jobs 60 --workers 2

Fails (exit 1, one line per problem) unless: the run is a Celery run whose every job is accounted
for (submitted == done == ``--jobs``, nothing failed, timed out, lost or run twice); all of them are
of the user's kind ``--kind``; the result records that kind as a user job (``user_jobs``), run on
the cluster's nodes as many times as jobs were done; and the jobs ran on the cluster's ``--workers``
nodes (``nodes[]``, whose jobs add up to the run's). Prints the jobs per node.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runner.engine.results import RunResult


def check(result: RunResult, kind: str, jobs: int, workers: int) -> list[str]:
    problems: list[str] = []
    counts = result.jobs
    if result.mode != "celery":
        problems.append(f"mode is {result.mode}, not celery")
    if not counts.submitted == counts.done == jobs:
        problems.append(f"expected {jobs} jobs submitted and done, got {counts}")
    if counts.failed or counts.timed_out or counts.lost or counts.duplicates:
        problems.append(f"jobs failed, timed out, lost or ran twice: {counts}; failures {result.failures}")
    if result.kinds != {kind: jobs}:
        problems.append(f"expected {jobs} jobs of kind {kind}, got {result.kinds}")
    problems += user_job_problems(result, kind)
    nodes = result.nodes or []
    if len(nodes) != workers:
        problems.append(f"expected {workers} Celery nodes, got {[n.name for n in nodes]}")
    if sum(n.jobs for n in nodes) != counts.done:
        problems.append(f"the nodes' jobs ({sum(n.jobs for n in nodes)}) do not add up to {counts.done}")
    return problems


def user_job_problems(result: RunResult, kind: str) -> list[str]:
    """``user_jobs`` names the kind, and which form ran on which node adds up to the jobs done."""
    user = result.user_jobs
    if user is None or kind not in user.kinds:
        return [f"the result records no user job {kind}"]
    ran = sum(n for by_worker in user.ran.get(kind, {}).values() for n in by_worker.values())
    nodes = {node.name for node in result.nodes or []}
    where = {worker for by_worker in user.ran.get(kind, {}).values() for worker in by_worker}
    problems = [] if ran == result.jobs.done else [f"user_jobs.ran counts {ran} {kind} jobs, not {result.jobs.done}"]
    if not where <= nodes:
        problems.append(f"{kind} ran on {sorted(where - nodes)}, which are not the cluster's nodes {sorted(nodes)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    args = parser.parse_args(argv)
    result = RunResult.from_json(json.loads(args.result.read_text(encoding="utf-8")))
    problems = check(result, args.kind, args.jobs, args.workers)
    for problem in problems:
        print(f"user job: {problem}", file=sys.stderr)
    if problems:
        return 1
    per_node = ", ".join(f"{n.name} {n.jobs}" for n in result.nodes or [])
    forms = result.user_jobs.ran[args.kind] if result.user_jobs else {}
    print(
        f"user job {args.kind}: {result.jobs.done}/{result.jobs.submitted} done on the cluster ({per_node}); "
        f"forms run: {', '.join(f'{form} {sum(n.values())}' for form, n in forms.items())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
