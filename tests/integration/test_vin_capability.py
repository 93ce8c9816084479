"""The VIN capability against the real embedded PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools import vin as capability
from tools.errors import InvalidInput, InvalidVin, NotAllowed, RateLimited
from tools.providers.kv import RedisKvStore
from tools.providers.ratelimit import GcraRateLimiter
from tools.providers.ultravin import UltravinDecoder
from tools.settings import LimitSettings
from tools.storage.models import UserVinHistory
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user
from tools.storage.vin_repo import forget_history, list_history
from tools.vin import Caller, VinDeps

pytestmark = pytest.mark.integration

ACCORD = "1HGCM82633A004352"
BAD_INPUTS = [
    "",
    "   ",
    "1HGCM82633A00435",  # 16
    "1HGCM82633A0043521",  # 18
    "1HGCM82633AOO4352",  # O for 0
    "1HGCM8263IA004352",  # I
    "1HGCM82633A00435Q",  # Q
    "1HGCM82633A00435É",  # non-ASCII
    "1HGCM82633A004352" * 600,  # ~10 kB
    "'; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "1HGCM82633A0043\x00",
]


@pytest.fixture
async def caller(db_sessions: async_sessionmaker[AsyncSession]) -> Caller:
    async with transaction(db_sessions) as session:
        user = await get_or_create_user(session, "test:alice")
    return Caller(user_id=user.id, tier="free", channel="test")


def make_deps(sessions, kv: RedisKvStore | None = None, per_minute: int = 60) -> VinDeps:
    return VinDeps(
        decoders={"offline": UltravinDecoder()},
        limiter=GcraRateLimiter(kv) if kv is not None else None,
        limits=LimitSettings(decodes_per_minute=per_minute),
        sessions=sessions,
    )


async def history_count(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(UserVinHistory).where(UserVinHistory.user_id == user_id)
        return int((await session.execute(query)).scalar_one())


async def test_decode_is_recorded_in_the_callers_history_when_it_succeeds(db_sessions, caller) -> None:
    deps = make_deps(db_sessions)
    vehicle = await capability.decode(" 1hgcm82633-a004352 ", deps=deps, caller=caller)
    assert (vehicle.vin, vehicle.make, vehicle.model, vehicle.model_year) == (ACCORD, "HONDA", "Accord", 2003)
    async with db_sessions() as session:
        history = await list_history(session, caller.user_id)
    assert [(h.vin, h.title, h.provider) for h in history] == [(ACCORD, "2003 HONDA Accord EX-V6", "offline")]


async def test_history_is_per_user_when_two_users_decode(db_sessions, caller) -> None:
    async with transaction(db_sessions) as session:
        bob = await get_or_create_user(session, "test:bob")
    deps = make_deps(db_sessions)
    await capability.decode(ACCORD, deps=deps, caller=caller)
    async with db_sessions() as session:
        assert await list_history(session, bob.id) == []
        assert len(await list_history(session, caller.user_id)) == 1
        assert await forget_history(session, caller.user_id) == 1
        assert await list_history(session, caller.user_id) == []


@pytest.mark.parametrize("raw", BAD_INPUTS)
async def test_bad_input_gets_a_clear_error_and_stores_nothing_when_decoded(db_sessions, caller, raw) -> None:
    deps = make_deps(db_sessions)
    with pytest.raises(InvalidVin) as info:
        await capability.decode(raw, deps=deps, caller=caller)
    assert info.value.code == "invalid_vin"
    assert info.value.reason in {"empty", "too_short", "too_long", "forbidden_letters", "invalid_characters"}
    assert 10 < len(info.value.public_message) < 200
    assert len(info.value.raw) <= 65
    assert await history_count(db_sessions, caller.user_id) == 0


async def test_every_input_is_reported_in_order_when_some_are_invalid(db_sessions, caller) -> None:
    deps = make_deps(db_sessions)
    raws = [ACCORD, "1HGCM82633AOO4352", "nonsense", "5YJ3E1EA7KF317000"]
    results = await capability.decode_many(raws, deps=deps, caller=caller)
    assert [r.line for r in results] == [1, 2, 3, 4]
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].error is not None
    assert results[1].error["suggestions"] == [ACCORD]
    assert results[2].error is not None
    assert results[2].error["reason"] == "too_short"
    assert await history_count(db_sessions, caller.user_id) == 2  # only the decoded ones


async def test_an_impossible_year_hint_fails_only_its_own_line_when_many_are_decoded(
    db_sessions, caller
) -> None:
    results = await capability.decode_many(
        [ACCORD, ACCORD], years=[1900, 2003], deps=make_deps(db_sessions), caller=caller
    )
    assert results[0].error is not None
    assert results[0].error["error"] == "invalid_input"
    assert results[1].vehicle is not None
    assert results[1].vehicle.model_year == 2003
    with pytest.raises(InvalidInput):
        await capability.decode(ACCORD, year=2999, deps=make_deps(db_sessions), caller=caller)


async def test_quota_runs_out_with_retry_after_when_a_user_decodes_too_often(db_sessions, caller, kv) -> None:
    deps = make_deps(db_sessions, kv, per_minute=3)
    results = await capability.decode_many([ACCORD, ACCORD, "bad"], deps=deps, caller=caller)
    assert [r.ok for r in results] == [True, True, False]  # the invalid one cost nothing
    await capability.decode(ACCORD, deps=deps, caller=caller)
    with pytest.raises(RateLimited) as info:
        await capability.decode(ACCORD, deps=deps, caller=caller)
    assert 0 < info.value.retry_after <= 20
    assert await history_count(db_sessions, caller.user_id) == 3


async def test_premium_provider_is_refused_when_the_caller_is_on_the_free_tier(db_sessions, caller) -> None:
    deps = VinDeps(decoders={"offline": UltravinDecoder()}, sessions=db_sessions)
    with pytest.raises(NotAllowed, match="premium"):
        await capability.decode(ACCORD, deps=deps, caller=caller, provider="autodev")
    with pytest.raises(NotAllowed, match="not enabled"):
        await capability.decode(ACCORD, deps=deps, caller=caller, provider="nhtsa")
    with pytest.raises(InvalidInput, match="bulk"):
        await capability.decode_many([ACCORD] * 1001, deps=deps, caller=caller)
