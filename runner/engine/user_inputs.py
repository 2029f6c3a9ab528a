"""User jobs' inputs (``--inputs FILE.jsonl | MODULE:GENERATOR``), streamed, never loaded whole.

A JSON-lines file gives one JSON value per line (blank lines are skipped); a generator reference
names a function that takes no argument and returns an iterable (a generator function, say). The
i-th user job of a run gets the i-th input: when the run has more user jobs than there are inputs,
they start again from the first (the file is read again, the function called again), so ``--jobs
N`` always means N jobs. Without ``--jobs`` the run has as many jobs as there are inputs, counted
by one streamed pass before the run (a generator must then end); with ``--jobs N``, that pass reads
the first N only. Either way every line a run reads is checked before any job runs. Without
``--inputs`` each call gets the job's index.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workers.errors import InputError
from workers.user_jobs import add_paths, function, import_module, parse_ref

MAX_INPUTS = 100_000_000  # the most jobs a run may have (spec.BOUNDS["jobs"])
_SHOWN = 60


class Inputs:
    """One source of inputs; ``stream()`` yields them in order, cycling, for as long as asked."""

    def __init__(self, source: str, paths: tuple[str, ...] = ()) -> None:
        self.source = source
        self._paths = paths
        self._file: Path | None = None
        looks_like_ref = ":" in source and not os.path.exists(source) and "/" not in source.split(":")[0]
        if not looks_like_ref:
            path = Path(source)
            if not path.is_file():
                why = "no such file" if not path.exists() else "not a regular file"
                raise InputError(f"--inputs: cannot read {source}: {why}")
            try:
                with path.open("rb"):
                    pass
            except OSError as exc:
                raise InputError(f"--inputs: cannot read {source}: {exc.strerror or exc}") from None
            self._file = path
        else:
            ref = parse_ref(source, "--inputs", pair=False)
            add_paths(paths)
            self._make = function(import_module(ref.module, "--inputs"), ref, ref.names[0], "--inputs")

    def _once(self) -> Iterator[Any]:
        if self._file is not None:
            yield from _lines(self._file)
            return
        try:
            produced = self._make()
            iterator = iter(produced)
        except TypeError as exc:
            raise InputError(f"--inputs: {self.source} must return an iterable of inputs: {exc}") from None
        yield from iterator

    def first(self) -> Any:
        for value in self._once():
            return value
        raise InputError(f"--inputs: {self.source} gives no inputs")

    def count(self, limit: int | None = None) -> int:
        """How many inputs there are, up to ``limit``: one streamed pass before the run, which
        checks every line a run of ``limit`` jobs will read (so no job meets a broken line)."""
        n = 0
        for _ in self._once():
            n += 1
            if limit is not None and n >= limit:
                break
            if n > MAX_INPUTS:
                raise InputError(f"--inputs: {self.source} gives more than {MAX_INPUTS} inputs; pass --jobs N")
        if n == 0:
            raise InputError(f"--inputs: {self.source} gives no inputs")
        return n

    def stream(self) -> Iterator[Any]:
        """Every input, then every input again, and so on."""
        return itertools.chain.from_iterable(self._once() for _ in itertools.repeat(None))


def _lines(path: Path) -> Iterator[Any]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                shown = raw[:_SHOWN].decode(errors="replace").strip()
                raise InputError(f"--inputs: {path} line {number} is not JSON ({exc}): {shown!r}") from None
            except RecursionError:
                raise InputError(f"--inputs: {path} line {number} nests too deeply") from None
