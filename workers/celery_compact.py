"""A Celery batch's one reply, as bytes (``workers.celery_bulk``).

Not a JSON list of numbers: encoding and parsing a few thousand floats as JSON text cost more than
running the no-op jobs they time. The reply is a zero byte, a JSON header ``{"first", "size",
"worker", "failed": {index: reason}, "cpu"}``, a zero byte (JSON text never holds one), then
``size`` service times as little-endian doubles and, where ``"cpu"`` is true, as many CPU times
(the cpu and hash kinds', for the calibration check). A job's own reply is JSON text, ``{...}``,
so the first byte tells them apart.
"""

from __future__ import annotations

import json
import sys
from array import array
from typing import Any

from workers.bulk import Batch

COMPACT_MARK = b"\x00"
_SWAP = sys.byteorder != "little"


def _little(values: array[float]) -> bytes:
    if not _SWAP:
        return values.tobytes()
    swapped = array("d", values)
    swapped.byteswap()
    return swapped.tobytes()


def compact_reply(
    batch: Batch, worker: str, service: array[float], failed: dict[int, str], cpu: array[float] | None = None
) -> bytes:
    """The one reply of a batch's run, as the worker pushes it."""
    head = {"first": batch.first_id, "size": batch.size, "worker": worker}
    head |= {"failed": {str(k): v for k, v in failed.items()}, "cpu": cpu is not None}
    tail = _little(service) + (b"" if cpu is None else _little(cpu))
    return COMPACT_MARK + json.dumps(head).encode() + COMPACT_MARK + tail


def read_compact(raw: bytes, sent_ids: int) -> dict[str, Any]:
    """A compact reply as a dict (``service_s`` and ``cpu_s`` as arrays); ValueError saying what is wrong."""
    head_text, mark, tail = raw[1:].partition(COMPACT_MARK)
    try:
        head = json.loads(head_text) if mark else None
    except (ValueError, UnicodeDecodeError):
        head = None
    if not isinstance(head, dict):
        raise ValueError("a compact reply without its JSON header")
    first, size, cpu = head.get("first"), head.get("size"), head.get("cpu")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, size)) or not isinstance(cpu, bool):
        raise ValueError("no integer 'first' and 'size', or no 'cpu'")
    assert isinstance(first, int) and isinstance(size, int)
    if first < 0 or size < 1 or first + size > sent_ids:
        raise ValueError(f"jobs {first} to {first + size - 1} out of range (0 to {sent_ids - 1} were sent)")
    if not isinstance(head.get("worker"), str) or len(tail) != 8 * size * (2 if cpu else 1):
        raise ValueError("no 'worker', or not one service time (and CPU time) per job")
    failed = head.get("failed")
    if not isinstance(failed, dict) or not all(
        isinstance(k, str) and k.isdigit() and int(k) < size and isinstance(v, str) for k, v in failed.items()
    ):
        raise ValueError("'failed' is not an object of job index -> reason")
    times = array("d", tail)
    if _SWAP:
        times.byteswap()
    reply = head | {"service_s": times[:size] if cpu else times}
    return reply | {"cpu_s": times[size:]} if cpu else reply
