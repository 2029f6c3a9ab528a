"""The one exception root of runner, and how each branch reaches the user.

    RunnerError                 anything runner raises on purpose
     ├── InputError             bad flags or spec file      -> one line on stderr, exit 2
     ├── ServiceError           Redis, target or workers    -> one line saying what to start, exit 1
     ├── RunStopped             a run ended early (signal, lost service) -> partial result, one line,
     │                          exit 130 / 143 for SIGINT / SIGTERM, 1 otherwise
     ├── JobFailed              a job ended ``failed``; ``reason`` is what the ledger records
     ├── HttpStatusError        an http job's GET answered a non-2xx status -> that job ``failed``
     └── MissingExtra           an optional dependency is not installed -> one line naming the extra, exit 1

Backend errors (redis, kombu, aiohttp, OSError) are mapped onto these with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class RunnerError(Exception):
    """Root of every error runner raises on purpose."""


class InputError(RunnerError):
    """The user gave a value we cannot use; the message names the field."""


class ServiceError(RunnerError):
    """A service runner needs is missing or unreachable; the message says what to start or set."""


class RunStopped(RunnerError):
    """A run stopped before its workload was done. ``result`` is the partial result document (every
    dispatched job accounted for; runner's typed result, opaque here), or None when it stopped
    before any job was sent."""

    def __init__(self, message: str, exit_code: int, result: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


class JobFailed(RunnerError):
    """A job failed on a worker that reports failures as data (e.g. Celery)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpStatusError(RunnerError):
    """The target answered an http job with a non-2xx status; the job fails, the run goes on."""


class MissingExtra(RunnerError):
    """An optional part of runner is not installed; the message names the extra to install."""
