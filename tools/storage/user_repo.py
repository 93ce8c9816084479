"""Users: created on first contact on any channel."""

from __future__ import annotations

from dataclasses import dataclass

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


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    """Store the user's chosen language (`/language` in the bot)."""
    await session.execute(update(User).where(User.id == user_id).values(language=language))
