"""Build the tools' dependencies from settings. Called only by composition roots.

`open_infrastructure` starts or connects to PostgreSQL, Redis and the shared HTTP
client (embedded servers when nothing is configured) and closes them on exit;
`build_tool_deps` wires providers, caches and limits on top of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tools.bulk import BulkDeps, CeleryJobQueue, JobQueue, broker_url_for
from tools.embedded import EmbeddedPostgres, EmbeddedRedis
from tools.providers.autodev import AutodevVinDecoder
from tools.providers.base import KvStore, Limit, VinDecoder
from tools.providers.cache import CACHE_FAILURES, CachedVinDecoder, DurableVinDecoder, KvCache
from tools.providers.embeddings import build_embedder
from tools.providers.fallback import FallbackVinDecoder
from tools.providers.kv import RedisKvStore, UpstashKvStore
from tools.providers.nhtsa import NhtsaVinDecoder
from tools.providers.ratelimit import GcraRateLimiter, RateLimitedVinDecoder
from tools.providers.ultravin import UltravinDecoder
from tools.settings import Settings
from tools.specs import KnowledgeDeps, QueryEmbedder, VocabularyCache
from tools.storage import migrate
from tools.storage.session import create_engine, session_factory
from tools.storage.vin_repo import PgVinStore
from tools.vin import VinDeps

logger = logging.getLogger(__name__)

USER_AGENT = "vinbot/0.1 (+https://github.com/vinbot)"


@dataclass
class Infrastructure:
    """Open connections to the backing services of one process."""

    database_url: str
    redis_url: str | None
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    kv: KvStore
    http: httpx.AsyncClient
    broker_url: str | None = None  # Celery's: `redis+socket://<socket>` for the embedded Redis
    job_queue: JobQueue | None = None  # None without Redis (Upstash alone cannot be a broker)

    async def check(self) -> dict[str, bool]:
        """Return the health of the database and the cache."""
        status = {"database": False, "cache": False}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            status["database"] = True
        except (SQLAlchemyError, OSError) as e:
            logger.warning("database health check failed: %s", type(e).__name__)
        try:
            status["cache"] = await self.kv.ping()
        except CACHE_FAILURES as e:
            logger.warning("cache health check failed: %s", type(e).__name__)
        return status


@asynccontextmanager
async def open_infrastructure(
    settings: Settings, *, migrate_schema: bool = True
) -> AsyncIterator[Infrastructure]:
    """Connect to (or start) PostgreSQL and Redis and open the HTTP client; close all on exit."""
    async with AsyncExitStack() as stack:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(embedded_pg_dir(settings))
            database_url = await asyncio.to_thread(pg.start)
            stack.callback(pg.stop)
        if migrate_schema:
            await asyncio.to_thread(migrate.upgrade, database_url)

        kv: KvStore
        redis_url = settings.redis_url
        if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token and not redis_url:
            upstash = UpstashKvStore.from_credentials(
                settings.upstash_redis_rest_url, settings.upstash_redis_rest_token.get_secret_value()
            )
            stack.push_async_callback(upstash.aclose)
            kv = upstash
        else:
            if not redis_url:
                embedded = EmbeddedRedis(settings.redis_dir)
                redis_url = await asyncio.to_thread(embedded.start)
                stack.callback(embedded.stop)
            redis_kv = RedisKvStore.from_url(redis_url)
            stack.push_async_callback(redis_kv.aclose)
            kv = redis_kv

        broker_url = broker_url_for(redis_url) if redis_url else None
        job_queue = CeleryJobQueue(broker_url) if broker_url else None
        if job_queue is not None:
            stack.callback(job_queue.close)
        engine = create_engine(database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        http = httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, follow_redirects=False)
        stack.push_async_callback(http.aclose)
        yield Infrastructure(
            database_url=database_url,
            redis_url=redis_url,
            engine=engine,
            sessions=session_factory(engine),
            kv=kv,
            http=http,
            broker_url=broker_url,
            job_queue=job_queue,
        )


@contextmanager
def shared_embedded_servers(settings: Settings) -> Iterator[dict[str, str]]:
    """Start (or attach to) the embedded servers the settings leave unconfigured, for child processes.

    For a parent that runs several worker processes (`vinbot api --workers N`): the parent
    attaches to the embedded PostgreSQL (migrated once, here) and Redis for as long as the
    block runs, and the workers connect to them by URL, so none of them starts, migrates
    or stops a server. Yields the environment variables to give the workers
    (`DATABASE_URL`, `REDIS_URL`): only those the settings do not configure already.
    """
    env: dict[str, str] = {}
    with ExitStack() as stack:
        if not settings.database_url:
            pg = EmbeddedPostgres(embedded_pg_dir(settings))
            env["DATABASE_URL"] = pg.start()
            stack.callback(pg.stop)
            migrate.upgrade(env["DATABASE_URL"])
        upstash = settings.upstash_redis_rest_url and settings.upstash_redis_rest_token
        if not settings.redis_url and not upstash:
            redis = EmbeddedRedis(settings.redis_dir)
            env["REDIS_URL"] = redis.start()
            stack.callback(redis.stop)
        yield env


@dataclass(frozen=True)
class ToolDeps:
    """Everything the capabilities need, frozen for the life of the process."""

    vin: VinDeps
    cache: KvCache
    limiter: GcraRateLimiter
    sessions: async_sessionmaker[AsyncSession]
    bulk: BulkDeps | None = None  # bulk jobs: their queue, limits and chunking
    knowledge: KnowledgeDeps | None = None  # specs, comparisons and recalls


def build_tool_deps(settings: Settings, infra: Infrastructure) -> ToolDeps:
    """Wire providers, caches and limits from settings onto open infrastructure.

    The offline decoder is the default and every remote provider's fallback. Remote
    providers are composed as `Cached(Durable(Fallback(RateLimited(remote), offline)))`:
    the caches sit outside the limiter so hits cost no quota, and the politeness
    limit sits inside the fallback so a spent quota falls back instead of failing.
    The offline decoder is not cached: it is faster than a cache round trip.
    """
    cache = KvCache(infra.kv, name="redis cache")
    limiter = GcraRateLimiter(infra.kv)
    store = PgVinStore(infra.sessions, ttl=timedelta(days=settings.cache.durable_ttl_days))
    ttl = timedelta(days=settings.cache.decode_ttl_days)
    offline = UltravinDecoder()
    decoders: dict[str, VinDecoder] = {"offline": offline}

    def remote(decoder: VinDecoder, rpm: int, batch_size: int) -> VinDecoder:
        limited = RateLimitedVinDecoder(
            decoder, limiter, Limit(rpm, timedelta(minutes=1)), bucket=decoder.name, batch_size=batch_size
        )
        return CachedVinDecoder(
            DurableVinDecoder(FallbackVinDecoder(limited, offline), store), cache, ttl=ttl
        )

    if settings.nhtsa.enabled:
        decoders["nhtsa"] = remote(
            NhtsaVinDecoder(infra.http, settings.nhtsa),
            settings.nhtsa.requests_per_minute,
            settings.nhtsa.batch_size,
        )
    if settings.autodev.enabled and settings.autodev_api_key is not None:
        decoders["autodev"] = remote(
            AutodevVinDecoder(infra.http, settings.autodev, settings.autodev_api_key.get_secret_value()),
            settings.autodev.requests_per_minute,
            1,
        )
    elif settings.autodev.enabled:
        logger.warning("Auto.dev is enabled but AUTODEV_API_KEY is not set; it stays off")

    default = settings.vin_provider
    if default not in decoders:
        logger.warning("VIN provider %r is not enabled; decoding offline", default)
        default = "offline"
    vin = VinDeps(
        decoders=decoders,
        default_provider=default,
        limiter=limiter,
        limits=settings.limits,
        sessions=infra.sessions,
    )
    bulk = BulkDeps(sessions=infra.sessions, queue=infra.job_queue, limiter=limiter, settings=settings.bulk)
    return ToolDeps(
        vin=vin,
        cache=cache,
        limiter=limiter,
        sessions=infra.sessions,
        bulk=bulk,
        knowledge=build_knowledge_deps(settings, infra, cache),
    )


def build_knowledge_deps(settings: Settings, infra: Infrastructure, cache: KvCache) -> KnowledgeDeps:
    """Wire spec search: the query embedder (full text alone when it cannot be built) and the cache."""
    embedder: QueryEmbedder | None
    try:
        embedder = build_embedder(settings, infra.http)
    except ValueError as e:
        logger.warning("no query embedder (%s); spec search ranks by full text only", e)
        embedder = None
    k = settings.knowledge
    return KnowledgeDeps(
        sessions=infra.sessions,
        embedder=embedder,
        cache=cache,
        settings=k,
        vocabulary=VocabularyCache(timedelta(seconds=k.vocabulary_ttl_s)),
    )


def embedded_pg_dir(settings: Settings) -> Path:
    """Return where the embedded PostgreSQL lives: every process must agree on it."""
    return _short_path(settings.pg_dir)


def _short_path(path: Path) -> Path:
    """Return `path`, or a short stand-in when the Unix socket path would be too long.

    PostgreSQL puts its socket in the data directory, and Unix socket paths are
    limited to 107 bytes.
    """
    if len(str(path / ".s.PGSQL.5432")) < 100:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"vinbot-pg-{digest}"
    logger.warning("data directory path too long for a socket; using %s for PostgreSQL", short)
    return short
