"""Feedback on answers: one 👍/👎 per user and answer, and the rated turns for the eval harness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.models import Conversation, Feedback, Message
from tools.storage.session import Db, rows


@dataclass(frozen=True, slots=True)
class RatedTurn:
    """One rated answer with the question that led to it and the tools it called."""

    feedback_id: int
    rating: int
    channel: str
    question: str
    answer: str
    language: str | None
    planner: str | None
    tool_calls: list[dict[str, Any]]
    rated_at: datetime


# An answer's `tool_calls` is SQL NULL, JSON null or [], depending on how it was written.
_LATEST_ANSWER = """
    SELECT id FROM (
        SELECT id, tool_calls FROM messages
        WHERE conversation_id = %(conversation_id)s AND role = 'assistant'
        ORDER BY id DESC LIMIT 4
    ) AS recent
    WHERE tool_calls IS NULL OR tool_calls IN ('null'::jsonb, '[]'::jsonb)
    ORDER BY id DESC LIMIT 1
"""


async def latest_answer_id(db: Db, conversation_id: str) -> int | None:
    """Return the id of the conversation's newest assistant answer (text, not a tool call).

    On a psycopg connection in autocommit (`session.single_statements`) this is
    one round trip, with no BEGIN and ROLLBACK around it.
    """
    found = await rows(db, _LATEST_ANSWER, {"conversation_id": conversation_id})
    return int(found[0][0]) if found else None


async def record(session: AsyncSession, *, user_id: int, message_id: int, rating: int, channel: str) -> bool:
    """Store the user's rating of an answer, replacing an earlier one; return False if not theirs.

    Only an assistant message in one of the user's own conversations can be rated.
    """
    if rating not in (1, -1):
        raise ValueError("rating must be +1 or -1")
    owned = (
        select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id == message_id, Message.role == "assistant", Conversation.user_id == user_id)
    )
    if (await session.execute(owned)).scalar_one_or_none() is None:
        return False
    stmt = insert(Feedback).values(
        user_id=user_id, message_id=message_id, rating=rating, channel=channel[:16]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            constraint="uq_feedback_user_message",
            set_={"rating": stmt.excluded.rating, "updated_at": func.now()},
        )
    )
    return True


async def forget_feedback(session: AsyncSession, user_id: int) -> int:
    """Delete every rating the user gave; return how many."""
    result = await session.execute(delete(Feedback).where(Feedback.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def iter_rated_turns(
    session: AsyncSession, *, since: datetime | None = None, rating: int | None = None
) -> AsyncIterator[RatedTurn]:
    """Yield every rated answer, oldest rating first, with its question and the turn's tool calls."""
    query = (
        select(Feedback, Message)
        .join(Message, Message.id == Feedback.message_id)
        .order_by(Feedback.updated_at, Feedback.id)
    )
    if since is not None:
        query = query.where(Feedback.updated_at >= since)
    if rating is not None:
        query = query.where(Feedback.rating == rating)
    for feedback, answer in (await session.execute(query)).all():
        question_id = (
            select(func.max(Message.id))
            .where(
                Message.conversation_id == answer.conversation_id,
                Message.role == "user",
                Message.id < answer.id,
            )
            .scalar_subquery()
        )
        turn = (
            (
                await session.execute(
                    select(Message)
                    .where(
                        and_(
                            Message.conversation_id == answer.conversation_id,
                            Message.id >= question_id,
                            Message.id <= answer.id,
                        )
                    )
                    .order_by(Message.id)
                )
            )
            .scalars()
            .all()
        )
        question = next((m.content for m in turn if m.role == "user"), "")
        calls = [
            {"name": call.get("name"), "args": call.get("args", {})}
            for m in turn
            if m.role == "assistant" and m.tool_calls
            for call in m.tool_calls
        ]
        yield RatedTurn(
            feedback_id=feedback.id,
            rating=feedback.rating,
            channel=feedback.channel,
            question=question,
            answer=answer.content,
            language=answer.language,
            planner=answer.planner,
            tool_calls=calls,
            rated_at=feedback.updated_at,
        )
