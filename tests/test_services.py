"""The embedded services and the HTTP target, really started."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from runner.engine.ledger import DONE, FAILED, Ledger
from runner.engine.metrics import Latency
from runner.engine.services import LocalServices
from workers.calibration import calibrate
from workers.clients import redact


def test_target_serves_delay_and_caps_it() -> None:
    with LocalServices() as services:
        url = services.target_url()
        with urllib.request.urlopen(f"{url}/delay/5") as response:
            assert json.loads(response.read()) == {"delay_ms": 5.0}
        with urllib.request.urlopen(f"{url}/delay/0?size=1000") as response:
            assert len(response.read()) == 1000
        for bad in ("/delay/999999999", "/delay/abc", "/delay/1?size=999999999"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(url + bad)
            assert info.value.code == 400


def test_target_serves_pages_of_orders() -> None:
    with LocalServices() as services:
        url = services.target_url()
        with urllib.request.urlopen(f"{url}/orders?page=3&per_page=7&delay_ms=1") as response:
            body = json.loads(response.read())
        with urllib.request.urlopen(f"{url}/orders?page=3&per_page=7") as response:
            assert json.loads(response.read()) == body  # seeded by the page
        assert body["page"] == 3 and len(body["orders"]) == 7
        assert all(order["items"] and order["region"] in ("eu", "us", "apac", "latam") for order in body["orders"])
        for bad in ("/orders?per_page=0", "/orders?per_page=501", "/orders?page=-1", "/orders?delay_ms=x"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(url + bad)
            assert info.value.code == 400


def test_embedded_redis_answers_and_stops() -> None:
    import redis

    services = LocalServices()
    url = services.redis_url()
    client = redis.Redis.from_url(url)
    assert client.ping()
    client.close()
    services.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_calibration_is_positive_and_sizes_jobs() -> None:
    cal = calibrate()
    assert cal.spin_iterations_per_ms > 100 and cal.hash_rounds_per_ms > 0
    assert cal.units("cpu", 10) == round(10 * cal.spin_iterations_per_ms)
    assert cal.units("sleep", 10) == 0 and cal.units("hash", 0) == 1


def test_ledger_counts_and_lost() -> None:
    ledger = Ledger(4)
    for job_id in range(4):
        ledger.submit(job_id)
    ledger.finish(0, DONE, "sleep", 0.01, worker="a")
    ledger.finish(1, FAILED, "fail", 0.01, reason="boom")
    ledger.add_extra_runs({0: 1})
    assert ledger.summary() == {"submitted": 4, "done": 1, "failed": 1, "timed_out": 0, "lost": 2, "duplicates": 1}


def test_latency_percentiles() -> None:
    lat = Latency()
    for ms in range(1, 101):
        lat.record(ms / 1000)
    summary = lat.summary()
    assert summary["p50"] == pytest.approx(50, rel=0.01)
    assert summary["p99"] == pytest.approx(99, rel=0.01)
    assert summary["max"] == pytest.approx(100, rel=0.01)


def test_redact_hides_passwords() -> None:
    assert redact("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"
