"""Children that die with their parent, even when the parent is SIGKILLed and cannot stop them.

``die_with_parent`` is a ``preexec_fn``: in the forked child, before exec, it asks Linux to send
SIGKILL when the parent goes (``prctl(PR_SET_PDEATHSIG)``), then closes the race where the parent
died between fork and prctl. Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent is already gone: we were handed to init
        os.kill(os.getpid(), signal.SIGKILL)
