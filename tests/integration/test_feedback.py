"""Feedback in PostgreSQL: one vote per user and answer, only on their own answers, exported as cases."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evals.feedback import to_case
from tools.storage import conversation_repo, feedback_repo
from tools.storage.conversation_repo import StoredMessage
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user

pytestmark = pytest.mark.integration

ACCORD = "1HGCM82633A004352"


async def answered_turn(sessions: async_sessionmaker[AsyncSession], external_id: str) -> tuple[int, int]:
    """Store one decode turn for a new user; return (user id, answer message id)."""
    async with transaction(sessions) as session:
        owner = await get_or_create_user(session, external_id)
        conversation = f"tg:{external_id}"
        await conversation_repo.open_conversation(session, conversation, user_id=owner.id, channel="telegram")
        call = {"name": "decode_vin", "args": {"vin": ACCORD}, "id": "c1", "type": "tool_call"}
        await conversation_repo.append_messages(
            session,
            conversation,
            [
                StoredMessage("user", f"what car is {ACCORD}?", language="en"),
                StoredMessage("assistant", "", tool_calls=[call]),
                StoredMessage("tool", '{"make": "Honda"}', tool_call_id="c1", tool_name="decode_vin"),
                StoredMessage("assistant", "A 2003 Honda Accord.", language="en", planner="offline"),
            ],
        )
        answer_id = await feedback_repo.latest_answer_id(session, conversation)
    assert answer_id is not None
    return owner.id, answer_id


async def test_a_rating_is_stored_once_and_replaced_when_the_user_votes_again(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, answer_id = await answered_turn(db_sessions, "tg:fb-1")
    async with transaction(db_sessions) as session:
        assert await feedback_repo.record(
            session, user_id=user_id, message_id=answer_id, rating=1, channel="telegram"
        )
        assert await feedback_repo.record(
            session, user_id=user_id, message_id=answer_id, rating=-1, channel="telegram"
        )
    async with db_sessions() as session:
        turns = [t async for t in feedback_repo.iter_rated_turns(session)]
    mine = [t for t in turns if t.answer == "A 2003 Honda Accord." and t.rating == -1]
    assert len(mine) == 1
    assert mine[0].question == f"what car is {ACCORD}?"
    assert mine[0].tool_calls == [{"name": "decode_vin", "args": {"vin": ACCORD}}]


async def test_another_users_answer_cannot_be_rated_when_its_id_is_guessed(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    _owner, answer_id = await answered_turn(db_sessions, "tg:fb-owner")
    async with transaction(db_sessions) as session:
        stranger = await get_or_create_user(session, "tg:fb-stranger")
        stored = await feedback_repo.record(
            session, user_id=stranger.id, message_id=answer_id, rating=-1, channel="telegram"
        )
    assert stored is False


async def test_a_rated_turn_becomes_an_eval_case_when_exported(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, answer_id = await answered_turn(db_sessions, "tg:fb-export")
    async with transaction(db_sessions) as session:
        await feedback_repo.record(
            session, user_id=user_id, message_id=answer_id, rating=1, channel="telegram"
        )
    async with db_sessions() as session:
        turns = [t async for t in feedback_repo.iter_rated_turns(session, rating=1)]
    turn = next(t for t in turns if t.answer == "A 2003 Honda Accord.")
    case = to_case(turn)
    assert case.turns == (f"what car is {ACCORD}?",)
    assert [c.name for c in case.expected.trajectory] == ["decode_vin"]
    assert case.expected.trajectory[0].args == {"vin": ACCORD}
    assert case.expected.language == "en"
    assert "feedback-up" in case.tags


async def test_forgetting_a_user_deletes_their_ratings_when_asked(
    db_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, answer_id = await answered_turn(db_sessions, "tg:fb-forget")
    async with transaction(db_sessions) as session:
        await feedback_repo.record(
            session, user_id=user_id, message_id=answer_id, rating=1, channel="telegram"
        )
        assert await feedback_repo.forget_feedback(session, user_id) == 1
        assert await conversation_repo.forget_conversations(session, user_id) == 1
        assert await feedback_repo.latest_answer_id(session, "tg:tg:fb-forget") is None
