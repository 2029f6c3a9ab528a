"""Strict readers for what users hand in: numbers as text, and input files.

Numbers: plain ASCII decimal only. Python's ``int()``/``float()`` also take ``1_0``, Arabic-Indic
digits and surrounding whitespace, which a typo or a pasted value can produce without the user
meaning them; subnormal floats (``5e-324``) are rejected too, since no setting of runner means one.

Files: regular files only, at most ``MAX_INPUT_BYTES``, checked on a descriptor opened without
blocking, so a FIFO, a device or ``/dev/zero`` fails at once instead of hanging or filling memory.
"""

from __future__ import annotations

import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from workers.errors import InputError

MAX_INPUT_BYTES = 1 << 20  # spec and sweep files are a few lines; a megabyte is generous
_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error message stays one readable line whatever was given."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_int(text: str) -> int | None:
    """The whole number ``text`` spells in plain ASCII digits, or None."""
    return int(text) if _INT.fullmatch(text) else None


def parse_float(text: str) -> float | None:
    """The number ``text`` spells in plain ASCII decimal notation, or None (no inf, nan, ``1_0``)."""
    return float(text) if _FLOAT.fullmatch(text) else None


def is_subnormal(value: float) -> bool:
    return value != 0.0 and math.isfinite(value) and abs(value) < sys.float_info.min


def number(flag: str, value: Any, whole: bool, low: float, high: float) -> int | float:
    """``value`` (a number, or text from a flag, the environment or a file) as an int or float in
    [low, high]; InputError naming ``flag`` otherwise."""
    wanted = "a whole number" if whole else "a number"
    result: int | float | None = None
    if isinstance(value, str):
        result = parse_int(value) if whole else parse_float(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        result = value if whole else float(value)
    elif isinstance(value, float) and (not whole or value.is_integer()):
        result = int(value) if whole else value
    if result is None:
        raise InputError(f"{flag}: expected {wanted} in plain digits, got {shown(value)}")
    if isinstance(result, float) and (not math.isfinite(result) or is_subnormal(result)):
        raise InputError(f"{flag}: expected a finite number, got {shown(value)}")
    if not low <= result <= high:
        raise InputError(f"{flag}: {shown(value)} is out of range ({plain(low)} to {plain(high)})")
    return result


def plain(bound: float) -> str:
    """A range's end as people write it: 100,000,000 rather than 1e+08; 0.001 as it is."""
    return f"{int(bound):,}" if float(bound).is_integer() and abs(bound) >= 1000 else f"{bound:g}"


def read_text_file(path: Path, flag: str, limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes, or InputError naming ``flag``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{flag}: {path} is not a regular file")
        if info.st_size > limit:
            raise InputError(f"{flag}: {path} is {info.st_size} bytes; at most {limit} are read")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew since the check
        raise InputError(f"{flag}: {path} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{flag}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
