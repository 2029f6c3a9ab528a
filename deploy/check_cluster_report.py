"""Check the report a compose cluster run left behind (used by deploy/cluster-test.sh).

    python deploy/check_cluster_report.py reports/cluster-test/results.json --workers 2 \
        [--worker-hostnames 0c1f2e3d4a5b,9a8b7c6d5e4f]

Fails (exit 1, one line per problem) unless: every executor (async, thread, process, celery) has
cells; every run -- warm-up included -- accounts for every job (submitted == done + failed +
timed_out, lost == 0) and failed only where its mix has ``fail`` jobs; the Celery jobs ran on
exactly ``--workers`` nodes, each running some, and the nodes are the cluster's worker containers
(``celery@<hostname>``); every Celery run has ``nodes[]`` whose jobs add up to the run's, each
node measured itself (CPU seconds, peak RSS) and reports the cores it was given (``--node-cpus``,
one per hostname, e.g. 1,0.5 for containers with ``cpus: 1`` and ``cpus: 0.5``); ``runner cluster
sample`` merged figures for every container (``--worker-services worker=1,worker-small=1`` when
the workers are of more than one service); and report.md, report.html and summary.csv were
written. Prints the jobs per worker, the per-node table, the bounds and the container figures.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from runner.engine.bench_results import BenchResults, Cell, load_results
from workers.errors import InputError

MODES = ("async", "thread", "process", "celery")


def check(
    doc: BenchResults,
    out_dir: Path,
    workers: int,
    hostnames: list[str],
    node_cpus: list[float] | None = None,
    worker_services: dict[str, int] | None = None,
) -> list[str]:
    problems: list[str] = []
    cells = doc.cells
    modes = {cell.mode for cell in cells}
    problems += [f"no cells for the {mode} executor" for mode in MODES if mode not in modes]

    runs = [("warm-up", run) for run in doc.warmup or []]
    runs += [(f"{cell.mode} x {cell.mix_name}", run) for cell in cells for run in cell.repeats]
    if not runs:
        problems.append("no runs in the results")
    for where, run in runs:
        jobs = run.jobs
        if jobs.submitted <= 0:
            problems.append(f"{where}: no jobs submitted")
        if jobs.submitted != jobs.done + jobs.failed + jobs.timed_out:
            problems.append(f"{where}: jobs not accounted for: {jobs}")
        if jobs.lost != 0:
            problems.append(f"{where}: {jobs.lost} jobs lost")
        if (jobs.failed or jobs.timed_out) and "fail" not in run.kinds:
            problems.append(f"{where}: {jobs.failed} failed, {jobs.timed_out} timed out: {run.failures}")

    per_node: Counter[str] = Counter()
    celery_done = 0
    for cell in cells:
        if cell.mode == "celery":
            for run in cell.repeats:
                per_node.update(run.by_worker)
                celery_done += run.jobs.done
    if len(per_node) != workers or min(per_node.values(), default=0) <= 0:
        problems.append(f"Celery jobs ran on {len(per_node)} nodes, not on all {workers}: {dict(per_node)}")
    if sum(per_node.values()) != celery_done:
        problems.append(f"jobs per Celery node add up to {sum(per_node.values())}, not the {celery_done} done")
    expected = {f"celery@{h}" for h in hostnames}
    if expected and set(per_node) != expected:
        problems.append(f"Celery nodes {sorted(per_node)} are not the worker containers {sorted(expected)}")

    problems += _check_nodes(cells, hostnames, node_cpus or [])

    containers = doc.containers
    if not containers:
        problems.append("no per-container figures (runner cluster sample did not merge any)")
    else:
        services = Counter(c.service for c in containers)
        expected_services = {"redis": 1, "target": 1, "coordinator": 1} | (worker_services or {"worker": workers})
        for service, count in expected_services.items():
            if services[service] != count:
                problems.append(f"figures for {services[service]} {service} containers, expected {count}")
        problems += [f"{c.name}: no samples" for c in containers if c.samples <= 0]
        problems += [f"{c.name}: no memory figure" for c in containers if c.mem_peak_mb <= 0]

    for name in ("report.md", "report.html", "summary.csv"):
        if not (out_dir / name).is_file():
            problems.append(f"{name} was not written")

    print("Celery jobs per worker node (all measured runs):")
    for node, count in sorted(per_node.items()):
        print(f"  {node:<32} {count:>7,}")
    print("Containers:")
    for c in containers or []:
        print(
            f"  {c.name:<28} {c.service:<12} CPU mean {c.cpu_percent_mean:6.1f} %  "
            f"max {c.cpu_percent_max:6.1f} %  memory peak {c.mem_peak_mb:7.1f} MB  ({c.samples} samples)"
        )
    print(
        f"{len(runs)} runs, {sum(r.jobs.submitted for _, r in runs):,} jobs, all accounted for"
        if not problems
        else f"{len(problems)} problems"
    )
    return problems


def _check_nodes(cells: list[Cell], hostnames: list[str], cpus: list[float]) -> list[str]:
    """nodes[] of every Celery run: present, adding up, self-measured, and of the expected sizes."""
    problems: list[str] = []
    totals: dict[str, list[Any]] = {}  # name -> [node, jobs, cpu_s, peak_rss_mb]
    print("Bounds of the Celery cells (from the nodes' own cores and pools):")
    for cell in cells:
        if cell.mode != "celery":
            continue
        for run in cell.repeats:
            if not run.nodes:
                problems.append(f"celery x {cell.mix_name}: a run without nodes[]")
                continue
            if sum(n.jobs for n in run.nodes) != sum(run.by_worker.values()):
                problems.append(f"celery x {cell.mix_name}: nodes[] jobs do not add up to the run's")
            for n in run.nodes:
                total = totals.setdefault(n.name, [n, 0, 0.0, 0.0])
                total[1] += n.jobs
                total[2] += n.cpu_s
                total[3] = max(total[3], n.peak_rss_mb)
        bound = cell.summary.bound
        limits = ", ".join(f"{k} {v:.1f}" for k, v in bound.limits.items())
        print(f"  {cell.mix_name:<14} {bound.jobs_per_s or 0:9.1f} jobs/s, limited by {bound.limited_by} ({limits})")
    expected_cpus = dict(zip(hostnames, cpus, strict=False))
    for name, (node, jobs, cpu_s, rss) in sorted(totals.items()):
        if jobs > 0 and (cpu_s <= 0 or rss <= 0):
            problems.append(f"{name} ran {jobs} jobs but measured {cpu_s} CPU s, {rss} MB")
        want = expected_cpus.get(node.hostname)
        if want is not None and abs(node.cpus - want) > 0.01:
            problems.append(f"{name} reports {node.cpus:g} cores; its container was given {want:g}")
    hosts = sorted(total[0].hostname for total in totals.values())
    if hostnames and hosts != sorted(hostnames):
        problems.append(f"nodes[] hosts {hosts} are not the worker containers {sorted(hostnames)}")
    print("Celery nodes (all measured runs, as each node measured itself):")
    heads = ("node", "host", "cores", "pool", "conc", "jobs", "CPU s", "peak RSS MB")
    print("  {:<28} {:<14} {:>5} {:<8} {:>4} {:>7} {:>8} {:>11}".format(*heads))
    for name, (node, jobs, cpu_s, rss) in sorted(totals.items()):
        print(
            f"  {name:<28} {node.hostname:<14} {node.cpus:>5g} {node.pool:<8} {node.concurrency:>4} "
            f"{jobs:>7,} {cpu_s:>8.2f} {rss:>11.1f}"
        )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--worker-hostnames", default="", help="comma-separated hostnames of the worker containers")
    parser.add_argument("--node-cpus", default="", help="comma-separated cores of those containers, in their order")
    parser.add_argument("--worker-services", default="", help="SERVICE=COUNT,... of the worker containers")
    args = parser.parse_args()
    try:
        doc = load_results(args.results)
    except InputError as exc:
        print(f"check_cluster_report: {exc}", file=sys.stderr)
        return 1
    hostnames = [h for h in args.worker_hostnames.split(",") if h]
    cpus = [float(c) for c in args.node_cpus.split(",") if c]
    services = {k: int(v) for k, _, v in (s.partition("=") for s in args.worker_services.split(",") if s)}
    problems = check(doc, args.results.parent, args.workers, hostnames, cpus, services or None)
    for problem in problems:
        print(f"check_cluster_report: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
