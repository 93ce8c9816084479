"""Test doubles that implement the real Protocols of `tools.providers.base` (mypy checks them).

They are small and honest: each keeps its state in plain attributes that tests read
(`calls`, `spent`, `entries`), and none pretends to be more than it is. The rate
limiter's atomic Lua logic is tested against the real Redis, so `InMemoryKvStore`
does not run scripts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import redis.exceptions
from langchain_core.tools import BaseTool

from agent.toolkit import make_toolkit
from tools.bootstrap import ToolDeps
from tools.domain.vehicle import DecodedVehicle, DecodeSource
from tools.errors import ProviderError, ProviderUnavailable, RateLimited
from tools.providers.base import (
    Cache,
    DecodeRequest,
    KvStore,
    Limit,
    LimitCheck,
    LimitDecision,
    RateLimiter,
    VinDecoder,
    VinStore,
)
from tools.providers.cache import KvCache
from tools.providers.ratelimit import GcraRateLimiter
from tools.providers.ultravin import UltravinDecoder
from tools.specs import KnowledgeDeps
from tools.vin import VinDeps

Clock = Callable[[], float]


def vehicle(vin: str, make: str, *, fallback: bool = False) -> DecodedVehicle:
    """A minimal valid decode from a remote provider (or its offline fallback)."""
    return DecodedVehicle(
        vin=vin,
        valid=True,
        check_digit_valid=True,
        make=make,
        source=DecodeSource(provider="nhtsa", fallback=fallback),
    )


class FakeVinDecoder:
    """A provider that answers from a fixed table and records every upstream call.

    `calls` holds one tuple of VINs per call (`decode` or `decode_many`), so a test
    can tell a batched call from many single ones. Set `error` to make every call
    fail with that `ProviderError` (the call is still recorded: it reached the provider).
    """

    def __init__(
        self,
        vehicles: Mapping[str, DecodedVehicle],
        *,
        name: str = "nhtsa",
        error: ProviderError | None = None,
    ) -> None:
        self.vehicles = dict(vehicles)
        self.name = name
        self.error = error
        self.calls: list[tuple[str, ...]] = []

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        return (await self._answer([request]))[0]

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        return await self._answer(requests)

    async def _answer(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        self.calls.append(tuple(r.vin.value for r in requests))
        if self.error is not None:
            raise self.error
        missing = [r.vin.value for r in requests if r.vin.value not in self.vehicles]
        if missing:
            raise LookupError(f"FakeVinDecoder was given no decode for {missing}")
        return [self.vehicles[r.vin.value] for r in requests]


class InMemoryKvStore:
    """A `KvStore` in a dict, with expiry on an injectable clock. `eval` is not supported.

    While `down` is true every call raises redis-py's `ConnectionError`, as a
    Redis that cannot be reached does; set it back to false to model recovery.
    """

    def __init__(self, *, clock: Clock = time.monotonic, down: bool = False) -> None:
        self.clock = clock
        self.down = down
        self.calls = 0
        self.entries: dict[str, tuple[str, float]] = {}

    def _reach(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.exceptions.ConnectionError("Error 111 connecting to redis. Connection refused.")

    async def get(self, key: str) -> str | None:
        self._reach()
        return self._live(key)

    async def mget(self, keys: Sequence[str]) -> list[str | None]:
        self._reach()
        return [self._live(k) for k in keys]

    async def set(self, key: str, value: str, *, ttl_s: int) -> None:
        self._reach()
        self.entries[key] = (value, self.clock() + max(1, ttl_s))

    async def delete(self, *keys: str) -> int:
        self._reach()
        existed = [k for k in keys if self._live(k) is not None]
        for k in existed:
            del self.entries[k]
        return len(existed)

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        self._reach()
        raise NotImplementedError("InMemoryKvStore runs no Lua; test the limiter against real Redis")

    async def ping(self) -> bool:
        self._reach()
        return True

    def _live(self, key: str) -> str | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del self.entries[key]
            return None
        return entry[0]


class BrokenKvStore(InMemoryKvStore):
    """A `KvStore` whose server is down: every call raises redis-py's `ConnectionError`."""

    def __init__(self) -> None:
        super().__init__(down=True)


