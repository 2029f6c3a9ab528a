"""Process and Celery modes from 1 to 16 workers, each beside its bare primitive (issue 15).

    python benchmarks/scaling.py [--workers 1,2,4,8,16] [--rounds R] [--process-jobs N]
                                 [--celery-jobs N] [--loop-jobs N] [--json FILE]
    python benchmarks/scaling.py --chart FILE.svg --from FILE.json [FILE.json ...]

For each worker count W, in one process and one calibration, on no-op jobs, alternating runner and
the hand-written equivalent round by round:

- process: runner's process mode vs ``ProcessPoolExecutor(W).map`` at its best chunksize (16..4096,
  tried, not guessed);
- celery batched (``--batch 0``) vs a user's own batching (one list task per chunk of the same size
  as runner's batches, ``apply_async`` per chunk) on W baseline Celery nodes;
- celery one task per job (``--batch 1``) vs a plain ``apply_async`` loop waiting for every result.

``--concurrency`` is ``--window-per-worker`` times the workers (default 8,192: two batches of 4,096 per
worker, the largest batch runner sends and the map's largest chunk): runner never has more jobs in
flight than its window and sizes a batch at a worker's half share of it, while ``map`` sends every
chunk at once, so a fixed window of 1,000 would measure the window, not the coordinator (a smaller
one is what ``benchmarks/overhead.py --concurrency`` measures). Celery's is 1,024 per worker
(``--celery-window-per-worker``): its batches stop at about 5 ms of work (~250 no-op jobs) long
before a window's share, and a larger window only lets more jobs out before that cost is known. Every Celery node is one
prefork child, as ``runner submit --celery-workers W`` starts them. Prints a table of jobs/s and
ratios (median and min..max over rounds) and, with ``--json``, writes every round; ``--chart``
draws jobs/s against workers from such a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from overhead import apply_async_loop, load_line, process_map, runner_run, start_baseline_workers  # noqa: E402

from runner.engine.coordinator import executor_config  # noqa: E402
from runner.engine.services import LocalServices  # noqa: E402
from runner.engine.spec import WorkloadSpec  # noqa: E402
from workers.calibration import for_coordinator  # noqa: E402
from workers.registry import executor_class  # noqa: E402

Rate = Callable[[], Awaitable[float]]
BARE = {"process": "ProcessPoolExecutor.map", "celery batched": "own list tasks", "celery 1/task": "apply_async loop"}


def user_batches(jobs: int, chunk: int) -> float:
    from celery_baseline import user_batches as own_batches  # after the benchmark has set its URL

    return own_batches(jobs, chunk)


def spec(mode: str, workers: int, jobs: int, window: int, batch: int | None = None) -> WorkloadSpec:
    values: dict[str, Any] = {
        "jobs": jobs,
        "mix": "noop=1",
        "concurrency": window * workers,
        "workers": workers,
        "celery_workers": workers,
    }
    if batch is not None:
        values["batch"] = batch
    return WorkloadSpec.build(values, (mode,))


async def alternate(rounds: int, ours: Rate, theirs: Rate) -> tuple[list[float], list[float]]:
    await ours()  # warm-up of both, not counted
    await theirs()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(await ours())
        b.append(await theirs())
    return a, b


def row(name: str, workers: int, bare: str, ours: list[float], theirs: list[float], **extra: Any) -> dict[str, Any]:
    ratios = [x / y for x, y in zip(ours, theirs, strict=True)]
    doc = {"arm": name, "workers": workers, "bare": bare, "runner_jobs_per_s": ours, "bare_jobs_per_s": theirs}
    doc |= {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios), **extra}
    print(
        f"{name:14s} W={workers:2d}  runner {statistics.median(ours):11,.0f} jobs/s   {bare:28s} "
        f"{statistics.median(theirs):11,.0f} jobs/s   ratio {doc['ratio_median']:.2f} "
        f"({doc['ratio_min']:.2f}..{doc['ratio_max']:.2f})",
        flush=True,
    )
    return doc


async def process_arm(workers: int, args: argparse.Namespace, services: LocalServices, cal: Any) -> dict[str, Any]:
    s = spec("process", workers, args.process_jobs, args.window_per_worker)
    # spawn, as runner's pool: a fork after the Celery arms' threads ran can inherit a held lock and hang
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as procs:
        chunk = max((16, 256, 1024, 4096), key=lambda c: max(process_map(procs, s.jobs, c) for _ in range(2)))
        async with executor_class("process")(executor_config(s), services) as executor:

            async def ours() -> float:
                return (await runner_run(executor, s, services, cal)).throughput_jobs_per_s

            async def theirs() -> float:
                return process_map(procs, s.jobs, chunk)

            a, b = await alternate(args.rounds, ours, theirs)
    return row("process", workers, f"map(chunksize={chunk})", a, b, jobs=s.jobs)


async def celery_arm(
    batch: int, jobs: int, workers: int, args: argparse.Namespace, services: LocalServices, cal: Any
) -> dict[str, Any]:
    """Runner's Celery mode at ``--batch batch`` beside what a user would write for it."""
    s = spec("celery", workers, jobs, args.celery_window_per_worker, batch)
    per_task: list[float] = []
    async with executor_class("celery")(executor_config(s), services) as executor:

        async def ours() -> float:
            run = await runner_run(executor, s, services, cal)
            batching = run.executor.batching()
            per_task.append(batching.jobs_per_task if batching else 1.0)
            return run.throughput_jobs_per_s

        await ours()  # learns the batch size before the user's batches copy it
        chunk = max(1, round(per_task[-1]))

        async def theirs() -> float:
            if batch == 1:
                return await asyncio.to_thread(apply_async_loop, jobs)
            return await asyncio.to_thread(user_batches, jobs, chunk)

        a, b = await alternate(args.rounds, ours, theirs)
    if batch == 1:
        return row("celery 1/task", workers, "apply_async loop", a, b, jobs=jobs, jobs_per_task=1.0)
    name, bare = "celery batched", f"own list tasks of {chunk}"
    return row(name, workers, bare, a, b, jobs=jobs, jobs_per_task=statistics.median(per_task))


