"""The engine's liveness checks: idle pooled connections are pinged, busy ones are not."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tools.storage.session import create_engine

pytestmark = pytest.mark.integration


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _terminate(pg_url: str, pid: int) -> None:
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_idle_connection_closed_by_the_server_is_replaced_before_use(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, ping_idle_after_s=0.0)
    try:
        first = await _backend_pid(engine)
        _terminate(pg_url, first)
        second = await _backend_pid(engine)  # no error: the ping found it closed
        assert second != first
    finally:
        await engine.dispose()


async def test_connection_in_steady_use_is_not_pinged_and_fails_once_when_closed(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, ping_idle_after_s=3600.0)
    try:
        first = await _backend_pid(engine)
        _terminate(pg_url, first)
        with pytest.raises(DBAPIError) as failed:  # not pinged: the statement meets the closed socket
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()
