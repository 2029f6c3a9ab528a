"""Markdown sections of the curves (scaling, concurrency, capacity, runs over time) and the whole
comparison table of "Asynchronous Programming" (Tai Le, 2023) with what this document measured."""

from __future__ import annotations

from collections import defaultdict

from runner.engine.bench_results import BenchResults
from runner.report import format as fmt
from runner.report import scaling as sc
from runner.report.presets import PRIVATE
from runner.report.verdicts import main_slice


def _image(images: dict[str, str], name: str, title: str) -> list[str]:
    return [f"![{title}]({images[name]})\n"] if name in images else []


def curve_sections(doc: BenchResults, images: dict[str, str]) -> list[str]:
    from runner.report.curves import fits, slug

    out: list[str] = []
    found = fits(doc)
    if found:
        out += [
            "## Scaling with workers\n",
            "Throughput against the number of workers, per executor: the ideal line grows linearly from the "
            "fewest workers measured, the bound is what the calibrated job costs allow, and the Universal "
            "Scalability Law, X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)), is fitted where there are at "
            f"least {sc.MIN_POINTS} worker counts (contention sigma: work that serialises; coherency kappa: the "
            "cost of keeping workers in step, which bends throughput down past a peak).\n",
        ]
        by_chart: dict[str, list[str]] = defaultdict(list)
        axes = len({(s.concurrency, s.rate_per_s) for s in found}) > 1
        for s in found:
            name = f"scaling_{slug(s.mix_name)}" + (f"_c{s.concurrency}" if s.concurrency else "")
            name += f"_r{s.rate_per_s:g}" if s.rate_per_s else ""
            by_chart[name].append(sc.usl_words(s, axes))
        for name, words in by_chart.items():
            out += _image(images, name, "Throughput vs workers")
            out.append("\n".join(f"- {w}" for w in words) + "\n")
    series = sc.concurrency_series(doc.cells)
    if series:
        out += [
            "## Throughput and latency vs concurrency (closed loop)\n",
            "Where p99 starts to climb while throughput stops growing, more jobs in flight only queue: the knee.\n",
        ]
        for (mix, workers, _rate), modes in series.items():
            out += _image(images, f"concurrency_{slug(mix)}" + (f"_w{workers}" if workers else ""), "Concurrency")
            where = f", {workers} {fmt.plural(workers, 'worker')}" if workers else ""
            out.append("\n".join(f"- {mode} on {mix}{where}: {sc.knee(cells)}" for mode, cells in modes.items()) + "\n")
    capacity = [v for v in doc.verdicts if v.kind == "capacity"]
    rates = [name for name in images if name.startswith("rate_")]
    if capacity or rates:
        out += [
            "## Latency vs offered load (open loop)\n",
            "Jobs offered on a schedule, p99 counted from each job's intended start. With a p99 target, a rate is "
            "sustained when every job is done, throughput keeps within 10 % of the rate and p99 meets the target.\n",
        ]
        for name in rates:
            out += _image(images, name, "p99 vs offered rate")
        if capacity:
            out.append("\n".join(f"- {v.text}" for v in capacity) + "\n")
    timelines = [name for name in images if name.startswith("timeseries_")]
    if timelines:
        out += ["## Runs over time\n", "Jobs/s and p99 in each slice of a run: a warm-up transient or a stall shows.\n"]
        for name in timelines:
            out += _image(images, name, "Runs over time")
    return out


_CLAIMS = {
    "race": (
        "less likely (the loop runs tasks in turn), but happens when memory is shared",
        "very likely (context switches)",
        "don't happen (no shared memory)",
    ),
    "creation": ("fastest (7 s for 1,000,000)", "slow (44 s)", "slowest (379 s)"),
    "memory": ("1,112 MB for 1,000,000", "2,660 MB", "unable to calculate"),
    "ease": ("easy (shared memory, few races)", "hard (locks)", "hard (no shared memory)"),
    "scheduling": ("by the application", "by the OS", "by the OS"),
    "capacity": ("low-medium (the loop uses 1 CPU)", "low-medium (the GIL)", "medium-high (many CPUs)"),
}
_ROWS = (
    ("race", "Race conditions"),
    ("creation", "Creation speed"),
    ("memory", "Memory overhead"),
    ("ease", "Ease of use and debug"),
    ("scheduling", "Scheduling"),
    ("capacity", "Computational capacity (CPU-bound)"),
)
_COLUMNS = ("coroutine", "thread", "process")
_NOT_MEASURED = {
    "ease": "a judgement, not a measurement",
    "scheduling": "a design fact, not a measurement",
}
_WHERE = {
    "race": "`runner bench --preset race`",
    "creation": "`runner bench --preset spawn`",
    "memory": "`runner bench --preset spawn`",
    "capacity": "`runner bench` (its CPU mixes)",
}


def _measured(doc: BenchResults, row: str) -> str | None:
    p = doc.presets
    if row == "race" and p is not None and p.race is not None:
        worst: dict[str, float] = {}
        for v in p.race.variants:  # the worst case of each strategy: what can happen
            if v.variant == PRIVATE:  # nothing shared, so nothing races (and nothing is seen)
                continue
            worst[v.strategy] = max(worst.get(v.strategy, 0.0), v.lost_per_million)
        return "lost updates per million, worst variant: " + ", ".join(
            f"{c} {fmt.num(worst[c])}" for c in _COLUMNS if c in worst
        )
    if row in ("creation", "memory") and p is not None and p.spawn is not None:
        kinds = p.spawn.kinds
        if row == "creation":
            return "per unit: " + ", ".join(
                f"{c} {fmt.duration_us(kinds[c].time_per_unit_us.mean)}" for c in _COLUMNS if c in kinds
            )
        return "per unit: " + ", ".join(
            f"{c} {fmt.size_kib(kinds[c].memory_per_unit_kib.mean)}" for c in _COLUMNS if c in kinds
        )
    if row == "capacity":
        cpu = [c for c in main_slice(doc.cells) if c.cpu_share == 1 and set(c.mix) <= {"cpu"}]
        if cpu:
            best = sorted(cpu, key=lambda c: c.summary.throughput.mean, reverse=True)
            return f"on {cpu[0].mix_name}: " + ", ".join(
                f"{c.mode} {fmt.num(c.summary.throughput.mean)} jobs/s" for c in best
            )
    return None


def article_table(doc: BenchResults) -> str:
    from runner.report.markdown import table

    rows = []
    for key, title in _ROWS:
        if key in _NOT_MEASURED:
            here = _NOT_MEASURED[key]
        else:
            here = _measured(doc, key) or f"not in this document: {_WHERE[key]}"
        rows.append([title, *_CLAIMS[key], here])
    return (
        'The comparison table of "Asynchronous Programming" (Tai Le, 2023), row by row: the article\'s words '
        "per strategy, then what this document measured (or the command that measures it).\n\n"
        + table(["", "coroutine (the article)", "thread (the article)", "process (the article)", "measured here"], rows)
    )