async def celery_arms(
    workers: int, args: argparse.Namespace, services: LocalServices, cal: Any, keep: Callable[[dict[str, Any]], None]
) -> None:
    nodes = start_baseline_workers(services.redis_url(), workers)
    try:
        keep(await celery_arm(0, args.celery_jobs, workers, args, services, cal))
        keep(await celery_arm(1, args.loop_jobs, workers, args, services, cal))
    finally:
        nodes.stop()


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    cal = for_coordinator()
    rows: list[dict[str, Any]] = []

    def keep(row: dict[str, Any]) -> None:
        rows.append(row)
        if args.json:  # after every row: a run cut short keeps what it measured
            args.json.write_text(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=1))

    print(load_line(), f"cpus: {os.cpu_count()}", flush=True)
    with LocalServices() as services:
        for workers in (int(w) for w in args.workers.split(",")):
            began = time.perf_counter()
            if "process" in args.arms:
                keep(await process_arm(workers, args, services, cal))
            if "celery" in args.arms:
                await celery_arms(workers, args, services, cal, keep)
            print(f"W={workers}: {time.perf_counter() - began:.0f} s; {load_line()}", flush=True)
    return rows


def chart(sources: list[Path], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = [json.loads(source.read_text()) for source in sources]
    doc = {"cpus": docs[0]["cpus"], "rows": [row for d in docs for row in d["rows"]]}
    fig, ax = plt.subplots(figsize=(10, 5))
    for arm in dict.fromkeys(r["arm"] for r in doc["rows"]):
        rows = sorted((r for r in doc["rows"] if r["arm"] == arm), key=lambda r: int(r["workers"]))
        xs = [r["workers"] for r in rows]
        line = ax.plot(xs, [statistics.median(r["runner_jobs_per_s"]) for r in rows], marker="o", label=f"runner {arm}")
        ax.plot(
            xs,
            [statistics.median(r["bare_jobs_per_s"]) for r in rows],
            marker="x",
            linestyle="--",
            color=line[0].get_color(),
            label=f"bare: {BARE[arm]}",
        )
    ax.set(xscale="log", yscale="log", xlabel="workers", ylabel="no-op jobs/s (median of rounds)")
    ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    ax.set_xlim(0.8, 20)
    ax.set_title(f"runner vs bare primitives, {doc['cpus']} cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(target)
    print(f"{target}: written")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--arms", default="process,celery")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-per-worker", type=int, default=8192, help="process: --concurrency per worker")
    parser.add_argument("--celery-window-per-worker", type=int, default=1024, help="celery: --concurrency per worker")
    parser.add_argument("--process-jobs", type=int, default=1_000_000)
    parser.add_argument("--celery-jobs", type=int, default=100_000, help="jobs a round, celery batched")
    parser.add_argument("--loop-jobs", type=int, default=5_000, help="jobs a round, one task per job")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chart", type=Path, help="draw FILE.svg from --from FILE.json and exit")
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", help="results files of this benchmark")
    args = parser.parse_args()
    if args.chart:
        chart(args.sources, args.chart)
        return 0
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
