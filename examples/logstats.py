"""GIL-bound: parse a batch of access-log lines in pure Python and summarise it.

Each job parses a few thousand lines -- split, convert, count, sort -- entirely in Python
bytecode, which holds the GIL the whole time: threads of one process take turns on one core, and
an event loop runs the jobs one after the other. Only separate processes (a pool, Celery nodes)
put a second core to work.

Inputs come from the generator ``logstats:batches`` (``--inputs logstats:batches``): one
``{"start": ..., "count": ...}`` object per job, passed as keyword arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

LINES = 20_000
BATCH = 3_000


def make_lines(count: int = LINES, seed: int = 11) -> list[str]:
    """Access-log lines (``ip - - [time] "GET /path HTTP/1.1" status bytes ms``), the same everywhere."""
    rng = random.Random(seed)
    paths = ("/", "/login", "/api/orders", "/api/orders/42", "/api/users", "/static/app.js", "/search?q=x")
    return [
        f"10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [28/Nov/2026:11:{rng.randrange(60):02d}:"
        f'{rng.randrange(60):02d} +0000] "{rng.choice(("GET", "GET", "GET", "POST"))} {rng.choice(paths)} HTTP/1.1" '
        f"{rng.choice((200, 200, 200, 200, 304, 404, 500))} {rng.randrange(100, 50_000)} {rng.randrange(1, 2_000)}"
        for _ in range(count)
    ]


# Built at import, which runner does once in every worker process before timing starts.
_LOG = make_lines()


def batches(jobs: int = 500, count: int = BATCH) -> Iterator[dict[str, int]]:
    """One batch of ``count`` lines per job, walking through the log."""
    for n in range(jobs):
        yield {"start": (n * count) % LINES, "count": count}


def summarise(start: int, count: int = BATCH) -> dict[str, object]:
    """Requests, errors, bytes and latency percentiles per path, over ``count`` lines from ``start``."""
    stats: dict[str, list[int]] = {}  # path -> [requests, errors, bytes]
    latencies: dict[str, list[int]] = {}
    for n in range(start, start + count):
        line = _LOG[n % len(_LOG)]
        _client, _, tail = line.partition('"')
        request, _, rest = tail.partition('"')
        method, path, _protocol = request.split(" ")
        status, size, ms = (int(field) for field in rest.split())
        path = path.split("?", 1)[0]
        if path.startswith("/api/orders/"):
            path = "/api/orders/{id}"
        row = stats.setdefault(f"{method} {path}", [0, 0, 0])
        row[0] += 1
        row[1] += status >= 500
        row[2] += size
        latencies.setdefault(f"{method} {path}", []).append(ms)
    summary: dict[str, object] = {}
    for key, (requests, errors, total_bytes) in sorted(stats.items()):
        ordered = sorted(latencies[key])
        summary[key] = {
            "requests": requests,
            "error_pct": round(100 * errors / requests, 1),
            "kib": total_bytes // 1024,
            "p50_ms": ordered[len(ordered) // 2],
            "p99_ms": ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)],
        }
    return summary
