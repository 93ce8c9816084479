"""The assistant spends the transport's limits with its own, and names the answer it stored.

The offline assistant on the test's PostgreSQL (rolled back) and Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agent.assistant import Asker, GraphAssistant
from agent.bootstrap import build_assistant
from tools.bootstrap import Infrastructure, build_tool_deps
from tools.errors import RateLimited
from tools.providers.base import Limit, LimitCheck
from tools.providers.kv import RedisKvStore
from tools.providers.ratelimit import GcraRateLimiter
from tools.settings import LimitSettings, Settings
from tools.storage import feedback_repo
from tools.storage.models import Conversation, User

pytestmark = pytest.mark.integration

PER_IP = LimitCheck("ip:10.0.0.1:requests:minute", Limit(5, timedelta(minutes=1)))


@pytest.fixture
async def assistant(
    pg_url: str,
    redis_url: str,
    db_engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    kv: RedisKvStore,
    tmp_path: Path,
) -> AsyncIterator[GraphAssistant]:
    settings = Settings(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        OPENAI_API_KEY=None,
        OPENAI_BASE_URL=None,
        data_dir=tmp_path,
        limits=LimitSettings(messages_per_minute=2),
    )
    async with httpx.AsyncClient() as http:
        infra = Infrastructure(
            database_url=pg_url, redis_url=redis_url, engine=db_engine, sessions=db_sessions, kv=kv, http=http
        )
        yield build_assistant(settings, replace(build_tool_deps(settings, infra), knowledge=None))


async def left(kv: RedisKvStore, check: LimitCheck) -> int:
    return (await GcraRateLimiter(kv).hit(check.key, check.limit, cost=0)).remaining


async def test_a_call_the_users_limit_refuses_spends_none_of_the_transports_when_asked(
    assistant: GraphAssistant, kv: RedisKvStore
) -> None:
    ann = Asker(external_id="test:limits-ann", channel="test", limits=(PER_IP,))
    for _ in range(2):  # the first contact, then a known user in their conversation
        await assistant.ask("hello", conversation_id="test:limits-1", asker=ann)
    with pytest.raises(RateLimited) as denied:
        await assistant.ask("hello", conversation_id="test:limits-1", asker=ann)
    assert denied.value.retry_after > 0
    assert await left(kv, PER_IP) == 3  # 5 - the two answered calls


async def test_a_first_contact_the_transport_refuses_writes_nothing_when_its_limit_is_spent(
    assistant: GraphAssistant, kv: RedisKvStore, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    spent = LimitCheck("ip:10.0.0.2:requests:minute", Limit(1, timedelta(minutes=1)))
    await GcraRateLimiter(kv).hit(spent.key, spent.limit)
    bob = Asker(external_id="test:limits-bob", channel="test", limits=(spent,))
    with pytest.raises(RateLimited):
        await assistant.ask("hello", conversation_id="test:limits-2", asker=bob)
    async with db_sessions() as session:
        users = await session.scalar(select(func.count()).where(User.external_id == "test:limits-bob"))
        conversations = await session.scalar(select(func.count()).where(Conversation.id == "test:limits-2"))
    assert (users, conversations) == (0, 0)


async def test_a_new_conversation_the_users_limit_refuses_is_not_created_when_asked(
    assistant: GraphAssistant, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    dan = Asker(external_id="test:limits-dan", channel="test")
    for _ in range(2):  # the user's limit is 2 a minute
        await assistant.ask("hello", conversation_id="test:limits-4", asker=dan)
    with pytest.raises(RateLimited):
        await assistant.ask("hello", conversation_id="test:limits-5", asker=dan)
    async with db_sessions() as session:
        conversations = await session.scalar(select(func.count()).where(Conversation.id == "test:limits-5"))
    assert conversations == 0


async def test_the_answer_names_the_row_it_was_stored_as_when_asked(
    assistant: GraphAssistant, db_sessions: async_sessionmaker[AsyncSession]
) -> None:
    cat = Asker(external_id="test:limits-cat", channel="test")
    for question in ("hello", "What car is 1HGCM82633A004352?"):
        answer = await assistant.ask(question, conversation_id="test:limits-3", asker=cat)
        async with db_sessions() as session:
            assert answer.message_id == await feedback_repo.latest_answer_id(session, "test:limits-3")
    assert answer.message_id is not None
    assert "message_id" not in answer.model_dump()
