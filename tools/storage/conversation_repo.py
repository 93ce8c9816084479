"""Conversations and messages: the assistant's memory, per user and channel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tools.errors import NotAllowed
from tools.storage.models import Conversation, Message
from tools.storage.session import Db
from tools.storage.session import rows as _rows
from tools.storage.user_repo import UserRecord


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


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    """What a turn starts from: the asking user and the conversation's recent messages."""

    user: UserRecord
    messages: list[StoredMessage]


# The user, the conversation's owner and (only when the user owns it) its last messages,
# newest first, in one round trip. Rows: one per message, or one with NULL message columns.
_OPEN_TURN = """
    SELECT u.id, u.external_id, u.username, u.language, u.tier, c.user_id AS owner,
           m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, m.language, m.planner
    FROM users AS u
    LEFT JOIN conversations AS c ON c.id = %(conversation_id)s
    LEFT JOIN LATERAL (
        SELECT id, role, content, tool_calls, tool_call_id, tool_name, language, planner
        FROM messages
        WHERE messages.conversation_id = c.id AND c.user_id = u.id
        ORDER BY messages.id DESC
        LIMIT %(limit)s
    ) AS m ON true
    WHERE u.external_id = %(external_id)s
    ORDER BY m.id DESC
"""

# A first contact: the user and the conversation, created in one statement. No row: the user
# was created meanwhile (a concurrent first request); owner NULL: the conversation is taken.
_FIRST_CONTACT = """
    WITH u AS (
        INSERT INTO users (external_id, username, language)
        VALUES (%(external_id)s, %(username)s, %(language)s)
        ON CONFLICT (external_id) DO NOTHING
        RETURNING id, external_id, username, language, tier
    ), c AS (
        INSERT INTO conversations (id, user_id, channel)
        SELECT %(conversation_id)s, u.id, %(channel)s FROM u
        ON CONFLICT (id) DO NOTHING
        RETURNING user_id
    )
    SELECT u.id, u.external_id, u.username, u.language, u.tier, c.user_id AS owner
    FROM u LEFT JOIN c ON true
"""

_NEW_CONVERSATION = """
    INSERT INTO conversations (id, user_id, channel)
    VALUES (%(conversation_id)s, %(user_id)s, %(channel)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING user_id
"""

_OWNER = "SELECT user_id FROM conversations WHERE id = %(conversation_id)s"

_NOT_YOURS = "This conversation belongs to someone else; start a new one."


async def open_turn(
    db: Db,
    conversation_id: str,
    *,
    external_id: str,
    channel: str,
    limit: int,
    username: str | None = None,
    language: str = "en",
    new_user: bool = False,
) -> OpenedTurn:
    """Return the user (created on first contact) and the conversation's last `limit` messages.

    Creates the conversation for the user when it is new. One statement on the common path
    (a known user in their own conversation), the same as `get_or_create_user`,
    `open_conversation` and `load_messages` in turn. `new_user` says the caller's user
    cannot exist yet (an identity the transport has just minted): the first contact is then
    tried first, one statement instead of an empty read and the creation. It is only a
    hint: when the user exists after all, the turn opens as for a known user.

    Raises:
        NotAllowed: the conversation exists and belongs to another user.
    """
    contact = {
        "external_id": external_id,
        "username": username,
        "language": language,
        "conversation_id": conversation_id,
        "channel": channel[:16],
    }
    if new_user and (created := await _first_contact(db, contact)) is not None:
        return created
    query = {"conversation_id": conversation_id, "external_id": external_id, "limit": limit}
    rows = await _rows(db, _OPEN_TURN, query)
    if not rows:
        if (created := await _first_contact(db, contact)) is not None:
            return created
        # A concurrent first request created the user in between: read it as a known user.
        rows = await _rows(db, _OPEN_TURN, query)
        if not rows:  # pragma: no cover - users are never deleted
            raise RuntimeError("the user disappeared while the turn started")
    first = rows[0]
    user = UserRecord(*first[:5])
    owner = first[5]
    if owner is None:
        await _create_conversation(db, conversation_id, user_id=user.id, channel=channel)
        return OpenedTurn(user, [])
    if owner != user.id:
        raise NotAllowed(_NOT_YOURS)
    messages = [
        StoredMessage(
            role=r[6],
            content=r[7],
            tool_calls=r[8],
            tool_call_id=r[9],
            tool_name=r[10],
            language=r[11],
            planner=r[12],
        )
        for r in reversed(rows)
        if r[6] is not None
    ]
    return OpenedTurn(user, messages)


