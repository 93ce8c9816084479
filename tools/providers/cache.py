"""Caching: a `Cache` on a `KvStore` that never raises, and decode-caching wrappers.

Decodes of a VIN do not change within a data release, so they are cached for long.
Results that came from a fallback are not cached: the next call should try the
provider that was asked for again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import httpx
import redis.exceptions
from pydantic import ValidationError
from upstash_redis.errors import UpstashError

from tools.domain.vehicle import DecodedVehicle
from tools.errors import ProviderError
from tools.providers.base import Cache, DecodeRequest, KvStore, VinDecoder, VinStore

logger = logging.getLogger(__name__)

# What a broken or unreachable cache raises; anything else is a bug and propagates.
CACHE_FAILURES: tuple[type[BaseException], ...] = (
    redis.exceptions.RedisError,
    UpstashError,
    httpx.HTTPError,
    OSError,
    asyncio.TimeoutError,
)

DECODE_KEY_VERSION = "v1"  # bump when DecodedVehicle's shape changes


class KvCache:
    """`Cache` over a `KvStore`. A failing store degrades to a miss, logged once per outage."""

    def __init__(self, store: KvStore, *, name: str = "cache") -> None:
        self._store = store
        self._name = name
        self._down = False

    @property
    def healthy(self) -> bool:
        """False while the last call to the store failed."""
        return not self._down

    async def get(self, key: str) -> str | None:
        """Return the cached value, or None on a miss or failure."""
        try:
            value = await self._store.get(key)
        except CACHE_FAILURES as e:
            self._failed(e)
            return None
        self._recovered()
        return value

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Return cached values in key order; all misses on failure."""
        try:
            values = await self._store.mget(keys)
        except CACHE_FAILURES as e:
            self._failed(e)
            return [None] * len(keys)
        self._recovered()
        return values

    async def set(self, key: str, value: str, *, ttl: timedelta) -> None:
        """Store a value; a failure is logged once and swallowed."""
        try:
            await self._store.set(key, value, ttl_s=int(ttl.total_seconds()))
        except CACHE_FAILURES as e:
            self._failed(e)
            return
        self._recovered()

    def _failed(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            logger.warning(
                "%s unavailable, serving misses until it is back: %s", self._name, type(error).__name__
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            logger.info("%s is back", self._name)


def decode_key(provider: str, request: DecodeRequest) -> str:
    """Return the cache key of a decode: `vin:v1:<provider>:<vin>:<year or ->`."""
    return f"vin:{DECODE_KEY_VERSION}:{provider}:{request.vin.value}:{request.year or '-'}"


class _LookAsideDecoder:
    """Answer from a store in front of `inner`; decode only the misses, in one call, and keep them."""

    inner: VinDecoder

    @property
    def name(self) -> str:
        """The wrapped decoder's name."""
        return self.inner.name

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Return the kept decode, or decode and keep it."""
        return (await self.decode_many([request]))[0]

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode the misses in one call to `inner`, then keep them (fallback answers excepted)."""
        results = await self._load(requests)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = await self.inner.decode_many([requests[i] for i in missing])
            keep: list[tuple[DecodeRequest, DecodedVehicle]] = []
            for i, vehicle in zip(missing, fresh, strict=True):
                results[i] = vehicle
                if not vehicle.source.fallback:
                    keep.append((requests[i], vehicle))
            if keep:
                await self._save(keep)
        return [r for r in results if r is not None]

    async def _load(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        raise NotImplementedError

    async def _save(self, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        raise NotImplementedError


class CachedVinDecoder(_LookAsideDecoder):
    """Serve decodes from a fast cache (Redis) in front of `inner`."""

    def __init__(self, inner: VinDecoder, cache: Cache, *, ttl: timedelta) -> None:
        self.inner = inner
        self.cache = cache
        self.ttl = ttl

    async def _load(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        keys = [decode_key(self.name, r) for r in requests]
        cached = await self.cache.get_many(keys)
        return [
            None if raw is None else _read_cached(key, raw) for key, raw in zip(keys, cached, strict=True)
        ]

    async def _save(self, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        for request, vehicle in decoded:
            await self.cache.set(decode_key(self.name, request), vehicle.model_dump_json(), ttl=self.ttl)


class DurableVinDecoder(_LookAsideDecoder):
    """Keep decodes in PostgreSQL (`vin_cache`) behind the fast cache.

    Redis may be flushed or evicted; remote calls cost quota and time, so their
    answers are kept durably too. A store that fails degrades to a miss.
    """

    def __init__(self, inner: VinDecoder, store: VinStore) -> None:
        self.inner = inner
        self.store = store

    async def _load(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        try:
            stored = await self.store.load(self.name, requests)
        except ProviderError as e:
            logger.warning("could not read the durable cache (%s); decoding afresh", e.code)
            return [None] * len(requests)
        return [None if r is None else _mark_cached(r) for r in stored]

    async def _save(self, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        try:
            await self.store.save(self.name, decoded)
        except ProviderError:
            logger.warning("could not store %d decodes in the durable cache", len(decoded))


def _read_cached(key: str, raw: str) -> DecodedVehicle | None:
    # An entry that no longer parses (a shape change without a key-version bump)
    # is a miss, not an error for the user; the fresh decode overwrites it.
    try:
        return _mark_cached(DecodedVehicle.model_validate_json(raw))
    except ValidationError:
        logger.warning("unreadable cache entry %s; treating it as a miss", key.rsplit(":", 2)[0])
        return None


def _mark_cached(vehicle: DecodedVehicle) -> DecodedVehicle:
    return vehicle.with_source(vehicle.source.model_copy(update={"cached": True}))
