"""The one exception root of runner, and how each branch reaches the user.

    RunnerError                 anything runner raises on purpose
     ├── InputError             bad flags or spec file      -> one line on stderr, exit 2
     ├── ServiceError           Redis, target or workers    -> one line saying what to start, exit 1
     └── JobFailed              a job ended ``failed``; ``reason`` is what the ledger records

Backend errors (redis, kombu, aiohttp, OSError) are mapped onto these with ``raise ... from exc``.
"""

from __future__ import annotations


class RunnerError(Exception):
    """Root of every error runner raises on purpose."""


class InputError(RunnerError):
    """The user gave a value we cannot use; the message names the field."""


class ServiceError(RunnerError):
    """A service runner needs is missing or unreachable; the message says what to start or set."""


class JobFailed(RunnerError):
    """A job failed on a worker that reports failures as data (e.g. Celery)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
