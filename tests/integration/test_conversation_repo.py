"""A turn's memory in PostgreSQL: opened in one statement, stored in one, and only the owner's."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tools.errors import NotAllowed
from tools.storage import conversation_repo
from tools.storage.conversation_repo import StoredMessage
from tools.storage.models import Conversation, Message, User
from tools.storage.session import Db, create_engine, session_factory, single_statements
from tools.storage.user_repo import get_or_create_user

pytestmark = pytest.mark.integration

CALL = {"name": "decode_vin", "args": {"vin": "1HGCM82633A004352"}, "id": "call_1", "type": "tool_call"}


def turn(question: str, answer: str) -> list[StoredMessage]:
    return [
        StoredMessage("user", question, language="en"),
        StoredMessage("assistant", "", tool_calls=[CALL], language="en", planner="offline"),
        StoredMessage("tool", '{"vin": "1HGCM82633A004352"}', tool_call_id="call_1", tool_name="decode_vin"),
        StoredMessage(
            "assistant", answer, language="en", planner="offline", input_tokens=7, estimated_cost_usd=0.5
        ),
    ]


async def open_turn(
    session: Db, conversation: str, who: str, limit: int = 60, *, new_user: bool = False
) -> Any:
    return await conversation_repo.open_turn(
        session,
        conversation,
        external_id=who,
        channel="test",
        limit=limit,
        username="ann",
        language="fr",
        new_user=new_user,
    )


async def test_first_contact_creates_the_user_and_the_conversation_when_both_are_new(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        opened = await open_turn(session, "test:c1", "test:ann")
        again = await open_turn(session, "test:c1", "test:ann")
        owner = (
            await session.execute(select(Conversation.user_id).where(Conversation.id == "test:c1"))
        ).scalar()
        user = (await session.execute(select(User).where(User.external_id == "test:ann"))).scalar_one()
    assert opened.messages == []
    assert again.messages == []
    assert opened.user == again.user
    assert owner == opened.user.id == user.id
    assert (user.username, user.language, user.tier) == ("ann", "fr", "free")


async def test_recent_messages_come_back_oldest_first_with_their_calls_when_the_owner_asks(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        await open_turn(session, "test:c2", "test:bob")
        await conversation_repo.append_messages(session, "test:c2", turn("decode it", "An Accord."))
        await conversation_repo.append_messages(session, "test:c2", turn("and again", "Still an Accord."))
        opened = await open_turn(session, "test:c2", "test:bob")
        last_three = await open_turn(session, "test:c2", "test:bob", limit=3)
        stored = (
            await session.execute(select(Message).where(Message.conversation_id == "test:c2"))
        ).scalars()
        rows = sorted(stored, key=lambda m: m.id)
    assert [m.content for m in opened.messages] == [m.content for m in rows]
    assert [m.role for m in opened.messages] == ["user", "assistant", "tool", "assistant"] * 2
    assert opened.messages[1].tool_calls == [CALL]
    assert (opened.messages[2].tool_call_id, opened.messages[2].tool_name) == ("call_1", "decode_vin")
    assert [m.content for m in last_three.messages] == [m.content for m in rows[-3:]]
    # Usage is recorded on the rows (the memory does not read it back).
    assert (rows[3].input_tokens, rows[3].estimated_cost_usd, rows[1].tool_calls) == (7, 0.5, [CALL])


async def test_a_turn_is_not_stored_in_a_conversation_that_another_user_owns_when_appended(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        gus = (await open_turn(session, "test:c6", "test:gus")).user
        hal = (await open_turn(session, "test:c7", "test:hal")).user
        await conversation_repo.append_messages(session, "test:c6", turn("gus asks", "gus"), user_id=gus.id)
        # The conversation is gus's: a turn opened by hal must not land in it.
        await conversation_repo.append_messages(session, "test:c6", turn("hal asks", "hal"), user_id=hal.id)
        stored = (
            await session.execute(select(Message.content).where(Message.conversation_id == "test:c6"))
        ).scalars()
    assert sorted(stored) == sorted(["gus asks", "", '{"vin": "1HGCM82633A004352"}', "gus"])


async def test_another_users_conversation_is_refused_and_its_messages_stay_unread_when_opened(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        await open_turn(session, "test:c3", "test:carl")
        await conversation_repo.append_messages(session, "test:c3", turn("my VIN", "Carl's Accord."))
        await get_or_create_user(session, "test:dora")  # a known user
        with pytest.raises(NotAllowed):
            await open_turn(session, "test:c3", "test:dora")
        with pytest.raises(NotAllowed):  # a first contact
            await open_turn(session, "test:c3", "test:eve")


async def test_a_known_user_gets_a_new_conversation_when_the_id_is_new(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with db_sessions() as session, session.begin():
        first = await open_turn(session, "test:c4", "test:fay")
        second = await open_turn(session, "test:c5", "test:fay")
        owner = (
            await session.execute(select(Conversation.user_id).where(Conversation.id == "test:c5"))
        ).scalar()
    assert second.user == first.user
    assert second.messages == []
    assert owner == first.user.id


async def test_a_new_users_turn_opens_in_one_statement_and_a_wrong_hint_still_opens_the_known_users(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    executed: list[str] = []
    async with db_sessions() as session, session.begin():
        connection = await session.connection()
        event.listen(connection.sync_connection, "before_cursor_execute", lambda *a: executed.append(a[2]))
        new = await open_turn(session, "test:c8", "test:ivy", new_user=True)
        statements = len(executed)
        await conversation_repo.append_messages(session, "test:c8", turn("q", "a"), user_id=new.user.id)
        again = await open_turn(session, "test:c8", "test:ivy", new_user=True)  # the hint is wrong now
        with pytest.raises(NotAllowed):  # a new user, but the conversation is ivy's
            await open_turn(session, "test:c8", "test:jon", new_user=True)
    assert statements == 1
    assert (new.messages, new.user.language) == ([], "fr")
    assert again.user == new.user
    assert [m.content for m in again.messages] == ["q", "", '{"vin": "1HGCM82633A004352"}', "a"]


async def test_each_statement_commits_on_its_own_when_sessions_are_on_the_engine(
    db_engine: AsyncEngine,
) -> None:
    sessions = session_factory(db_engine)
    who, conversation = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    async with single_statements(sessions) as db:
        await open_turn(db, conversation, who)
        await conversation_repo.append_messages(db, conversation, turn("q", "a"))
        # Committed as they ran: another connection sees them before this one is returned.
        async with sessions() as session:
            stored = (
                await session.execute(select(Message.content).where(Message.conversation_id == conversation))
            ).scalars()
            assert sorted(stored) == sorted(["q", "", '{"vin": "1HGCM82633A004352"}', "a"])
        with pytest.raises(NotAllowed):
            await open_turn(db, conversation, f"test:{uuid.uuid4().hex}")
        opened = await open_turn(db, conversation, who)  # a refused turn left the connection usable
    assert [m.content for m in opened.messages] == ["q", "", '{"vin": "1HGCM82633A004352"}', "a"]
    async with sessions() as session:
        owner = (
            await session.execute(select(Conversation.user_id).where(Conversation.id == conversation))
        ).scalar()
    assert owner == opened.user.id


async def _backend_pid(db: Db) -> int:
    assert not isinstance(db, AsyncSession)
    cursor = await db.execute("SELECT pg_backend_pid()")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_pooled_connection_goes_back_out_of_autocommit_when_the_statements_are_done(
    pg_url: str,
) -> None:
    engine = create_engine(pg_url, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with single_statements(sessions) as db:
            first = await _backend_pid(db)
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw.autocommit is False  # a session's transaction is a transaction again
        async with single_statements(sessions) as db:
            assert await _backend_pid(db) == first  # the same pooled connection, lent again
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_connection_is_replaced_when_the_server_closed_it_while_it_was_lent(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1)
    try:
        sessions = session_factory(engine)
        lent: list[int] = []

        async def closed_under_us() -> None:
            async with single_statements(sessions) as db:
                lent.append(await _backend_pid(db))
                async with sessions() as admin:  # another connection (overflow) ends this one's backend
                    await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lent[0]})
                await _backend_pid(db)

        with pytest.raises(psycopg.OperationalError):
            await closed_under_us()
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        async with single_statements(sessions) as db:
            assert await _backend_pid(db) != lent[0]  # a new connection, not the closed one
    finally:
        await engine.dispose()
