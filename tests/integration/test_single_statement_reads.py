"""The bot's per-update reads in autocommit single statements agree with their session forms."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tools.storage import conversation_repo, feedback_repo
from tools.storage.conversation_repo import StoredMessage
from tools.storage.session import session_factory, transaction
from tools.storage.user_repo import find_or_create_user, get_or_create_user

pytestmark = pytest.mark.integration


@pytest.fixture
async def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Bound to the engine, so `single_statements` lends a pooled psycopg connection in autocommit.
    return session_factory(db_engine)


async def test_user_is_created_once_then_found_when_read_in_single_statements(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    external_id = f"tg:single-{uuid.uuid4().hex}"
    async with conversation_repo.single_statements(sessions) as db:
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
    async with conversation_repo.single_statements(sessions) as db:
        single = await feedback_repo.latest_answer_id(db, conversation)
        none = await feedback_repo.latest_answer_id(db, f"{conversation}:none")
    assert in_session is not None
    assert single == in_session
    assert none is None
