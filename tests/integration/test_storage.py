from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tools.embedded import EmbeddedPostgres
from tools.storage import migrate

pytestmark = pytest.mark.integration


async def test_schema_has_tables_and_vector_extension_when_migrated(db_engine: AsyncEngine) -> None:
    async with db_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        ext = (
            await conn.execute(text("SELECT extversion FROM pg_extension WHERE extname='vector'"))
        ).scalar()
    assert {"users", "vin_cache", "user_vin_history", "alembic_version"} <= tables
    assert ext is not None


def test_migrations_go_down_to_base_and_up_again_when_run_on_a_fresh_database() -> None:
    import tempfile
    from pathlib import Path

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="vinbot-pgmig-")), database="vinbot_migrations")
    url = server.start()
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            left = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
            ext = conn.execute("SELECT 1 FROM pg_extension WHERE extname='vector'").fetchone()
        assert left <= {"alembic_version"}
        assert ext is None
        migrate.upgrade(url)
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None
        assert row[0] == ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()
    finally:
        server.stop()


async def test_models_match_the_migrated_schema_when_compared_by_alembic(db_engine: AsyncEngine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tools.storage.models import Base

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with db_engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
