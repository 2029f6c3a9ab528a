"""Curves drawn from a sweep's cells: throughput vs workers with the Universal Scalability Law
fitted to it, where latency starts to climb with concurrency (the knee), and the highest open-loop
rate that meets a p99 target.

USL (N. Gunther): X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)). sigma is contention (the
share of work that serialises), kappa coherency (the cost of keeping workers in step, which makes
throughput fall past a peak at N* = sqrt((1 - sigma) / kappa)). It is fitted by nonlinear least
squares (``scipy.optimize.curve_fit``, sigma and kappa bounded at 0) to the cells' mean
throughputs; with fewer than 4 worker counts, or an R^2 below 0.9, no model is claimed.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from runner.engine.results import Cell, Scaling, ScalingPoint, Usl
from runner.report import format as fmt

MIN_POINTS = 4
MIN_R2 = 0.9
UNCHANGED = "its configuration does not change with workers (the same executor at every count): no model"


def usl_model(n: float, lam: float, sigma: float, kappa: float) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def fit_usl(workers: Sequence[float], jobs_per_s: Sequence[float]) -> Usl | None:
    """The USL through (workers, throughput) points; None when the fit does not converge."""
    import numpy as np
    from scipy.optimize import curve_fit

    n, x = np.asarray(workers, dtype=float), np.asarray(jobs_per_s, dtype=float)
    lam0 = float(max(x[np.argmin(n)] / n.min(), 1e-9))
    try:
        (lam, sigma, kappa), _ = curve_fit(
            usl_model, n, x, p0=[lam0, 0.05, 0.001], bounds=([0.0, 0.0, 0.0], [np.inf, 1.0, np.inf]), maxfev=20_000
        )
    except (RuntimeError, ValueError):
        return None
    residual = float(np.sum((x - usl_model(n, lam, sigma, kappa)) ** 2))  # type: ignore[arg-type]
    total = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    peak_n = math.sqrt((1 - sigma) / kappa) if kappa > 1e-12 and sigma < 1 else None
    peak_x = usl_model(peak_n, lam, sigma, kappa) if peak_n is not None else None
    return Usl(
        sigma=float(sigma),
        kappa=float(kappa),
        lambda_=float(lam),
        peak_workers=round(peak_n, 1) if peak_n is not None else None,
        peak_jobs_per_s=peak_x,
        r2=round(r2, 4),
    )


def scaling(cells: list[Cell]) -> list[Scaling]:
    """Per executor x mix (x concurrency x rate) with 2+ worker counts: the points, and the fit
    where there are enough of them."""
    groups: dict[tuple[str, str, int | None, float], list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.workers is not None:
            groups[(cell.mode, cell.mix_name, cell.concurrency, cell.rate_per_s or 0.0)].append(cell)
    out = []
    for (mode, mix, concurrency, rate), group in groups.items():
        if len({c.workers for c in group}) < 2:
            continue
        group.sort(key=lambda c: c.workers or 0)
        points = [
            ScalingPoint(
                workers=c.workers or 0,
                jobs_per_s=c.summary.throughput.mean,
                half_width=c.summary.throughput.half_width,
                bound=c.summary.bound.jobs_per_s,
            )
            for c in group
        ]
        usl, note = None, None
        settings = [c.repeats[0].executor.settings if c.repeats else {} for c in group]
        if all(s == settings[0] for s in settings):
            note = UNCHANGED
        elif len(points) < MIN_POINTS:
            note = f"{len(points)} worker counts: a scalability model needs at least {MIN_POINTS}"
        else:
            usl = fit_usl([p.workers for p in points], [p.jobs_per_s for p in points])
            if usl is None:
                note = "the scalability model did not converge on these points"
            elif usl.r2 < MIN_R2:
                note = f"the scalability model fits poorly (R^2 below {MIN_R2}): no parameters claimed"
        found = Scaling(mode=mode, mix_name=mix, concurrency=concurrency, rate_per_s=rate, points=points)
        out.append(replace(found, usl=usl, note=note))
    return out


def good_fit(s: Scaling) -> bool:
    return s.usl is not None and s.usl.r2 >= MIN_R2 and len(s.points) >= MIN_POINTS


def usl_words(s: Scaling, axes: bool = False) -> str:
    """ "celery on cpu 100 %: contention 4 %, coherency 0.02 %, predicted peak at 38 workers, 3,100
    jobs/s" -- or why there is no model."""
    head = f"{s.mode} on {s.mix_name}"
    if axes and s.concurrency is not None:
        offered = f", {fmt.num(s.rate_per_s)} jobs/s offered" if s.rate_per_s else ""
        head += f" (concurrency {s.concurrency}{offered})"
    if not good_fit(s) or s.usl is None:
        return f"{head}: {s.note or 'no scalability model'}"
    u = s.usl
    text = f"{head}: contention {fmt.small_pct(u.sigma)}, coherency {fmt.small_pct(u.kappa)}"
    measured = max(p.workers for p in s.points)
    if u.peak_workers is None or u.peak_jobs_per_s is None:
        ceiling = u.lambda_ / u.sigma if u.sigma > 0 else math.inf
        tail = "grows without limit" if math.isinf(ceiling) else f"levels off towards {fmt.num(ceiling)} jobs/s"
        return f"{text}, no predicted peak (throughput {tail})"
    beyond = " (beyond the measured range: an extrapolation)" if u.peak_workers > measured else ""
    peak = f"{fmt.num(u.peak_workers, 0)} workers, {fmt.num(u.peak_jobs_per_s, 0)} jobs/s"
    return f"{text}, predicted peak at {peak}{beyond}"


