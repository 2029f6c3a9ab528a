"""Fixtures of the fault-injection suite (helpers live in ``tests.faults.helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.helpers import RestartableRedis


@pytest.fixture()
def restartable_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableRedis]:
    """A Redis of the test's own, exported as REDIS_URL, that the test may kill and start again."""
    server = RestartableRedis()
    server.start()
    monkeypatch.setenv("REDIS_URL", server.url)
    try:
        yield server
    finally:
        server.close()
