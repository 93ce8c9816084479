"""Engines and sessions. The entrypoint owns the transaction; repositories never commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

PING_IDLE_AFTER_S = 10.0
"""A pooled connection idle longer than this is pinged before it is lent out."""
RECYCLE_AFTER_S = 1800
"""A connection older than this is closed and replaced when it is next checked out."""
MAX_OVERFLOW = 5
"""Connections opened beyond the pool under a burst, and closed again when returned."""
_IDLE_SINCE = "vinbot_idle_since"
_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


def async_url(url: str) -> str:
    """Return `url` with the psycopg 3 driver SQLAlchemy needs (`postgresql+psycopg://`)."""
    for prefix in ("postgresql+psycopg://", "postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def create_engine(
    url: str, *, pool_size: int = 5, ping_idle_after_s: float = PING_IDLE_AFTER_S
) -> AsyncEngine:
    """Create the process's async engine; see `ping_idle_connections` for its liveness checks.

    The pool lends the connection returned last (LIFO): the same few connections (and their
    server processes) stay warm, where a FIFO pool cycles through all of them. A statement
    on a freshly returned connection costs ~30% less CPU here (checkout + `SELECT 1`: 490-540
    -> 340-380 us), and idle connections stay idle long enough to be pinged or recycled.
    """
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=MAX_OVERFLOW,
        pool_recycle=RECYCLE_AFTER_S,
        pool_use_lifo=True,
    )
    ping_idle_connections(engine, idle_after_s=ping_idle_after_s)
    return engine


def ping_idle_connections(engine: AsyncEngine, *, idle_after_s: float = PING_IDLE_AFTER_S) -> None:
    """Ping a pooled connection before lending it out only when it has been idle a while.

    `pool_pre_ping` pings on every checkout: one extra round trip for each transaction,
    several per bot update or API request. A connection returned moments ago is as alive
    as the ping would prove, so only one idle longer than `idle_after_s` (the server or a
    proxy may have closed it meanwhile) is pinged; a dead one is replaced before use, as
    `pool_pre_ping` would. A connection that dies while in steady use fails its statement
    instead: SQLAlchemy recognises the disconnect, discards that connection and every
    older one in the pool, and the next transaction gets a new connection.
    """
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    @event.listens_for(pool, "checkin")
    def _mark_idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_after_s:
            return  # a new connection, or one in steady use
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as e:
            # As `pool_pre_ping`: discard this connection and every older one, then connect anew.
            raise exc.InvalidatePoolError("an idle pooled connection was closed") from e


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the session factory bound to `engine`."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session and commit when the block succeeds, roll back when it raises."""
    async with sessions() as session, session.begin():
        yield session


Db = AsyncSession | psycopg.AsyncConnection[Any]
"""Where single statements run: a session, or a pooled psycopg connection in autocommit."""


@asynccontextmanager
async def single_statements(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Db]:
    """Open a connection whose statements commit one by one (no BEGIN and COMMIT round trips).

    For work whose reads and writes are each one statement (atomic on its own): the
    assistant's turn, the bot's reads, a decode's history; a statement that fails changes
    nothing. The statements go to the pooled psycopg connection itself, checked out of the
    engine's pool directly (its checkout and checkin events, liveness ping and reset
    included): each statement costs half the CPU it costs through a SQLAlchemy session, and
    the checkout a third less than through `AsyncEngine.connect`. Sessions bound to a
    connection rather than an engine (the tests' rolled-back outer transaction) run them in
    one transaction instead. Run statements with `rows`.
    """
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        async with sessions() as session, session.begin():
            yield session
        return
    pooled = await greenlet_spawn(bind.sync_engine.pool.connect)
    try:
        raw = cast(psycopg.AsyncConnection[Any], pooled.driver_connection)
        await raw.set_autocommit(True)
        try:
            yield raw
        finally:
            await _back_to_transactions(raw, lambda e: greenlet_spawn(pooled.invalidate, e))
    finally:
        await asyncio.shield(greenlet_spawn(pooled.close))


@asynccontextmanager
async def autocommit_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session whose statements each commit on their own: no BEGIN and COMMIT round trips.

    `single_statements` for code that runs on a session (search: reads that need no common
    snapshot, where a statement that sets `hnsw.ef_search` goes in one pipeline with the
    query it is for, as the statements before a pipeline's Sync are one implicit
    transaction). Sessions bound to a connection rather than an engine (the tests'
    rolled-back outer transaction) run them in one transaction.
    """
    async with sessions() as session:
        if not isinstance(sessions.kw.get("bind"), AsyncEngine):
            async with session.begin():
                yield session
            return
        connection = await session.connection()
        raw = cast(psycopg.AsyncConnection[Any], (await connection.get_raw_connection()).driver_connection)
        await raw.set_autocommit(True)
        try:
            yield session
        finally:
            await _back_to_transactions(raw, lambda e: connection.invalidate())


async def _back_to_transactions(
    raw: psycopg.AsyncConnection[Any], discard: Callable[[BaseException], Awaitable[Any]]
) -> None:
    """Switch a connection lent in autocommit back to transactions before the pool takes it back.

    A connection that cannot be switched back (broken, busy after a cancelled statement, or
    the switch itself cancelled) is discarded (`discard`): lent out in autocommit, it would
    commit a later transaction's statements one by one. Errors other than the driver's
    (a cancellation) propagate once it is discarded.
    """
    try:
        await raw.set_autocommit(False)
    except BaseException as e:
        await asyncio.shield(discard(e))
        if not isinstance(e, psycopg.Error):
            raise


async def rows(db: Db, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement (psycopg's `%(name)s` parameters); return its rows, if it has any."""
    if isinstance(db, AsyncSession):
        result = await (await db.connection()).exec_driver_sql(sql, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    cursor = await db.execute(sql, params)
    # Whether rows came back, from the result's status: `cursor.description` would build a
    # `Column` object per column (13 for a turn's history) only to be compared with None.
    outcome = cursor.pgresult
    return await cursor.fetchall() if outcome is not None and outcome.status == _TUPLES_OK else []
