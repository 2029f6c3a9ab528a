"""Scratch files and folders of a run, named so that a later run can tell they are stale.

Every temporary path runner makes is ``<tmp>/runner-<what>-<pid>-<random>``, created private (0700
folders, 0600 files). A coordinator killed with SIGKILL cannot remove its own; the next start calls
``remove_stale``, which deletes those of this user whose owning process is gone. Versions before
0.1 named them ``runner-<what>-<random>``, with no pid to ask: those go once a day old.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

_NAME = re.compile(r"^runner-[a-z]+-(?P<pid>\d+)-")
_OLD_NAME = re.compile(r"^runner-(celery|redis|gevent)-[a-z0-9_]{8}(\.log)?$")  # mkdtemp's 8 characters
_OLD_AGE_S = 86_400


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
    for path in folder.glob("runner-*-*"):
        match = _NAME.match(path.name)
        try:
            if path.is_symlink() or path.lstat().st_uid != os.getuid():
                continue
            if match is None:
                if not _OLD_NAME.match(path.name) or time.time() - path.lstat().st_mtime < _OLD_AGE_S:
                    continue
            elif _alive(int(match["pid"])):
                continue
        except OSError:
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
