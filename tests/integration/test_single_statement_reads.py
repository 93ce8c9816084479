"""The bot's per-update reads in autocommit single statements agree with their session forms."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tools import vin as capability
from tools.providers.ultravin import UltravinDecoder
from tools.storage import conversation_repo, feedback_repo, vin_repo
from tools.storage.conversation_repo import StoredMessage
from tools.storage.session import session_factory, single_statements, transaction
from tools.storage.user_repo import find_or_create_user, get_or_create_user
from tools.vin import Caller, VinDeps

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Bound to the engine, so `single_statements` lends a pooled psycopg connection in autocommit.
    return session_factory(db_engine)


async def test_user_is_created_once_then_found_when_read_in_single_statements(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    external_id = f"tg:single-{uuid.uuid4().hex}"
    async with single_statements(sessions) as db:
        assert not isinstance(db, AsyncSession)
        created = await find_or_create_user(db, external_id, username="ana", language="es")
        found = await find_or_create_user(db, external_id, username="other", language="de")
    assert found == created
    assert (created.username, created.language, created.tier) == ("ana", "es", "free")
    async with transaction(sessions) as session:
        assert await get_or_create_user(session, external_id) == created


async def test_latest_answer_id_skips_tool_calls_when_read_in_a_single_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    external_id = f"tg:single-{uuid.uuid4().hex}"
    conversation = f"tg:{external_id}"
    call = {"name": "decode_vin", "args": {"vin": "1HGCM82633A004352"}, "id": "c1", "type": "tool_call"}
    async with transaction(sessions) as session:
        owner = await get_or_create_user(session, external_id)
        await conversation_repo.open_conversation(session, conversation, user_id=owner.id, channel="telegram")
        await conversation_repo.append_messages(
            session,
            conversation,
            [
                StoredMessage("user", "what car is it?"),
                StoredMessage("assistant", "A 2003 Honda Accord."),
                StoredMessage("user", "and this one?"),
                StoredMessage("assistant", "", tool_calls=[call]),
                StoredMessage("tool", "{}", tool_call_id="c1", tool_name="decode_vin"),
                StoredMessage("assistant", "A 2019 Tesla Model 3.", tool_calls=[]),
                StoredMessage("assistant", "", tool_calls=[call]),
            ],
        )
        in_session = await feedback_repo.latest_answer_id(session, conversation)
    async with single_statements(sessions) as db:
        single = await feedback_repo.latest_answer_id(db, conversation)
        none = await feedback_repo.latest_answer_id(db, f"{conversation}:none")
    assert in_session is not None
    assert single == in_session
    assert none is None


async def test_append_returns_the_id_latest_answer_id_reads_when_a_turn_is_stored_in_a_single_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    external_id = f"tg:single-{uuid.uuid4().hex}"
    conversation = f"tg:{external_id}"
    async with transaction(sessions) as session:
        owner = await get_or_create_user(session, external_id)
        await conversation_repo.open_conversation(session, conversation, user_id=owner.id, channel="telegram")
    async with single_statements(sessions) as db:
        stored = await conversation_repo.append_messages(
            db,
            conversation,
            [StoredMessage("user", "hello"), StoredMessage("assistant", "Hello!")],
            user_id=owner.id,
        )
        refused = await conversation_repo.append_messages(
            db, conversation, [StoredMessage("user", "not yours")], user_id=owner.id + 1
        )
        assert stored == await feedback_repo.latest_answer_id(db, conversation)
    assert stored is not None
    assert refused is None


async def test_decodes_are_recorded_in_input_order_when_written_in_a_single_statement(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        user = await get_or_create_user(session, f"tg:single-{uuid.uuid4().hex}")
    deps = VinDeps(decoders={"offline": UltravinDecoder()}, sessions=sessions)
    vins = ["1HGCM82633A004352", "5YJ3E1EA7KF317000", "1HGCM82633A004353"]
    results = await capability.decode_many(vins, deps=deps, caller=Caller(user.id, channel="telegram"))
    async with transaction(sessions) as session:
        history = await vin_repo.list_history(session, user.id)
    assert [h.vin for h in history] == vins[::-1]  # newest first
    assert [(h.title, h.valid, h.model_year, h.make, h.model, h.provider) for h in reversed(history)] == [
        (v.title, v.valid, v.model_year, v.make, v.model, v.source.provider)
        for v in (r.vehicle for r in results)
        if v is not None
    ]
