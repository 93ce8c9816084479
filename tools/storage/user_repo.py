"""Users: created on first contact on any channel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.models import User
from tools.storage.session import Db, rows


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
    """Return the user with `external_id`, creating it with the given defaults if new (in the session)."""
    return await find_or_create_user(session, external_id, username=username, language=language, tier=tier)


_FIND = "SELECT id, external_id, username, language, tier FROM users WHERE external_id = %(external_id)s"
_CREATE = """
    INSERT INTO users (external_id, username, language, tier)
    VALUES (%(external_id)s, %(username)s, %(language)s, %(tier)s)
    ON CONFLICT (external_id) DO NOTHING
    RETURNING id, external_id, username, language, tier
"""


async def find_or_create_user(
    db: Db,
    external_id: str,
    *,
    username: str | None = None,
    language: str = "en",
    tier: str = "free",
) -> UserRecord:
    """Return the user with `external_id`, creating it with the given defaults if new.

    Almost every call finds the user: one statement, and the insert only for a first
    contact. On a psycopg connection in autocommit (`session.single_statements`) a known
    user costs one round trip, with no BEGIN and COMMIT around it.
    """
    params = {"external_id": external_id, "username": username, "language": language, "tier": tier}
    found = await rows(db, _FIND, params) or await rows(db, _CREATE, params)
    if not found:  # created by a concurrent first contact in between
        found = await rows(db, _FIND, params)
    if not found:  # pragma: no cover - users are never deleted
        raise RuntimeError("the user disappeared while being created")
    return UserRecord(*found[0])


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    """Store the user's chosen language (`/language` in the bot)."""
    await session.execute(update(User).where(User.id == user_id).values(language=language))