class InMemoryCache:
    """A `Cache` in a dict, with expiry on an injectable clock; it never fails."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.entries: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        if entry is None or entry[1] <= self.clock():
            return None
        return entry[0]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(k) for k in keys]

    async def set(self, key: str, value: str, *, ttl: timedelta) -> None:
        self.entries[key] = (value, self.clock() + ttl.total_seconds())


class FakeRateLimiter:
    """A `RateLimiter` that lets every key spend `allow` units, then denies with `retry_after`.

    It ignores each `Limit`'s own numbers: the test sets the quota. `spent` maps
    keys to the units spent; a denied `acquire_all` spends nothing.
    """

    def __init__(self, allow: int, *, retry_after: float = 30.0) -> None:
        self.allow = allow
        self.retry_after = retry_after
        self.spent: dict[str, int] = {}

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        return self._hit_all([LimitCheck(key, limit, cost)])

    async def acquire(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        return await self.acquire_all([LimitCheck(key, limit, cost)])

    async def acquire_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        decision = self._hit_all(checks)
        if not decision.allowed:
            raise RateLimited(checks[0].key, decision.retry_after)
        return decision

    async def refund_all(self, checks: Sequence[LimitCheck]) -> None:
        for c in checks:
            self.spent[c.key] = max(0, self.spent.get(c.key, 0) - c.cost)

    def _hit_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        left = min(self.allow - self.spent.get(c.key, 0) - c.cost for c in checks)
        if left < 0:
            before = min(self.allow - self.spent.get(c.key, 0) for c in checks)
            return LimitDecision(False, before, self.retry_after, self.retry_after)
        for c in checks:
            self.spent[c.key] = self.spent.get(c.key, 0) + c.cost
        return LimitDecision(True, left, 0.0, 0.0)


class InMemoryVinStore:
    """A `VinStore` (the durable decode cache) in a dict; `broken` makes it raise `ProviderUnavailable`."""

    def __init__(self, *, broken: bool = False) -> None:
        self.broken = broken
        self.entries: dict[tuple[str, str, int | None], DecodedVehicle] = {}

    async def load(self, provider: str, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        self._check()
        return [self.entries.get((provider, r.vin.value, r.year)) for r in requests]

    async def save(self, provider: str, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        self._check()
        for request, vehicle in decoded:
            self.entries[(provider, request.vin.value, request.year)] = vehicle

    def _check(self) -> None:
        if self.broken:
            raise ProviderUnavailable("vin-cache")


if TYPE_CHECKING:  # mypy proves every fake satisfies the Protocol it stands in for
    _decoder: VinDecoder = FakeVinDecoder({})
    _kv: KvStore = InMemoryKvStore()
    _broken: KvStore = BrokenKvStore()
    _cache: Cache = InMemoryCache()
    _limiter: RateLimiter = FakeRateLimiter(allow=1)
    _store: VinStore = InMemoryVinStore()


def offline_toolkit() -> list[BaseTool]:
    """The real toolkit over the offline decoder, with no database (schema and graph-wiring tests)."""
    store = InMemoryKvStore()
    deps = ToolDeps(
        vin=VinDeps(decoders={"offline": UltravinDecoder()}),
        cache=KvCache(store),
        limiter=GcraRateLimiter(store),
        # Callers use no tool that reads the database.
        sessions=None,  # type: ignore[arg-type]
        # The knowledge tools are bound (their schemas are pinned); calls refused before any read work.
        knowledge=KnowledgeDeps(sessions=None),  # type: ignore[arg-type]
    )
    return make_toolkit(deps)


class FakeEmbedder:
    """An `Embedder` with deterministic unit vectors from a hash of the text; records its calls."""

    def __init__(self, model: str = "fake-embedder", dim: int = 384) -> None:
        self.model = model
        self.dim = dim
        self.calls: list[list[str]] = []

    def vector(self, text: str) -> list[float]:
        import hashlib
        import math

        seed = hashlib.sha256(text.encode()).digest()
        raw = [((seed[i % 32] ^ (i * 131)) % 251) / 125.0 - 1.0 for i in range(self.dim)]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        return [x / norm for x in raw]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.vector(t) for t in texts]

    async def embed_query(self, text: str) -> list[float]:
        self.calls.append([text])
        return self.vector(text)
