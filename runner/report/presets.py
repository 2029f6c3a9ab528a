"""The Markdown sections of ``runner bench --preset`` (their charts are in ``runner.report.charts``).

Each section says what was measured, shows our figures in a small table with the article's
figure beside them, and ends with the verdict. Works from the results document alone (see
``runner.experiments.presets``), so ``runner report`` can re-render it.
"""

from __future__ import annotations

from runner.engine.preset_results import BlockingFigure, RaceFigure, RequestsFigure, SpawnFigure
from runner.engine.results import BenchResults
from runner.report import format as fmt

_TITLES = {
    "requests": "Preset `requests`: three slow HTTP calls, one after another or at once",
    "spawn": "Preset `spawn`: what a coroutine, a thread and a process cost to create",
    "blocking": "Preset `blocking`: CPU work inside a coroutine blocks the event loop",
    "race": "Preset `race`: lost updates when coroutines, threads or processes share a counter",
}
_UNIT_LABELS = {
    "coroutine": "coroutine (asyncio task)",
    "thread": "thread",
    "process": "process (fork)",
    "process-spawn": "process (spawn)",
}


def _verdict(doc: BenchResults, name: str) -> str:
    for verdict in doc.verdicts:
        if verdict.kind == "preset" and verdict.preset == name:
            return verdict.text
    return ""


