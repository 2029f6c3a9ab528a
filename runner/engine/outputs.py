"""Writing output files so that they are whole or absent, and never lost with the measurement.

- ``atomic_write``: a temporary file in the same folder, fsynced, renamed over the target (and the
  folder fsynced): a reader sees the old file or the new one, never half of one, even after a crash
  or a full disk.
- ``open_append_only``: the ledger's file, never opened through a symbolic link (``O_NOFOLLOW``).
- ``prepare_out_dir``: ``--out`` checked by creating a file in it, before anything is measured
  (``os.access`` says yes to root on a read-only mount).
- ``OutLock``: one run per ``--out`` at a time (``fcntl`` lock on ``--out/.runner.lock``).
- ``save_fallback``: where a result goes when its own ``--out`` cannot take it (the user's temp
  folder), so a full disk never throws a measurement away.

Errors: a path that cannot be a folder (a file on the way) is bad input (``InputError``, exit 2);
a folder that exists but cannot be written (read-only, full, no permission) is ``OutputError``
(exit 1), which carries the measured result when there is one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from workers.errors import InputError, RunnerError

LOCK_NAME = ".runner.lock"
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}


class OutputError(RunnerError):
    """An output could not be written (exit 1). ``result`` is the measured result, if any, so the
    caller can still keep it."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all; OutputError naming the file otherwise."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; an output file gets the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_why(exc)}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; some file systems refuse to fsync a folder, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_no_follow(path: Path) -> IO[str]:
    """``path`` opened for writing (truncated), refusing a symbolic link at the last component: a
    link planted in a shared ``--out`` must not redirect runner's writes elsewhere."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(f"{path} is a symbolic link; runner does not write through links") from None
        raise OutputError(f"cannot write {path}: {_why(exc)}") from None
    return os.fdopen(fd, "w", encoding="utf-8")


def prepare_out_dir(out_dir: Path, flag: str = "--out") -> None:
    """Create ``out_dir`` and prove a file can be written there, before any measurement."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{flag}: {out_dir} exists and is not a folder") from None
    except OSError as exc:
        if exc.errno in _NOT_A_FOLDER:
            raise InputError(f"{flag}: cannot create {out_dir}: {_why(exc)}") from None
        raise OutputError(f"{flag}: cannot create {out_dir}: {_why(exc)}") from None
    if not out_dir.is_dir():
        raise InputError(f"{flag}: {out_dir} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=out_dir) as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise OutputError(f"{flag}: cannot write in {out_dir}: {_why(exc)}") from None


class OutLock:
    """Holds ``out_dir/.runner.lock`` for the life of a run; a second run on the same folder is
    refused at once (one line, exit 1) instead of interleaving its files with the first's."""

    def __init__(self, out_dir: Path, flag: str = "--out") -> None:
        self._path = out_dir / LOCK_NAME
        self._flag = flag
        self._fd: int | None = None

    def __enter__(self) -> OutLock:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(f"{self._flag}: cannot lock {self._path}: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise OutputError(
                f"{self._flag}: {self._path.parent} is in use by another runner{by}; use another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the lock; the empty file stays, harmless
            self._fd = None


def save_fallback(stem: str, text: str) -> Path | None:
    """Save ``text`` under the user's temp folder when its own place failed; None if that fails too."""
    name = f"saved-{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    path = Path(tempfile.gettempdir()) / name
    try:
        return atomic_write(path, text)
    except OutputError:
        return None


def write_or_save(path: Path, text: str, stem: str, on_stdout: bool = False) -> Path:
    """``atomic_write``, and when it fails, the text saved by ``save_fallback``: the OutputError
    then names where it went -- or, when even that fails, says it is on stdout (printed there now,
    unless ``on_stdout`` says the caller prints it anyway, as ``--json`` does)."""
    try:
        return atomic_write(path, text)
    except OutputError as exc:
        saved = save_fallback(stem, text)
        if saved is not None:
            raise OutputError(f"{exc}; the measurement was saved to {saved}") from None
        if not on_stdout:
            print(text, flush=True)  # the last place left
        raise OutputError(f"{exc}; the measurement is printed on stdout") from None
