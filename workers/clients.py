"""Pooled I/O clients that jobs share: one set per thread pool, pool process or Celery worker.

Sync clients are thread-safe pools (urllib3, redis-py); async clients live on one event loop.
Both are created lazily, so an executor that never runs an http or redis job opens nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from workers.errors import HttpStatusError
from workers.urls import redact

__all__ = ["AsyncClients", "HttpStatusError", "SyncClients", "check_redis", "redact"]

if TYPE_CHECKING:
    import aiohttp
    import redis
    import redis.asyncio
    import urllib3


class SyncClients:
    """Connection-pooled HTTP and Redis clients for code running in threads."""

    def __init__(self, pool_size: int = 10) -> None:
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._http: urllib3.PoolManager | None = None
        self._redis: dict[str, redis.Redis] = {}

    def http_get(self, url: str) -> bytes:
        if self._http is None:
            import urllib3

            with self._lock:
                if self._http is None:
                    self._http = urllib3.PoolManager(
                        maxsize=self._pool_size,
                        block=True,
                        retries=False,
                        timeout=urllib3.Timeout(connect=10.0, read=300.0),
                    )
        response = self._http.request("GET", url)
        if response.status >= 300:
            raise HttpStatusError(f"GET {redact(url)} answered {response.status}")
        return response.data

    def redis(self, url: str) -> redis.Redis:
        client = self._redis.get(url)
        if client is None:
            import redis as redis_sync

            with self._lock:
                client = self._redis.get(url)
                if client is None:
                    pool = redis_sync.BlockingConnectionPool.from_url(url, max_connections=self._pool_size)
                    client = redis_sync.Redis(connection_pool=pool)
                    self._redis[url] = client
        return client

    def close(self) -> None:
        if self._http is not None:
            self._http.clear()
        for client in self._redis.values():
            client.close()


class AsyncClients:
    """aiohttp session and redis.asyncio clients bound to the running loop."""

    def __init__(self, pool_size: int = 100) -> None:
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._redis: dict[str, redis.asyncio.Redis] = {}

    async def http_get(self, url: str) -> bytes:
        if self._session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(connector=connector)
        async with self._session.get(url) as response:
            body = await response.read()
            if response.status >= 300:
                raise HttpStatusError(f"GET {redact(url)} answered {response.status}")
            return body

    def redis(self, url: str) -> redis.asyncio.Redis:
        client = self._redis.get(url)
        if client is None:
            import redis.asyncio as redis_async

            pool = redis_async.BlockingConnectionPool.from_url(url, max_connections=self._pool_size)
            client = redis_async.Redis(connection_pool=pool)
            self._redis[url] = client
        return client

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        for client in self._redis.values():
            await client.aclose()


def check_redis(url: str, timeout_s: float = 3.0) -> None:
    """Raise ServiceError with a fix-it message if Redis at ``url`` does not answer PING."""
    import redis as redis_sync

    from workers.errors import ServiceError
    from workers.urls import redact_text

    try:
        client = redis_sync.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except (redis_sync.RedisError, OSError, ValueError) as exc:
        raise ServiceError(
            f"cannot reach Redis at {redact(url)} ({redact_text(str(exc))}); start Redis there, fix REDIS_URL, "
            "or unset REDIS_URL to use an embedded Redis"
        ) from exc
