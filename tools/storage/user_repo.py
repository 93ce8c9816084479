"""Users: created on first contact on any channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.models import User


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the capabilities see one."""

    id: int
    external_id: str
    username: str | None
    language: str
    tier: str


async def get_or_create_user(
    session: AsyncSession,
    external_id: str,
    *,
    username: str | None = None,
    language: str = "en",
    tier: str = "free",
) -> UserRecord:
    """Return the user with `external_id`, creating it with the given defaults if new."""
    # Almost every call finds the user: one SELECT, and the upsert only for a first contact.
    user = (await session.execute(select(User).where(User.external_id == external_id))).scalar_one_or_none()
    if user is not None:
        return UserRecord(user.id, user.external_id, user.username, user.language, user.tier)
    stmt = (
        insert(User)
        .values(external_id=external_id, username=username, language=language, tier=tier)
        .on_conflict_do_nothing(index_elements=[User.external_id])
    )
    await session.execute(stmt)
    user = (await session.execute(select(User).where(User.external_id == external_id))).scalar_one()
    return UserRecord(user.id, user.external_id, user.username, user.language, user.tier)


_FIND = "SELECT id, external_id, username, language, tier FROM users WHERE external_id = %(external_id)s"
_CREATE = """
    INSERT INTO users (external_id, username, language, tier)
    VALUES (%(external_id)s, %(username)s, %(language)s, %(tier)s)
    ON CONFLICT (external_id) DO NOTHING
    RETURNING id, external_id, username, language, tier
"""


async def find_or_create_user(
    db: AsyncSession | psycopg.AsyncConnection[Any],
    external_id: str,
    *,
    username: str | None = None,
    language: str = "en",
    tier: str = "free",
) -> UserRecord:
    """Return the user with `external_id` as `get_or_create_user` does, in single statements.

    On a psycopg connection in autocommit (`session.single_statements`) a known
    user costs one round trip, with no BEGIN and COMMIT around it; a session runs
    `get_or_create_user`.
    """
    if isinstance(db, AsyncSession):
        return await get_or_create_user(db, external_id, username=username, language=language, tier=tier)
    params = {"external_id": external_id, "username": username, "language": language, "tier": tier}
    row = await (await db.execute(_FIND, params)).fetchone()
    if row is None:
        row = await (await db.execute(_CREATE, params)).fetchone()
    if row is None:  # created by a concurrent first contact in between
        row = await (await db.execute(_FIND, params)).fetchone()
    if row is None:  # pragma: no cover - users are never deleted
        raise RuntimeError("the user disappeared while being created")
    return UserRecord(*row)


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    """Store the user's chosen language (`/language` in the bot)."""
    await session.execute(update(User).where(User.id == user_id).values(language=language))
