"""GIL-releasing: compress and fingerprint blocks of a log archive with zlib and hashlib.

Each job takes one 256 KiB block of a 2 MiB archive, compresses it (zlib, level 6) and hashes it
(SHA-256). Both run in C with the GIL released for buffers this size, so threads of one process
use every core -- as processes do, without the cost of shipping work between processes. One event
loop runs the jobs one after the other on one core.

The archive is built once per worker process, before timing, by ``--setup checksums:load_archive``
(built on first use without it). Each input is a block number: the job's index when no
``--inputs`` is given.
"""

from __future__ import annotations

import hashlib
import random
import zlib

BLOCK = 256 * 1024
ARCHIVE_SIZE = 2 * 1024 * 1024
_archive: bytes | None = None


def make_archive(size: int = ARCHIVE_SIZE, seed: int = 7) -> bytes:
    """Log-like text that compresses about 4:1, the same on every worker."""
    rng = random.Random(seed)
    paths = [f"/api/v1/{word}" for word in ("orders", "users", "carts", "search", "health", "items")]
    lines, size_now = [], 0
    while size_now < size:
        line = (
            f"2026-11-28T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z "
            f"{rng.choice(paths)} {rng.choice((200, 200, 200, 201, 404, 500))} {rng.randrange(1, 900)}ms "
            f"req={rng.getrandbits(64):016x}\n"
        )
        lines.append(line)
        size_now += len(line)
    return "".join(lines).encode()[:size]


def load_archive() -> None:
    """The per-worker setup: build the archive now, so no job pays for it."""
    global _archive
    _archive = make_archive()


def block_digest(block: int) -> dict[str, object]:
    """Compress and hash one block of the archive; return its fingerprint and compression ratio."""
    if _archive is None:
        load_archive()
    assert _archive is not None
    start = (block * BLOCK) % (len(_archive) - BLOCK + 1)
    data = memoryview(_archive)[start : start + BLOCK]
    compressed = zlib.compress(data, 6)
    return {
        "block": block,
        "sha256": hashlib.sha256(data).hexdigest()[:16],
        "ratio": round(len(data) / len(compressed), 2),
    }
