"""Writing vehicle documents and ingest runs. Repositories never commit; the caller's transaction does.

Documents are written in bulk: a binary COPY into a temporary table, then one
``INSERT ... ON CONFLICT (dataset, record_id) DO UPDATE ... WHERE content_hash IS
DISTINCT FROM`` merge, so a batch costs two round trips whatever its size and an
unchanged row is never rewritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection as SaConnection
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.models import EMBEDDING_DIM, IngestRun, VehicleDocument

EMBEDDING_INDEX = "ix_vehicle_documents_embedding"

# The columns a loader fills, in COPY order, with their PostgreSQL types.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dataset", "text"),
    ("record_id", "text"),
    ("kind", "text"),
    ("year", "int2"),
    ("make", "text"),
    ("make_key", "text"),
    ("model", "text"),
    ("base_model", "text"),
    ("model_key", "text"),
    ("configuration", "text"),
    ("engine", "text"),
    ("cylinders", "int2"),
    ("displacement_l", "float8"),
    ("transmission", "text"),
    ("drive", "text"),
    ("fuel", "text"),
    ("vehicle_class", "text"),
    ("facts", "jsonb"),
    ("content", "text"),
    ("content_hash", "text"),
    ("data_date", "date"),
    ("embedding", "vector"),
    ("embedding_model", "text"),
    ("embedding_dim", "int2"),
)
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_TEMP_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_documents ("
    + ", ".join(
        f"{name} {f'vector({EMBEDDING_DIM})' if kind == 'vector' else kind}" for name, kind in _COLUMNS
    )
    + ") ON COMMIT DELETE ROWS"
)
_MERGE = (
    f"INSERT INTO vehicle_documents ({_NAMES}, updated_at) "  # noqa: S608 - constant column names
    f"SELECT {_NAMES}, now() FROM incoming_documents "
    "ON CONFLICT (dataset, record_id) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in _COLUMNS[2:])
    + ", updated_at = now() "
    "WHERE vehicle_documents.content_hash IS DISTINCT FROM EXCLUDED.content_hash "
    "RETURNING (xmax = 0) AS inserted"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentFields:
    """The columns of a `vehicle_documents` row that ingestion writes and the capabilities read back.

    `IncomingDocument` adds what only a write carries (the hash and the vector),
    `knowledge_repo.DocumentRow` the id a read returns. Keyword-only: a row is built by
    column name.
    """

    dataset: str
    record_id: str
    kind: str
    year: int | None
    make: str
    make_key: str
    model: str
    base_model: str
    model_key: str
    configuration: str | None
    engine: str | None
    cylinders: int | None
    displacement_l: float | None
    transmission: str | None
    drive: str | None
    fuel: str | None
    vehicle_class: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    content: str = ""
    data_date: date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingDocument(DocumentFields):
    """One `vehicle_documents` row as ingestion writes it."""

    content_hash: str
    embedding: np.ndarray[Any, np.dtype[np.float32]]
    embedding_model: str
    embedding_dim: int

    def values(self) -> tuple[Any, ...]:
        """Return the values in COPY order."""
        return tuple(getattr(self, name) for name, _ in _COLUMNS)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch write did."""

    inserted: int
    updated: int
    seconds: float


@dataclass
class RunCounts:
    """The counters of an ingest run."""

    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: int = 0
    report: dict[str, Any] = field(default_factory=dict)


async def _driver(conn: SaConnection) -> AsyncConnection[Any]:
    raw = await conn.get_raw_connection()
    driver: AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return driver


async def document_hashes(conn: SaConnection, dataset: str) -> dict[str, str]:
    """Return `record_id -> content_hash` of every stored document of `dataset`."""
    result = await conn.execute(
        select(VehicleDocument.record_id, VehicleDocument.content_hash).where(
            VehicleDocument.dataset == dataset
        )
    )
    return {record_id: content_hash for record_id, content_hash in result.all()}


