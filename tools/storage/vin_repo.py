"""VIN decodes: the durable cache (`vin_cache`) and each user's history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.domain.vehicle import DecodedVehicle
from tools.errors import ProviderUnavailable
from tools.providers.base import DecodeRequest
from tools.storage.models import UserVinHistory, VinCacheEntry
from tools.storage.session import Db, rows

# A database that is down or unreachable; the durable cache then degrades to a miss.
DB_FAILURES: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, SQLTimeoutError, OSError)


class PgVinStore:
    """The durable decode cache behind Redis, in PostgreSQL.

    It runs its own short transactions: a cache write is not part of the
    caller's unit of work and must not be rolled back with it.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl: timedelta) -> None:
        self._sessions = sessions
        self._ttl = ttl

    async def load(self, provider: str, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle | None]:
        """Return stored decodes younger than the TTL, None elsewhere."""
        if not requests:
            return []
        keys = [(provider, r.vin.value, r.year or 0) for r in requests]
        try:
            async with self._sessions() as session:
                rows = await session.execute(
                    select(VinCacheEntry.vin, VinCacheEntry.year_hint, VinCacheEntry.payload).where(
                        tuple_(VinCacheEntry.provider, VinCacheEntry.vin, VinCacheEntry.year_hint).in_(keys),
                        VinCacheEntry.decoded_at > func.now() - self._ttl,
                    )
                )
                found = {(vin, year): payload for vin, year, payload in rows}
        except DB_FAILURES as e:
            raise ProviderUnavailable("vin-cache") from e
        return [
            DecodedVehicle.model_validate(found[(vin, year)]) if (vin, year) in found else None
            for _, vin, year in keys
        ]

    async def save(self, provider: str, decoded: Sequence[tuple[DecodeRequest, DecodedVehicle]]) -> None:
        """Upsert decodes."""
        if not decoded:
            return
        values = {
            (provider, r.vin.value, r.year or 0): {
                "provider": provider,
                "vin": r.vin.value,
                "year_hint": r.year or 0,
                "payload": v.model_dump(mode="json"),
                "data_version": v.source.data_version,
            }
            for r, v in decoded
        }
        stmt = insert(VinCacheEntry).values(list(values.values()))
        stmt = stmt.on_conflict_do_update(
            index_elements=[VinCacheEntry.provider, VinCacheEntry.vin, VinCacheEntry.year_hint],
            set_={
                "payload": stmt.excluded.payload,
                "data_version": stmt.excluded.data_version,
                "decoded_at": func.now(),
            },
        )
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(stmt)
        except DB_FAILURES as e:
            raise ProviderUnavailable("vin-cache") from e


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a user's decode history."""

    vin: str
    title: str
    valid: bool
    model_year: int | None
    make: str | None
    model: str | None
    provider: str
    decoded_at: datetime


# Every row as one JSON parameter: one statement, and the same text whatever the row count
# (prepared once per connection); rows are inserted in the order given.
_RECORD_HISTORY = """
    INSERT INTO user_vin_history (user_id, vin, valid, model_year, make, model, title, provider, channel)
    SELECT %(user_id)s, r.vin, r.valid, r.model_year, r.make, r.model, r.title, r.provider, %(channel)s
    FROM ROWS FROM (
        jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS (
            vin text, valid boolean, model_year integer, make text, model text, title text, provider text
        )
    ) WITH ORDINALITY AS r (vin, valid, model_year, make, model, title, provider, ordinal)
    ORDER BY r.ordinal
"""


async def record_history(db: Db, user_id: int, vehicles: Sequence[DecodedVehicle], *, channel: str) -> None:
    """Append decodes to the user's history, in order (one statement).

    In autocommit (`session.single_statements`) the statement commits on its own; in a
    session, as part of its transaction.
    """
    if not vehicles:
        return
    entries = [
        {
            "vin": v.vin,
            "valid": v.valid,
            "model_year": v.model_year,
            "make": (v.make or "")[:64] or None,
            "model": (v.model or "")[:128] or None,
            "title": v.title[:256],
            "provider": v.source.provider,
        }
        for v in vehicles
    ]
    params = {"user_id": user_id, "channel": channel[:16], "rows": json.dumps(entries, ensure_ascii=False)}
    await rows(db, _RECORD_HISTORY, params)


# Newest first; the index on (user_id, decoded_at) serves the order.
_LIST_HISTORY = """
    SELECT vin, title, valid, model_year, make, model, provider, decoded_at
    FROM user_vin_history
    WHERE user_id = %(user_id)s
    ORDER BY decoded_at DESC, id DESC
    LIMIT %(limit)s
"""


async def list_history(db: Db, user_id: int, *, limit: int = 20) -> list[HistoryEntry]:
    """Return the user's most recent decodes, newest first (one statement, no ORM objects)."""
    return [HistoryEntry(*row) for row in await rows(db, _LIST_HISTORY, {"user_id": user_id, "limit": limit})]


async def forget_history(session: AsyncSession, user_id: int) -> int:
    """Delete the user's decode history; return how many entries went."""
    result = await session.execute(delete(UserVinHistory).where(UserVinHistory.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
