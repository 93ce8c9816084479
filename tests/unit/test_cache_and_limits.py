"""Cache and rate-limit wrappers with fakes: keys, degradation, layering, durable cache."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from fakes import (
    BrokenKvStore,
    FakeRateLimiter,
    FakeVinDecoder,
    InMemoryCache,
    InMemoryKvStore,
    InMemoryVinStore,
    vehicle,
)

from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import Vin
from tools.errors import ProviderUnavailable, RateLimited
from tools.providers.base import DecodeRequest, Limit, LimitCheck
from tools.providers.cache import CachedVinDecoder, DurableVinDecoder, KvCache, decode_key
from tools.providers.ratelimit import GcraRateLimiter, RateLimitedVinDecoder

ACCORD_VIN = "1HGCM82633A004352"
TRUCK_VIN = "1M8GDM9AXKP042788"
TESLA_VIN = "5YJ3E1EA7KF317000"
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


ACCORD = vehicle(ACCORD_VIN, "HONDA")
TRUCK = vehicle(TRUCK_VIN, "MOTOR COACH INDUSTRIES")
TESLA = vehicle(TESLA_VIN, "TESLA")


def req(vin: str, year: int | None = None) -> DecodeRequest:
    return DecodeRequest(Vin(vin), year)


def uncached(v: DecodedVehicle) -> DecodedVehicle:
    return v.with_source(v.source.model_copy(update={"cached": False}))


# ---------------------------------------------------------------- keys


def test_decode_key_names_version_provider_vin_and_year_when_a_year_is_given() -> None:
    assert decode_key("nhtsa", req(ACCORD_VIN, 2003)) == f"vin:v1:nhtsa:{ACCORD_VIN}:2003"


def test_decode_key_uses_a_dash_when_no_year_is_given() -> None:
    assert decode_key("autodev", req(ACCORD_VIN)) == f"vin:v1:autodev:{ACCORD_VIN}:-"


# ---------------------------------------------------------------- KvCache


async def test_cache_returns_what_was_set_when_the_store_is_up() -> None:
    cache = KvCache(InMemoryKvStore())
    await cache.set("k", "v", ttl=MINUTE)
    assert await cache.get("k") == "v"
    assert await cache.get_many(["nope", "k"]) == [None, "v"]
    assert cache.healthy


async def test_cache_expires_entries_when_their_ttl_has_passed() -> None:
    now = [1000.0]
    cache = KvCache(InMemoryKvStore(clock=lambda: now[0]))
    await cache.set("k", "v", ttl=timedelta(seconds=30))
    now[0] += 29.9
    assert await cache.get("k") == "v"
    now[0] += 0.2
    assert await cache.get("k") is None


async def test_cache_serves_misses_and_warns_once_when_the_store_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = BrokenKvStore()
    cache = KvCache(store, name="redis cache")
    with caplog.at_level(logging.INFO, logger="tools.providers.cache"):
        assert await cache.get("k") is None
        assert await cache.get_many(["a", "b"]) == [None, None]
        await cache.set("k", "v", ttl=MINUTE)
        assert await cache.get("k") is None
    assert store.calls == 4
    assert not cache.healthy
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "redis cache unavailable" in warnings[0].getMessage()
    assert "ConnectionError" in warnings[0].getMessage()


async def test_cache_logs_recovery_and_warns_again_when_a_second_outage_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryKvStore(down=True)
    cache = KvCache(store)
    with caplog.at_level(logging.INFO, logger="tools.providers.cache"):
        await cache.get("k")
        store.down = False
        await cache.set("k", "v", ttl=MINUTE)
        assert await cache.get("k") == "v"
        store.down = True
        await cache.get("k")
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "INFO", "WARNING"]
    assert caplog.records[1].getMessage() == "cache is back"


async def test_cache_propagates_errors_that_are_not_outages_when_the_store_has_a_bug() -> None:
    class BuggyKvStore(InMemoryKvStore):
        async def get(self, key: str) -> str | None:
            raise KeyError(key)

    cache = KvCache(BuggyKvStore())
    with pytest.raises(KeyError):
        await cache.get("k")


# ---------------------------------------------------------------- CachedVinDecoder


async def test_repeat_decode_is_served_from_cache_without_spending_quota() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    limiter = FakeRateLimiter(allow=1)
    decoder = CachedVinDecoder(
        RateLimitedVinDecoder(provider, limiter, Limit(1, MINUTE), bucket="vin"), InMemoryCache(), ttl=DAY
    )
    first = await decoder.decode(req(ACCORD_VIN))
    second = await decoder.decode(req(ACCORD_VIN))
    assert first == ACCORD
    assert second.source.cached
    assert uncached(second) == ACCORD
    assert provider.calls == [(ACCORD_VIN,)]
    assert limiter.spent == {"provider:vin": 1}


async def test_decodes_reach_the_provider_every_time_when_the_cache_is_down() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    decoder = CachedVinDecoder(provider, KvCache(BrokenKvStore()), ttl=DAY)
    assert await decoder.decode(req(ACCORD_VIN)) == ACCORD
    assert await decoder.decode(req(ACCORD_VIN)) == ACCORD
    assert provider.calls == [(ACCORD_VIN,), (ACCORD_VIN,)]


async def test_fallback_answer_is_not_cached_when_the_primary_provider_failed() -> None:
    stand_in = vehicle(ACCORD_VIN, "HONDA", fallback=True)
    provider = FakeVinDecoder({ACCORD_VIN: stand_in})
    cache = InMemoryCache()
    decoder = CachedVinDecoder(provider, cache, ttl=DAY)
    assert await decoder.decode(req(ACCORD_VIN)) == stand_in
    assert await decoder.decode(req(ACCORD_VIN)) == stand_in
    assert len(provider.calls) == 2
    assert cache.entries == {}


async def test_batch_decodes_only_the_misses_in_one_call_and_keeps_order_when_some_are_cached() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK, TESLA_VIN: TESLA})
    decoder = CachedVinDecoder(provider, InMemoryCache(), ttl=DAY)
    await decoder.decode(req(TRUCK_VIN))
    got = await decoder.decode_many([req(ACCORD_VIN), req(TRUCK_VIN), req(TESLA_VIN)])
    assert provider.calls == [(TRUCK_VIN,), (ACCORD_VIN, TESLA_VIN)]
    assert [v.vin for v in got] == [ACCORD_VIN, TRUCK_VIN, TESLA_VIN]
    assert [v.source.cached for v in got] == [False, True, False]


async def test_year_hint_is_cached_separately_when_the_same_vin_is_asked_with_and_without_it() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    decoder = CachedVinDecoder(provider, InMemoryCache(), ttl=DAY)
    await decoder.decode(req(ACCORD_VIN))
    await decoder.decode(req(ACCORD_VIN, 2003))
    await decoder.decode(req(ACCORD_VIN, 2003))
    assert provider.calls == [(ACCORD_VIN,), (ACCORD_VIN,)]


async def test_unreadable_cache_entry_is_a_miss_when_its_shape_no_longer_parses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    cache = InMemoryCache()
    await cache.set(decode_key("nhtsa", req(ACCORD_VIN)), '{"vin": "stale shape"}', ttl=DAY)
    decoder = CachedVinDecoder(provider, cache, ttl=DAY)
    with caplog.at_level(logging.WARNING, logger="tools.providers.cache"):
        assert await decoder.decode(req(ACCORD_VIN)) == ACCORD
    assert provider.calls == [(ACCORD_VIN,)]
    assert ACCORD_VIN not in caplog.text  # VINs stay out of logs
    assert (await decoder.decode(req(ACCORD_VIN))).source.cached


# ---------------------------------------------------------------- RateLimitedVinDecoder


async def test_provider_is_not_called_when_its_quota_is_spent() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    decoder = RateLimitedVinDecoder(
        provider, FakeRateLimiter(allow=1, retry_after=12.5), Limit(1, MINUTE), bucket="nhtsa"
    )
    await decoder.decode(req(ACCORD_VIN))
    with pytest.raises(RateLimited) as caught:
        await decoder.decode(req(ACCORD_VIN))
    assert caught.value.retry_after == 12.5
    assert caught.value.code == "rate_limited"
    assert provider.calls == [(ACCORD_VIN,)]


async def test_batch_spends_one_unit_per_upstream_call_when_the_provider_takes_batches() -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK, TESLA_VIN: TESLA})
    limiter = FakeRateLimiter(allow=10)
    decoder = RateLimitedVinDecoder(provider, limiter, Limit(10, MINUTE), bucket="nhtsa", batch_size=2)
    await decoder.decode_many([req(ACCORD_VIN), req(TRUCK_VIN), req(TESLA_VIN)])
    assert limiter.spent == {"provider:nhtsa": 2}


# ---------------------------------------------------------------- GcraRateLimiter without a server


async def test_limiter_admits_and_warns_once_when_its_store_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limiter = GcraRateLimiter(BrokenKvStore())
    with caplog.at_level(logging.WARNING, logger="tools.providers.ratelimit"):
        decisions = [await limiter.acquire("user:1", Limit(1, MINUTE)) for _ in range(3)]
    assert all(d.allowed for d in decisions)
    assert len(caplog.records) == 1


async def test_limiter_denies_with_a_finite_retry_after_when_the_cost_exceeds_the_limit() -> None:
    limiter = GcraRateLimiter(InMemoryKvStore())  # decided before any script runs
    decision = await limiter.hit("user:1", Limit(5, DAY), cost=6)
    assert not decision.allowed
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire_all([LimitCheck("user:1:day", Limit(5, DAY), 6)])
    assert caught.value.retry_after == DAY.total_seconds()
    assert "at most 5" in caught.value.public_message
    assert caught.value.to_dict()["retry_after"] == DAY.total_seconds()


# ---------------------------------------------------------------- DurableVinDecoder


async def test_durable_decoder_reloads_stored_decodes_when_asked_again() -> None:
    store = InMemoryVinStore()
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK})
    decoder = DurableVinDecoder(provider, store)
    await decoder.decode(req(ACCORD_VIN))
    got = await decoder.decode_many([req(TRUCK_VIN), req(ACCORD_VIN)])
    assert provider.calls == [(ACCORD_VIN,), (TRUCK_VIN,)]
    assert [v.source.cached for v in got] == [False, True]
    assert set(store.entries) == {("nhtsa", ACCORD_VIN, None), ("nhtsa", TRUCK_VIN, None)}


async def test_durable_decoder_still_decodes_when_its_store_is_down(caplog: pytest.LogCaptureFixture) -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    decoder = DurableVinDecoder(provider, InMemoryVinStore(broken=True))
    with caplog.at_level(logging.WARNING, logger="tools.providers.cache"):
        assert await decoder.decode(req(ACCORD_VIN)) == ACCORD
    assert len(caplog.records) == 2  # one for the failed read, one for the failed write


async def test_durable_decoder_does_not_store_fallback_answers_when_the_primary_failed() -> None:
    store = InMemoryVinStore()
    provider = FakeVinDecoder({ACCORD_VIN: vehicle(ACCORD_VIN, "HONDA", fallback=True)})
    await DurableVinDecoder(provider, store).decode(req(ACCORD_VIN))
    assert store.entries == {}


async def test_provider_error_reaches_the_caller_when_nothing_is_cached() -> None:
    provider = FakeVinDecoder({}, error=ProviderUnavailable("nhtsa"))
    decoder = CachedVinDecoder(DurableVinDecoder(provider, InMemoryVinStore()), InMemoryCache(), ttl=DAY)
    with pytest.raises(ProviderUnavailable):
        await decoder.decode(req(ACCORD_VIN))