def knee_step(cells: list[Cell]) -> tuple[Cell, Cell, float] | None:
    """The first step up in concurrency where throughput grows by less than 10 % while p99 grows by
    more than half: (before, after, throughput gain); None when there is none."""
    cells = sorted(cells, key=lambda c: c.concurrency or 0)
    for prev, cur in itertools.pairwise(cells):
        gain = cur.summary.throughput.mean / prev.summary.throughput.mean if prev.summary.throughput.mean else math.inf
        climb = cur.summary.latency_ms.p99 / prev.summary.latency_ms.p99 if prev.summary.latency_ms.p99 else math.inf
        if gain < 1.1 and climb > 1.5:
            return prev, cur, gain
    return None


def knee(cells: list[Cell]) -> str:
    """Where latency starts to climb as concurrency grows, in words, for one executor's cells
    (same mix, workers and rate)."""
    found = knee_step(cells)
    if found is not None:
        prev, cur, gain = found
        return (
            f"knee near concurrency {prev.concurrency}: from {prev.concurrency} to {cur.concurrency} in flight "
            f"throughput changes {fmt.change((gain - 1) * 100)} while p99 climbs from "
            f"{fmt.num(prev.summary.latency_ms.p99)} to {fmt.num(cur.summary.latency_ms.p99)} ms"
        )
    last = max(cells, key=lambda c: c.concurrency or 0)
    return f"no knee up to concurrency {last.concurrency}: throughput still grows or p99 stays flat"


def concurrency_series(cells: list[Cell]) -> dict[tuple[str, int | None, float], dict[str, list[Cell]]]:
    """Per (mix, workers, rate), per executor, the closed-loop cells of 2+ concurrencies."""
    out: dict[tuple[str, int | None, float], dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells:
        if cell.concurrency is not None and not cell.open_loop:
            out[(cell.mix_name, cell.workers, 0.0)][cell.mode].append(cell)
    return {
        key: {m: sorted(cs, key=lambda c: c.concurrency or 0) for m, cs in modes.items()}
        for key, modes in out.items()
        if any(len({c.concurrency for c in cs}) >= 2 for cs in modes.values())
    }
