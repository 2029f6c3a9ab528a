"""The fast tier: no Redis, Celery, Docker or browser, and no process of its own. Executors run
in-process (the stub, async, thread); a test that asks for Redis or the HTTP target fails at once."""

from __future__ import annotations

import pytest

from runner.engine.services import LocalServices
from workers import calibration
from workers.calibration import Calibration

# Fixed units, so no test spends calibration time (jobs here never burn CPU by units anyway).
CALIBRATION = Calibration(spin_iterations_per_ms=1000.0, hash_rounds_per_ms=1.0)


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: LocalServices) -> str:
        raise AssertionError("the fast tier must not start Redis or the HTTP target")

    monkeypatch.setattr(LocalServices, "redis_url", refuse)
    monkeypatch.setattr(LocalServices, "target_url", refuse)
    monkeypatch.setattr(calibration, "calibrate", lambda: CALIBRATION)  # 0.2 s saved per CLI run
