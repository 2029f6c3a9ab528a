"""I/O-bound: fetch a page of orders from an HTTP API and total the paid revenue by region.

Each job waits about 50 ms on the network (the target's ``delay_ms``) and then adds up a few dozen
numbers, so what decides throughput is how many requests can wait at once, cheaply: an event loop
holds hundreds for the cost of one thread.

Two forms of one kind: ``region_totals`` (``async def``, aiohttp) for the event loop and hybrid,
``region_totals_sync`` (``def``, urllib3) for threads, processes, Celery and gevent. The API is
``runner target`` at ``TARGET_URL`` (default ``http://127.0.0.1:8080``); each input is a page number
(``orders_pages.jsonl``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import urllib3

DELAY_MS = 50  # how long the API takes to answer, as a real one might
PER_PAGE = 50
_TIMEOUT_S = 30.0


def page_url(page: int, per_page: int = PER_PAGE, delay_ms: float = DELAY_MS) -> str:
    base = os.environ.get("TARGET_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/orders?page={page}&per_page={per_page}&delay_ms={delay_ms:g}"


def totals(orders: list[dict[str, Any]]) -> dict[str, int]:
    """Paid revenue in cents per region."""
    by_region: dict[str, int] = {}
    for order in orders:
        if order["status"] == "paid":
            cents = sum(item["qty"] * item["unit_cents"] for item in order["items"])
            by_region[order["region"]] = by_region.get(order["region"], 0) + cents
    return dict(sorted(by_region.items()))


# --- sync: one connection pool per process, shared by its threads --------------------------------

_pool: urllib3.PoolManager | None = None


def get_page_sync(page: int, per_page: int = PER_PAGE, delay_ms: float = DELAY_MS) -> list[dict[str, Any]]:
    global _pool
    if _pool is None:  # made on first use, so a forked worker never inherits a parent's sockets
        _pool = urllib3.PoolManager(maxsize=256, timeout=_TIMEOUT_S, retries=False)
    response = _pool.request("GET", page_url(page, per_page, delay_ms))
    if response.status != 200:
        raise RuntimeError(f"GET /orders answered {response.status}")
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def region_totals_sync(page: int) -> dict[str, int]:
    return totals(get_page_sync(page))


# --- async: one aiohttp session per event loop ---------------------------------------------------

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
_holders: dict[asyncio.AbstractEventLoop, AsyncIterator[aiohttp.ClientSession]] = {}


async def _hold_session(loop: asyncio.AbstractEventLoop) -> AsyncIterator[aiohttp.ClientSession]:
    # An open async generator is closed by the loop when it shuts down (asyncio.run and
    # asyncio.Runner call loop.shutdown_asyncgens), which closes the session with it: no
    # "Unclosed client session" at exit, and no teardown hook needed.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)) as session:
        _sessions[loop] = session
        try:
            yield session
        finally:
            _sessions.pop(loop, None)
            _holders.pop(loop, None)


async def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    found = _sessions.get(loop)
    if found is None or found.closed:
        holder = _hold_session(loop)
        _holders[loop] = holder
        found = await anext(holder)
    return found


async def get_page(page: int, per_page: int = PER_PAGE, delay_ms: float = DELAY_MS) -> list[dict[str, Any]]:
    async with (await session()).get(page_url(page, per_page, delay_ms)) as response:
        if response.status != 200:
            raise RuntimeError(f"GET /orders answered {response.status}")
        orders: list[dict[str, Any]] = (await response.json())["orders"]
        return orders


async def region_totals(page: int) -> dict[str, int]:
    return totals(await get_page(page))
