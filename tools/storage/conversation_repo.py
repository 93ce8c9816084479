"""Conversations and messages: the assistant's memory, per user and channel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tools.errors import NotAllowed
from tools.storage.models import Conversation, Message


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message, as the agent's memory reads it back."""

    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    language: str | None = None
    planner: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0
    latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def open_conversation(
    session: AsyncSession, conversation_id: str, *, user_id: int, channel: str
) -> None:
    """Create the conversation for `user_id`, or check that it is theirs.

    Raises:
        NotAllowed: the conversation exists and belongs to another user.
    """
    owner_query = select(Conversation.user_id).where(Conversation.id == conversation_id)
    owner = (await session.execute(owner_query)).scalar_one_or_none()
    if owner is None:  # a new conversation (a concurrent creator is settled by the upsert)
        await session.execute(
            insert(Conversation)
            .values(id=conversation_id, user_id=user_id, channel=channel[:16])
            .on_conflict_do_nothing(index_elements=[Conversation.id])
        )
        owner = (await session.execute(owner_query)).scalar_one()
    if owner != user_id:
        raise NotAllowed("This conversation belongs to someone else; start a new one.")


async def load_messages(session: AsyncSession, conversation_id: str, *, limit: int) -> list[StoredMessage]:
    """Return the conversation's last `limit` messages, oldest first."""
    rows = (
        await session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
    ).scalars()
    return [
        StoredMessage(
            role=m.role,
            content=m.content,
            tool_calls=m.tool_calls,
            tool_call_id=m.tool_call_id,
            tool_name=m.tool_name,
            language=m.language,
            planner=m.planner,
        )
        for m in reversed(list(rows))
    ]


async def append_messages(
    session: AsyncSession, conversation_id: str, messages: Sequence[StoredMessage]
) -> None:
    """Append a turn's messages and touch the conversation."""
    if not messages:
        return
    # render_nulls: one multi-row INSERT even when rows leave different columns empty.
    await session.execute(
        insert(Message).execution_options(render_nulls=True),
        [
            {
                "conversation_id": conversation_id,
                "role": m.role,
                "content": m.content,
                "tool_calls": m.tool_calls,
                "tool_call_id": m.tool_call_id,
                "tool_name": m.tool_name,
                "language": m.language,
                "planner": m.planner,
                "input_tokens": m.input_tokens,
                "output_tokens": m.output_tokens,
                "estimated_cost_usd": m.estimated_cost_usd,
                "latency_ms": m.latency_ms,
            }
            for m in messages
        ],
    )
    await session.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(updated_at=func.now())
    )


async def forget_conversations(session: AsyncSession, user_id: int) -> int:
    """Delete every conversation (and its messages) of `user_id`; return how many."""
    result = await session.execute(delete(Conversation).where(Conversation.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