def _requests_md(fig: RequestsFigure) -> list[str]:
    plan, art = fig.plan, fig.article
    call_s = plan.call_ms / 1000
    lines = [
        f"{plan.calls} GETs of `/delay/{plan.call_ms:g}` ({call_s:g} s each) against the {fig.target}, sent "
        f"through runner's own executors; {plan.repeats} interleaved repeats after a warm-up kept apart. "
        "Times are the wall time for all calls (mean ± 95 % interval).",
        "",
        "| variant | how | wall s | ideal s | vs sequential |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, v in fig.variants.items():
        rel = fig.ratios.get(name)
        rel_text = f"{fmt.fixed(rel.vs_sequential, 3)}x ± {fmt.spread(rel.half_width, 3)}" if rel else "1x"
        lines.append(f"| {name} | {v.what} | {fmt.pm(v.wall_s, 3)} | {v.ideal_s:g} | {rel_text} |")
    lines += [
        "",
        f"The article ({art.calls} calls of {art.call_s:g} s to {art.where}): {art.sequential_s:.1f} s one "
        f"after another with `requests`, {art.gevent_s:.1f} s with gevent, {art.asyncio_s:.1f} s with aiohttp "
        f"-- {art.sequential_s / art.call_s:.1f}, {art.gevent_s / art.call_s:.1f} and "
        f"{art.asyncio_s / art.call_s:.1f} times one call's delay. Ours: "
        + ", ".join(f"{name} {v.wall_s.mean / call_s:.2f}" for name, v in fig.variants.items())
        + " times one call's delay; a local target adds almost no network time.",
    ]
    return lines


def _spawn_md(fig: SpawnFigure) -> list[str]:
    art = fig.article
    lines = [
        "N units of each kind are created in a fresh interpreter and kept alive while memory is read (coroutines "
        "as pending tasks on uvloop, threads waiting on an event, processes until each child reports in). Memory "
        "is the growth of the process's RSS; for processes, the sum of the children's USS plus the parent's "
        f"growth. Per-unit figures are means ± 95 % interval over {fig.plan.repeats} repeats. The million "
        "columns are linear extrapolations from N, not measurements.",
        "",
        "| unit | N | time per unit | memory per unit | 1 M: time (extrapolated) | 1 M: memory (extrapolated) "
        "| article, 1 M |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for kind, k in fig.kinds.items():
        t, m = k.time_per_unit_us, k.memory_per_unit_kib
        a = art.get(kind)
        if a is None:
            article = "--"
        elif a.memory_mib is None:
            million_s = f"; {fmt.fixed(a.million_s, 0)} s extrapolated" if a.million_s is not None else ""
            article = f"{a.time_s:g} s for {fmt.count(a.n)}{million_s}; memory not measured"
        else:
            article = f"{fmt.fixed(a.time_s, 1)} s, {fmt.fixed(a.memory_mib, 0)} MB"
        per_unit = f"{fmt.duration_us(t.mean)} ± {fmt.duration_us(t.half_width)} | {fmt.size_kib(m.mean)} ± "
        per_unit += fmt.size_kib(m.half_width)
        million = f"{fmt.fixed(k.million.time_s, 1)} s | {fmt.size_mib(k.million.memory_mib)}"
        lines.append(f"| {_UNIT_LABELS.get(kind, kind)} | {fmt.count(k.n)} | {per_unit} | {million} | {article} |")
    order = fig.order_holds
    lines += [
        "",
        f"Order coroutine < thread < process (fork): time {'holds' if order.time else 'does NOT hold'}, "
        f"memory {'holds' if order.memory else 'does NOT hold'}. `process (spawn)` starts a fresh interpreter per "
        "process, as runner's process pool does; it is shown beside the order, not in it. The article's threads "
        "ended as soon as they started, so its thread memory counts mostly finished threads; ours are all alive.",
    ]
    return lines


def _blocking_md(fig: BlockingFigure) -> list[str]:
    plan = fig.plan
    lines = [
        f"{plan.jobs} pure-Python CPU jobs of {plan.cpu_ms:g} ms each, {fig.in_flight} in flight, on a uvloop "
        f"event loop, while {plan.probes} HTTP probes ({fig.probe}) run back to back and a 10 ms timer "
        "measures loop lag. Inline, the job runs in the "
        f"coroutine; offloaded, `run_in_executor` sends it to a {fig.workers}-process pool (one core left to the "
        f"loop). Means ± 95 % interval over {plan.repeats} repeats.",
        "",
        "| CPU job runs | loop lag p99 ms | probe p50 ms | probe p99 ms | CPU job p50 ms | CPU jobs/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode, m in fig.modes.items():
        lines.append(
            f"| {mode} | {fmt.pm(m.loop_lag_p99_ms, 1)} | {fmt.pm(m.probe_p50_ms, 1)} "
            f"| {fmt.pm(m.probe_p99_ms, 1)} | {fmt.pm(m.job_ms_p50, 1)} | {fmt.pm(m.jobs_per_s, 1)} |"
        )
    lines += [
        "",
        "The article says so without a figure: a CPU-bound coroutine blocks the event loop, and CPU work belongs "
        f"in a process pool. A probe asks the target to wait {plan.probe_ms:g} ms: that is its floor.",
    ]
    return lines


PRIVATE = "processes-private"
_RACE_HOW = {
    "coroutines": "coroutines, no `await` between read and write",
    "coroutines-await": "coroutines, an `await` between read and write",
    "threads": "threads, plain read-modify-write",
    "threads-lock": "threads, under a lock",
    "processes-shared": "processes, a counter in shared memory",
    "processes-lock": "processes, shared memory under its lock",
    "processes-private": "processes, each its own copy (nothing shared)",
}


def _race_md(fig: RaceFigure) -> list[str]:
    lines = [
        f"{fmt.count(fig.increments)} increments of one counter per variant, split over {fig.workers} workers that "
        "read the counter, compute, and write it back. A lost update is an increment the final count does not "
        "show. For private process copies the starter sees none of the updates: nothing races, and nothing is "
        "shared either.",
        "",
        "| variant | strategy | lost updates | per million | seconds | the article's claim for the strategy |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for v in fig.variants:
        claim = fig.article.get(v.strategy, "--")
        private = v.variant == PRIVATE  # each copy got every update; the starter sees none: not a race
        lost = "none raced; none visible to the starter" if private else fmt.count(v.lost)
        per_million = "-" if private else fmt.num(v.lost_per_million)
        lines.append(
            f"| {_RACE_HOW.get(v.variant, v.variant)} | {v.strategy} | {lost} | {per_million} "
            f"| {fmt.fixed(v.seconds, 2)} | {claim} |"
        )
    return lines


def race_verdict(fig: RaceFigure) -> str:
    per = {v.variant: v.lost_per_million for v in fig.variants}

    def lost(name: str) -> str:
        return f"{fmt.num(per.get(name))} per million"

    return (
        f"Races, {fmt.count(fig.increments)} increments by {fig.workers} workers: coroutines lose {lost('coroutines')} "
        f"without an await between read and write and {lost('coroutines-await')} with one; threads lose "
        f"{lost('threads')} ({lost('threads-lock')} under a lock); processes on shared memory lose "
        f'{lost("processes-shared")} ({lost("processes-lock")} under its lock) -- the article\'s "does not happen" '
        "holds only while processes share nothing"
    )


def markdown(doc: BenchResults) -> str:
    """One ``## `` section per preset in the document, in the order they ran."""
    p = doc.presets
    if p is None:
        return ""
    sections: list[tuple[str, list[str]]] = []
    if p.requests is not None:
        sections.append(("requests", _requests_md(p.requests)))
    if p.spawn is not None:
        sections.append(("spawn", _spawn_md(p.spawn)))
    if p.blocking is not None:
        sections.append(("blocking", _blocking_md(p.blocking)))
    if p.race is not None:
        sections.append(("race", _race_md(p.race)))
    out: list[str] = []
    for name, lines in sections:
        out += [f"## {_TITLES[name]}", "", *lines, ""]
        verdict = _verdict(doc, name)
        if verdict:
            out += [f"**Verdict:** {verdict}", ""]
    return "\n".join(out)
