"""Atomic rate limits in Redis (GCRA), and the wrapper that applies one to a provider.

GCRA (the generic cell rate algorithm) keeps one timestamp per key, the
"theoretical arrival time", and decides in a single Lua script, so concurrent
callers on many processes can never overspend: `Limit(10, 1 min)` admits a burst of
exactly 10, then one every 6 seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from tools.domain.vehicle import DecodedVehicle
from tools.errors import RateLimited
from tools.providers.base import (
    DecodeRequest,
    KvStore,
    Limit,
    LimitCheck,
    LimitDecision,
    RateLimiter,
    VinDecoder,
)
from tools.providers.cache import CACHE_FAILURES

logger = logging.getLogger(__name__)

# KEYS[i] = one key per limit; ARGV = (emission interval ms, capacity, cost) per key.
# All limits are checked first and spent only if every one admits the call.
# Returns {allowed (0/1), remaining (of the tightest), retry_after_ms, reset_after_ms};
# `remaining` counts after spending when allowed, and what is left untouched when denied.
GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new_tats = {}
local left_before = nil
local left_after = nil
local retry = 0
local reset = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local capacity = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key))
  if not tat or tat < now then tat = now end
  local period = interval * capacity
  local new_tat = tat + interval * cost
  local allow_at = new_tat - period
  if allow_at > now then retry = math.max(retry, allow_at - now) end
  local before = math.floor((period - (tat - now)) / interval)
  local after = math.max(0, math.floor((period - (new_tat - now)) / interval))
  if left_before == nil or before < left_before then left_before = before end
  if left_after == nil or after < left_after then left_after = after end
  reset = math.max(reset, new_tat - now)
  new_tats[i] = new_tat
end
if retry > 0 then
  return {0, left_before, retry, reset}
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, new_tats[i], 'PX', math.max(1, new_tats[i] - now))
end
return {1, left_after, 0, reset}
"""


# KEYS[i] = one key per limit; ARGV = (emission interval ms, cost) per key. Gives back what a
# spend took: the arrival time moves back by `cost` intervals, never before now (a refund
# never leaves more than a full bucket).
REFUND_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key))
  if tat and tat > now then
    local new_tat = tat - tonumber(ARGV[2 * i - 1]) * tonumber(ARGV[2 * i])
    if new_tat > now then
      redis.call('SET', key, new_tat, 'PX', math.max(1, new_tat - now))
    else
      redis.call('DEL', key)
    end
  end
end
return 1
"""


class GcraRateLimiter:
    """`RateLimiter` on a `KvStore`.

    When the store is unreachable the limiter fails open (admits, logs once per
    outage): limits protect providers and fairness, and an outage of Redis must
    not take the product down with it.
    """

    def __init__(self, store: KvStore, *, prefix: str = "rl:v1:") -> None:
        self._store = store
        self._prefix = prefix
        self._down = False

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        """Spend `cost` units of `key`'s quota if available."""
        return await self.hit_all([LimitCheck(key, limit, cost)])

    async def hit_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        """Spend from every limit in `checks`, or from none of them, atomically.

        A cost larger than a limit's capacity can never be admitted: the decision
        is a denial with an infinite `retry_after`.
        """
        if not checks:
            raise ValueError("hit_all needs at least one limit")
        if any(c.cost > c.limit.limit for c in checks):
            return LimitDecision(False, 0, math.inf, 0.0)
        args: list[int] = []
        for c in checks:
            args += [_interval_ms(c.limit), c.limit.limit, c.cost]
        try:
            allowed, remaining, retry_ms, reset_ms = await self._store.eval(
                GCRA_SCRIPT, [self._prefix + c.key for c in checks], args
            )
        except CACHE_FAILURES as e:
            if not self._down:
                self._down = True
                logger.warning("rate-limit store unavailable, admitting calls: %s", type(e).__name__)
            return LimitDecision(True, min(c.limit.limit for c in checks), 0.0, 0.0)
        if self._down:
            self._down = False
            logger.info("rate-limit store is back, enforcing limits again")
        return LimitDecision(bool(int(allowed)), int(remaining), int(retry_ms) / 1000, int(reset_ms) / 1000)

    async def refund_all(self, checks: Sequence[LimitCheck]) -> None:
        """Give back what spending `checks` took, for work that failed before it was done.

        Best effort: with the store unreachable nothing is given back (it also admitted
        calls meanwhile), and a quota is never refunded beyond full.
        """
        if not checks:
            return
        args: list[int] = []
        for c in checks:
            args += [_interval_ms(c.limit), c.cost]
        try:
            await self._store.eval(REFUND_SCRIPT, [self._prefix + c.key for c in checks], args)
        except CACHE_FAILURES as e:
            logger.warning("rate-limit store unavailable, quota not refunded: %s", type(e).__name__)

    async def acquire(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        """Spend quota or raise `RateLimited` with the seconds until it is available."""
        return await self.acquire_all([LimitCheck(key, limit, cost)])

    async def acquire_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        """Spend from every limit or raise `RateLimited` (nothing is spent then)."""
        decision = await self.hit_all(checks)
        if decision.allowed:
            return decision
        bucket = checks[0].key if len(checks) == 1 else "quota"
        if math.isinf(decision.retry_after):
            # Waiting never helps; report the longest period so `retry_after` stays a number.
            too_big = [c for c in checks if c.cost > c.limit.limit]
            most = min(c.limit.limit for c in too_big)
            raise RateLimited(
                bucket,
                max(c.limit.period.total_seconds() for c in too_big),
                f"This request is too large: at most {most} can be done at a time.",
            )
        raise RateLimited(bucket, decision.retry_after)


def _interval_ms(limit: Limit) -> int:
    """GCRA's emission interval of `limit`: the milliseconds one unit of it takes to come back."""
    return max(1, round(limit.period.total_seconds() * 1000 / limit.limit))


class RateLimitedVinDecoder:
    """Spend a provider's outbound quota before each call (politeness towards the provider).

    `batch_size` is how many VINs one upstream call carries, so a batch of 120
    VINs against NHTSA (50 per call) costs 3 units.
    """

    def __init__(
        self, inner: VinDecoder, limiter: RateLimiter, limit: Limit, *, bucket: str, batch_size: int = 1
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.limit = limit
        self.bucket = bucket
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        """The wrapped decoder's name."""
        return self.inner.name

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Spend one unit, then decode."""
        await self.limiter.acquire(f"provider:{self.bucket}", self.limit)
        return await self.inner.decode(request)

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Spend one unit per upstream call the batch needs, then decode."""
        if not requests:
            return []
        cost = min(self.limit.limit, math.ceil(len(requests) / self.batch_size))
        await self.limiter.acquire(f"provider:{self.bucket}", self.limit, cost=cost)
        return await self.inner.decode_many(requests)
