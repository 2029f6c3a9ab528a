"""Scratch files and folders of a run, named so that a later run can tell they are stale.

Every temporary path runner makes is ``<tmp>/runner-<what>-<pid>-<random>``, created private (0700
folders, 0600 files). A coordinator killed with SIGKILL cannot remove its own; the next start calls
``remove_stale``, which deletes those of this user whose owning process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"^runner-[a-z]+-(?P<pid>\d+)-")


def scratch_dir(what: str) -> str:
    return tempfile.mkdtemp(prefix=f"runner-{what}-{os.getpid()}-")


def scratch_file(what: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"runner-{what}-{os.getpid()}-", suffix=suffix)
    os.close(fd)
    return path


def remove_stale(root: str | None = None) -> list[Path]:
    """Delete scratch paths of dead runs of this user; returns what was removed."""
    removed: list[Path] = []
    folder = Path(root or tempfile.gettempdir())
    for path in folder.glob("runner-*-*-*"):
        match = _NAME.match(path.name)
        try:
            if match is None or path.is_symlink() or path.lstat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _alive(int(match["pid"])):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
