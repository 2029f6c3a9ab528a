"""Ctrl-C, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT during a run: stop dispatching, give
in-flight jobs a moment, account for the rest, clean up every process, and exit 128 + the signal's
number (130 SIGINT, 143 SIGTERM, 129 SIGHUP, 131 SIGQUIT).

``trap()`` replaces those signals' handlers while it is active (main thread only; elsewhere
it changes nothing). A signal only records itself and wakes whoever registered with ``on_signal``:
the coordinator stops dispatch at its own safe points, so executors and embedded services are
always stopped by the normal ``finally`` paths. Traps nest -- the outermost one (a whole ``submit``
or bench sweep) owns the handlers and inner ones share its state -- so a signal between two runs of
a sweep is not lost. The state is process-wide because signal handlers are.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class StopRequest:
    """What the user asked for: the first signal received (if any) and how many arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self._listeners: list[Callable[[], object]] = []

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + (self.signum or 0)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.count += 1
        for listener in list(self._listeners):
            listener()

    @contextlib.contextmanager
    def on_signal(self, listener: Callable[[], object]) -> Iterator[None]:
        """Call ``listener`` (from the signal handler: it must only schedule work) on every signal."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)


_active: StopRequest | None = None


@contextlib.contextmanager
def trap() -> Iterator[StopRequest]:
    """Catch SIGINT/SIGTERM/SIGHUP/SIGQUIT for the duration; yields the (possibly shared) stop request."""
    global _active
    if _active is not None:
        yield _active
        return
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signals can only be handled in the main thread; keep their defaults
        return
    previous = {sig: signal.signal(sig, request._handle) for sig in _SIGNALS}
    _active = request
    try:
        yield request
    finally:
        _active = None
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