async def count_documents(conn: SaConnection, dataset: str | None = None) -> int:
    """Return how many documents are stored (of `dataset`, or of all datasets)."""
    query = select(func.count()).select_from(VehicleDocument)
    if dataset is not None:
        query = query.where(VehicleDocument.dataset == dataset)
    return int((await conn.execute(query)).scalar_one())


async def write_documents(conn: SaConnection, rows: Sequence[IncomingDocument]) -> WriteResult:
    """Insert new rows and update changed ones (by `content_hash`) in the caller's transaction.

    Args:
        conn: A connection inside a transaction; committing is the caller's job.
        rows: Rows with distinct `(dataset, record_id)`.
    """
    started = time.perf_counter()
    if not rows:
        return WriteResult(0, 0, 0.0)
    driver = await _driver(conn)
    await register_vector_async(driver)
    async with driver.cursor() as cur:
        await cur.execute(_TEMP_DDL)
        async with cur.copy(f"COPY incoming_documents ({_NAMES}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _, kind in _COLUMNS])
            for row in rows:
                await copy.write_row(row.values())
        await cur.execute(_MERGE)
        flags = [bool(r[0]) for r in await cur.fetchall()]
        await cur.execute("TRUNCATE incoming_documents")
    inserted = sum(flags)
    return WriteResult(inserted, len(flags) - inserted, time.perf_counter() - started)


async def drop_embedding_index(conn: SaConnection) -> None:
    """Drop the HNSW index (a bulk load into an empty table builds it once at the end instead)."""
    await conn.execute(text(f"DROP INDEX IF EXISTS {EMBEDDING_INDEX}"))


async def ensure_embedding_index(
    conn: SaConnection, *, maintenance_work_mem: str = "512MB", parallel_workers: int | None = None
) -> bool:
    """Create the HNSW index when it is missing (as migration 0005 defines it).

    Args:
        conn: A connection inside a transaction.
        maintenance_work_mem: Memory for the build; the graph of ~80k 384-d vectors fits in 512MB.
        parallel_workers: Extra build processes (pgvector >= 0.6 builds HNSW in parallel);
            default: one per CPU beyond the first.

    Returns:
        True when the index was built now.
    """
    exists = (
        await conn.execute(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": EMBEDDING_INDEX})
    ).scalar_one()
    if exists:
        return False
    workers = max(0, (os.cpu_count() or 1) - 1) if parallel_workers is None else parallel_workers
    await conn.execute(text(f"SET LOCAL maintenance_work_mem = '{maintenance_work_mem}'"))
    await conn.execute(text(f"SET LOCAL max_parallel_maintenance_workers = {int(workers)}"))
    await conn.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {EMBEDDING_INDEX} ON vehicle_documents "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
    )
    return True


async def analyze(conn: SaConnection) -> None:
    """Refresh the planner's statistics of `vehicle_documents` after a load."""
    await conn.execute(text("ANALYZE vehicle_documents"))


async def start_run(session: AsyncSession, dataset: str, source: str) -> int:
    """Record the start of an ingest run and return its id."""
    run = IngestRun(dataset=dataset, source=source[:512], status="running")
    session.add(run)
    await session.flush()
    return run.id


async def finish_run(session: AsyncSession, run_id: int, status: str, counts: RunCounts) -> None:
    """Record the end of an ingest run with its counts and report."""
    await session.execute(
        update(IngestRun)
        .where(IngestRun.id == run_id)
        .values(
            status=status,
            rows_read=counts.rows_read,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            bad_rows=counts.bad_rows,
            report=counts.report,
            finished_at=datetime.now(UTC),
        )
    )


async def latest_runs(session: AsyncSession, dataset: str, limit: int = 5) -> list[IngestRun]:
    """Return the most recent runs of `dataset`, newest first."""
    result = await session.execute(
        select(IngestRun).where(IngestRun.dataset == dataset).order_by(IngestRun.id.desc()).limit(limit)
    )
    return list(result.scalars())
