"""Ports: the Protocols every provider, cache and limiter implements.

Behaviour is layered with wrappers that implement the same Protocol, so the
composition in `tools.bootstrap` reads as what it does::

    Cached( Durable( Fallback( RateLimited( Nhtsa ), Ultravin ) ) )
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import Vin


class DecodeRequest(NamedTuple):
    """One VIN to decode, with the caller's optional model-year hint.

    A named tuple, so a hot path can build one with `tuple.__new__(DecodeRequest, (vin, year))`:
    one C call, about half the cost of calling the class, and one is built per VIN decoded.
    """

    vin: Vin
    year: int | None = None


class VinDecoder(Protocol):
    """Turns VINs into `DecodedVehicle`s."""

    @property
    def name(self) -> str:
        """The provider's short name (`offline`, `nhtsa`, `autodev`)."""
        ...

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode one VIN.

        Raises:
            ProviderError: the provider could not answer.
        """
        ...

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode several VINs; the result is in request order."""
        ...


class KvStore(Protocol):
    """The few Redis commands the cache and the limiter need (Redis or Upstash REST)."""

    async def get(self, key: str) -> str | None:
        """Return the value at `key`, or None."""
        ...

    async def mget(self, keys: Sequence[str]) -> list[str | None]:
        """Return the values at `keys`, None where missing."""
        ...

    async def set(self, key: str, value: str, *, ttl_s: int) -> None:
        """Store `value` at `key` for `ttl_s` seconds."""
        ...

    async def delete(self, *keys: str) -> int:
        """Delete `keys`; return how many existed."""
        ...

    async def eval(self, script: str, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        """Run a Lua script atomically on the server."""
        ...

    async def ping(self) -> bool:
        """Return True when the server answers."""
        ...


class Cache(Protocol):
    """A key-value cache that never raises: a broken cache is a miss."""

    async def get(self, key: str) -> str | None:
        """Return the cached value, or None on a miss or when the cache is down."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Return cached values in key order (None for misses)."""
        ...

    async def set(self, key: str, value: str, *, ttl: timedelta) -> None:
        """Store a value; failures are logged and swallowed."""
        ...


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `limit` units per `period`, refilled smoothly (GCRA)."""

    limit: int
    period: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= timedelta(0):
            raise ValueError("a limit needs a positive count and period")


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The outcome of one limiter check."""

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit to spend from: a key, its limit and the units to spend."""

    key: str
    limit: Limit
    cost: int = 1


class RateLimiter(Protocol):
    """Atomic rate limits per subject (user, API key, IP, provider)."""

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        """Spend `cost` units of `key`'s quota if they are available."""
        ...

    async def acquire(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        """Like `hit`, but raise `RateLimited` when the quota is spent."""
        ...

    async def acquire_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        """Spend from every limit or from none (atomically); raise `RateLimited` when one is spent."""
        ...

    async def refund_all(self, checks: Sequence[LimitCheck]) -> None:
        """Give back what spending `checks` took (best effort), for work that failed before it was done."""
        ...


class VinStore(Protocol):
    """The durable decode cache (PostgreSQL `vin_cache`)."""

    async def load(self, provider: str, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        """Return the stored decodes for `requests`, None where absent or stale."""
        ...

    async def save(self, provider: str, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        """Store decodes (upsert)."""
        ...
