"""``runner target``: the HTTP server that ``http`` jobs call, like httpbin's ``/delay``.

``GET /delay/{ms}`` waits ``ms`` milliseconds (capped) and answers a small JSON body, or
``?size=N`` bytes (capped). ``GET /orders?page=P&per_page=N&delay_ms=D`` waits ``D`` ms and answers
a page of N made-up orders, the same for the same page (seeded by it), for jobs that fetch real-looking
JSON and aggregate it (examples/). ``GET /health`` answers ``ok``. Caps keep a mistyped job -- or anyone
else who can reach the port -- from tying the server up: delay at most 60 s, body at most 1 MiB, at
most ``max_concurrent`` requests in service at once (the rest get 503 straight away, so memory and
sockets stay bounded), and idle keep-alive connections closed after 15 s.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

from runner.engine.spec import TARGET_MAX_DELAY_MS

MAX_DELAY_MS = TARGET_MAX_DELAY_MS
MAX_SIZE = 1 << 20
MAX_PER_PAGE = 500  # orders per page: about 60 KiB of JSON
MAX_PAGE = 1_000_000
REGIONS = ("eu", "us", "apac", "latam")
MAX_CONCURRENT = 4096  # default; above the coordinator's usual --concurrency
_IN_SERVICE = web.AppKey("in_service", list[int])


async def _delay(request: web.Request) -> web.Response:
    try:
        ms = float(request.match_info["ms"])
        size = int(request.query.get("size", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="delay must be a number of milliseconds, size a whole number") from None
    if not 0 <= ms <= MAX_DELAY_MS or not 0 <= size <= MAX_SIZE:
        raise web.HTTPBadRequest(text=f"delay must be 0..{MAX_DELAY_MS} ms and size 0..{MAX_SIZE} bytes")
    await asyncio.sleep(ms / 1000.0)
    if size:
        return web.Response(body=b"x" * size, content_type="application/octet-stream")
    return web.json_response({"delay_ms": ms})


async def _orders(request: web.Request) -> web.Response:
    try:
        page = int(request.query.get("page", "0"))
        per_page = int(request.query.get("per_page", "50"))
        ms = float(request.query.get("delay_ms", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="page and per_page must be whole numbers, delay_ms a number") from None
    if not (0 <= page <= MAX_PAGE and 1 <= per_page <= MAX_PER_PAGE and 0 <= ms <= MAX_DELAY_MS):
        raise web.HTTPBadRequest(
            text=f"page must be 0..{MAX_PAGE}, per_page 1..{MAX_PER_PAGE}, delay_ms 0..{MAX_DELAY_MS}"
        )
    await asyncio.sleep(ms / 1000.0)
    return web.Response(body=_orders_body(page, per_page), content_type="application/json")


@functools.lru_cache(maxsize=256)  # at most ~15 MiB; a job that cycles over pages costs the server no CPU
def _orders_body(page: int, per_page: int) -> bytes:
    return json.dumps({"page": page, "orders": make_orders(page, per_page)}).encode()


def make_orders(page: int, per_page: int) -> list[dict[str, object]]:
    """A page of made-up orders, the same for the same page and size."""
    rng = random.Random(page)
    orders: list[dict[str, object]] = []
    for n in range(per_page):
        items = [
            {"sku": f"SKU-{rng.randrange(1000):03d}", "qty": rng.randint(1, 5), "unit_cents": rng.randrange(99, 20_000)}
            for _ in range(rng.randint(1, 4))
        ]
        orders.append(
            {
                "id": page * MAX_PER_PAGE + n,
                "customer": f"C{rng.randrange(100_000):05d}",
                "region": rng.choice(REGIONS),
                "status": rng.choices(("paid", "refunded", "pending"), weights=(85, 5, 10))[0],
                "items": items,
            }
        )
    return orders


async def _health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(max_concurrent: int = MAX_CONCURRENT) -> web.Application:
    @web.middleware
    async def cap(request: web.Request, handler: Handler) -> web.StreamResponse:
        in_service = request.app[_IN_SERVICE]
        if in_service[0] >= max_concurrent:
            raise web.HTTPServiceUnavailable(
                text=f"busy: {max_concurrent} requests in service", headers={"Retry-After": "1"}
            )
        in_service[0] += 1
        try:
            return await handler(request)
        finally:
            in_service[0] -= 1

    app = web.Application(middlewares=[cap], client_max_size=64 * 1024)
    app[_IN_SERVICE] = [0]
    app.router.add_get("/delay/{ms}", _delay)
    app.router.add_get("/orders", _orders)
    app.router.add_get("/health", _health)
    return app


async def serve(host: str, port: int, max_concurrent: int = MAX_CONCURRENT) -> None:
    """Serve until SIGINT/SIGTERM; print the bound address first (port 0 picks a free one)."""
    runner = web.AppRunner(make_app(max_concurrent), access_log=None, keepalive_timeout=15.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    sockets = getattr(site._server, "sockets", None)  # aiohttp exposes the bound port only here
    bound = sockets[0].getsockname()[1] if sockets else port
    print(f"listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
