"""Every number the reports show is formatted here, so one figure reads the same everywhere: in
the terminal, in Markdown/HTML, in verdicts and in ``runner compare``."""

from __future__ import annotations

import math

from runner.engine.stats import Interval

PLUS_MINUS = "±"  # tables; verdict text (also printed on plain terminals) uses ASCII "+/-"


def num(value: float | None, digits: int = 1) -> str:
    """A figure for a table: ``-`` when missing, ``inf`` when unbounded, no decimals from 100 up."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def fixed(value: float, digits: int = 2) -> str:
    """Always ``digits`` decimals, thousands separated (wall times, rates, ratios)."""
    return f"{value:,.{digits}f}"


def spread(half_width: float, digits: int = 2, scale: float = 1.0) -> str:
    """The half-width of an interval, or ``?`` when it is unknown (fewer than two samples)."""
    return "?" if not math.isfinite(half_width) else fixed(half_width * scale, digits)


def pm(est: Interval, digits: int = 2, scale: float = 1.0, sign: str = PLUS_MINUS) -> str:
    """``mean ± half-width`` of an interval (``sign="+/-"`` in verdicts)."""
    return f"{fixed(est.mean * scale, digits)} {sign} {spread(est.half_width, digits, scale)}"


def times(value: float, half_width: float, digits: int | None = None) -> str:
    """A ratio with its uncertainty, ``9.7x +/- 0.4``; fewer decimals as it grows."""
    if digits is None:
        digits = 0 if value >= 20 else 1 if value >= 2 else 2
    return f"{value:.{digits}f}x +/- {spread(half_width, digits)}"


def per_task(jobs: float) -> str:
    """Jobs per pool/Celery task: "1", "2.5", "227"; "-" where no job went in a task (a hybrid run
    of user jobs, which all ran on the loop)."""
    if jobs <= 0:
        return "-"
    return f"{jobs:,.0f}" if jobs >= 10 else f"{jobs:.3g}"


def pct(share: float) -> str:
    """A share of 1 as a whole percentage: ``0.25`` -> ``25%``."""
    return f"{share:.0%}"


def change(pct_change: float) -> str:
    """A signed relative change: ``+3.1%``."""
    return f"{pct_change:+.1f}%"


def duration_us(us: float) -> str:
    """Microseconds in the largest unit that keeps the figure readable: µs, ms or s."""
    if us >= 1_000_000:
        return f"{us / 1e6:,.2f} s"
    return f"{us / 1000:,.2f} ms" if us >= 1000 else f"{us:,.2f} µs"


def size_kib(kib: float) -> str:
    """KiB in KiB, MiB or GiB, two decimals."""
    if kib >= 1024**2:
        return f"{kib / 1024**2:,.2f} GiB"
    return f"{kib / 1024:,.2f} MiB" if kib >= 1024 else f"{kib:,.2f} KiB"


def size_mib(mib: float) -> str:
    """MiB for large totals (extrapolations): whole MiB, GiB from 10 GiB, TiB from 1 TiB."""
    if mib >= 1024**2:
        return f"{mib / 1024**2:,.1f} TiB"
    return f"{mib / 1024:,.1f} GiB" if mib >= 10 * 1024 else f"{mib:,.0f} MiB"


def count(n: int) -> str:
    """A count with thousands separators."""
    return f"{n:,}"


def plural(n: int | None, word: str, many: str | None = None) -> str:
    """``word`` as it goes after the number ``n``: worker, workers; process, processes."""
    return word if n == 1 else many or word + "s"


def ratio_range(value: float, low: float, high: float) -> str:
    """A ratio of geometric means with its (asymmetric) 95 % interval: ``1.40x (1.31-1.52)``."""
    digits = 0 if value >= 20 else 1 if value >= 2 else 2
    if not math.isfinite(high) or high <= 0:
        return f"{value:.{digits}f}x (interval unknown)"
    while digits < 3 and f"{low:.{digits}f}" == f"{high:.{digits}f}":  # a narrow interval still shows
        digits += 1
    return f"{value:.{digits}f}x ({low:.{digits}f}-{high:.{digits}f})"


def small_pct(share: float) -> str:
    """A small share as a percentage with the digits it needs: 0.04 -> 4 %, 0.0002 -> 0.02 %."""
    value = 100 * share
    if value < 0.0001:
        return "0 %"
    digits = 0 if value >= 10 else 1 if value >= 1 else 2 if value >= 0.01 else 4
    return f"{value:.{digits}f} %"