async def _first_contact(db: Db, contact: dict[str, Any]) -> OpenedTurn | None:
    """Create the user and the conversation; None when the user exists already.

    Raises:
        NotAllowed: the user is new but the conversation belongs to another user.
    """
    created = await _rows(db, _FIRST_CONTACT, contact)
    if not created:
        return None
    user = UserRecord(*created[0][:5])
    if created[0][5] != user.id:
        raise NotAllowed(_NOT_YOURS)
    return OpenedTurn(user, [])


async def _create_conversation(db: Db, conversation_id: str, *, user_id: int, channel: str) -> None:
    params = {"conversation_id": conversation_id, "user_id": user_id, "channel": channel[:16]}
    if await _rows(db, _NEW_CONVERSATION, params):
        return
    # Created by a concurrent request in between: whose is it?
    owner = await _rows(db, _OWNER, params)
    if owner[0][0] != user_id:
        raise NotAllowed(_NOT_YOURS)


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


# Every row as one JSON parameter: one statement, and the same text whatever the row count
# (prepared once per connection). The conversation is touched in the same statement. With a
# user id, nothing is written unless the conversation is still that user's (it was checked
# when the turn opened, in an earlier statement).
_APPEND = """
    WITH touched AS (
        UPDATE conversations SET updated_at = now()
        WHERE id = %(conversation_id)s AND (CAST(%(user_id)s AS bigint) IS NULL OR user_id = %(user_id)s)
    )
    INSERT INTO messages (
        conversation_id, role, content, tool_calls, tool_call_id, tool_name, language, planner,
        input_tokens, output_tokens, estimated_cost_usd, latency_ms
    )
    SELECT %(conversation_id)s, r.role, r.content, r.tool_calls, r.tool_call_id, r.tool_name, r.language,
           r.planner, r.input_tokens, r.output_tokens, r.estimated_cost_usd, r.latency_ms
    FROM ROWS FROM (
        jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS (
            role text, content text, tool_calls jsonb, tool_call_id text, tool_name text, language text,
            planner text, input_tokens integer, output_tokens integer, estimated_cost_usd double precision,
            latency_ms double precision
        )
    ) WITH ORDINALITY AS r (
        role, content, tool_calls, tool_call_id, tool_name, language, planner, input_tokens,
        output_tokens, estimated_cost_usd, latency_ms, ordinal
    )
    WHERE CAST(%(user_id)s AS bigint) IS NULL OR EXISTS (
        SELECT 1 FROM conversations c WHERE c.id = %(conversation_id)s AND c.user_id = %(user_id)s
    )
    ORDER BY r.ordinal
    RETURNING id
"""


async def append_messages(
    db: Db, conversation_id: str, messages: Sequence[StoredMessage], *, user_id: int | None = None
) -> int | None:
    """Append a turn's messages, in order, and touch the conversation (one statement).

    With `user_id`, only if the conversation is still that user's. Returns the id of the
    last message stored (ids grow in the order given), or None when nothing was stored.
    """
    if not messages:
        return None
    rows = [
        {
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
    ]
    params = {
        "conversation_id": conversation_id,
        "user_id": user_id,
        "rows": json.dumps(rows, ensure_ascii=False),
    }
    ids = await _rows(db, _APPEND, params)
    return max((row[0] for row in ids), default=None)


async def forget_conversations(session: AsyncSession, user_id: int) -> int:
    """Delete every conversation (and its messages) of `user_id`; return how many."""
    result = await session.execute(delete(Conversation).where(Conversation.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
