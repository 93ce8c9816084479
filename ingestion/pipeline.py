"""One ingest run: parse, skip what is unchanged, embed what is new, write in committed batches.

The run is idempotent and resumable:

* every document carries a `content_hash`; documents whose hash is already stored are
  neither embedded nor written ("unchanged"), so a re-run reports 0 changes;
* new and changed documents are embedded (identical embedding texts once per run) and
  written in batches of `batch_size`, each batch in its own committed transaction, so
  a run killed half-way keeps what it committed and the next run does only the rest;
* embedding the next batch overlaps with writing the previous one;
* when the table holds no document at all, the HNSW index is dropped for the load and
  built once at the end (much faster than growing it row by row); a run that finds the
  index missing (for example after a kill) builds it.

Bad rows never stop a run: they are counted and reported with their line numbers in
the `IngestRun` row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from ingestion.documents import BadRow, VehicleDoc
from tools.providers.embeddings import Embedder
from tools.storage import document_repo
from tools.storage.document_repo import IncomingDocument, RunCounts

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
REPORTED_BAD_ROWS = 200  # the report keeps the first ones; the count is always complete

Loader = Callable[[Sequence[Path]], Iterator[VehicleDoc | BadRow]]


class ProgressSink(Protocol):
    """Where a run reports progress (a rich progress bar in the terminal)."""

    def start(self, dataset: str, total: int) -> None:
        """Announce `total` documents to embed and write."""

    def advance(self, dataset: str, done: int) -> None:
        """Report `done` more documents written."""


@dataclass
class IngestResult:
    """What one run did, for the terminal, the `IngestRun` row and benchmarks."""

    dataset: str
    source: str
    run_id: int = 0
    status: str = "running"
    rows_read: int = 0
    documents: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    duplicates: int = 0
    embedded: int = 0  # texts sent to the model
    reused: int = 0  # vectors reused for identical texts
    batches: int = 0
    data_date: date | None = None
    index_built: bool = False
    parse_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0
    index_s: float = 0.0
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        """Documents inserted or updated."""
        return self.inserted + self.updated

    @property
    def rows_per_s(self) -> float:
        """Source rows per second over the whole run."""
        return self.rows_read / self.seconds if self.seconds else 0.0

    def report(self) -> dict[str, Any]:
        """Return the JSON report stored with the run."""
        return {
            "documents": self.documents,
            "bad_rows": [b.as_dict() for b in self.bad_rows[:REPORTED_BAD_ROWS]],
            "bad_rows_total": len(self.bad_rows),
            "embedded": self.embedded,
            "reused_vectors": self.reused,
            "batches": self.batches,
            "data_date": self.data_date.isoformat() if self.data_date else None,
            "seconds": round(self.seconds, 2),
            "parse_s": round(self.parse_s, 2),
            "embed_s": round(self.embed_s, 2),
            "write_s": round(self.write_s, 2),
            "index_s": round(self.index_s, 2),
        }


@dataclass(frozen=True)
class _Batch:
    docs: list[tuple[VehicleDoc, str]]
    vectors: list[np.ndarray[Any, np.dtype[np.float32]]]


def parse(loader: Loader, paths: Sequence[Path]) -> tuple[list[VehicleDoc], list[BadRow], int]:
    """Run a loader; return the documents, the bad rows (duplicates included) and the duplicates.

    A record id seen twice is a bad row at its second line: the first one wins.
    """
    docs: list[VehicleDoc] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    duplicates = 0
    for item in loader(paths):
        if isinstance(item, BadRow):
            bad.append(item)
            continue
        first = seen.setdefault(item.record_id, item.line)
        if first != item.line:
            duplicates += 1
            bad.append(BadRow(item.line, f"duplicate record id {item.record_id} (first at line {first})"))
            continue
        docs.append(item)
    return docs, bad, duplicates


async def ingest(
    dataset: str,
    loader: Loader,
    paths: Sequence[Path],
    *,
    source: str,
    engine: AsyncEngine,
    embedder: Embedder,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: ProgressSink | None = None,
    defer_index: bool = False,
) -> IngestResult:
    """Ingest `paths` with `loader` into `vehicle_documents` and record an `IngestRun`.

    Args:
        dataset: The dataset name (`epa`, `epa-test-cars`, `nhtsa-recalls`).
        loader: Turns the files into documents and bad rows.
        paths: The local files (downloads already done).
        source: What the user named (path or URL), for the run record.
        engine: The database.
        embedder: Embeds new and changed documents.
        batch_size: Documents per committed transaction.
        progress: Where to report progress.
        defer_index: Leave a missing HNSW index for a later run to build (when several
            datasets are loaded in a row, the last one builds it once).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    result = IngestResult(dataset=dataset, source=source)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        result.run_id = await document_repo.start_run(session, dataset, source)
    try:
        await _run(result, loader, paths, engine, embedder, batch_size, progress, defer_index)
    except BaseException:
        result.status = "failed"
        result.seconds = time.perf_counter() - started
        with contextlib.suppress(Exception):  # the original error matters more than this record
            await asyncio.shield(_finish(sessions, result))
        raise
    result.status = "done"
    result.seconds = time.perf_counter() - started
    await _finish(sessions, result)
    return result


async def _finish(sessions: async_sessionmaker[Any], result: IngestResult) -> None:
    counts = RunCounts(
        rows_read=result.rows_read,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        bad_rows=len(result.bad_rows),
        report=result.report(),
    )
    async with sessions() as session, session.begin():
        await document_repo.finish_run(session, result.run_id, result.status, counts)


async def _run(
    result: IngestResult,
    loader: Loader,
    paths: Sequence[Path],
    engine: AsyncEngine,
    embedder: Embedder,
    batch_size: int,
    progress: ProgressSink | None,
    defer_index: bool,
) -> None:
    t0 = time.perf_counter()
    docs, bad, duplicates = await asyncio.to_thread(parse, loader, paths)
    result.parse_s = time.perf_counter() - t0
    result.bad_rows, result.duplicates, result.documents = bad, duplicates, len(docs)
    result.rows_read = len(docs) + len(bad)
    dates = [d.data_date for d in docs if d.data_date is not None]
    result.data_date = max(dates) if dates else None

    async with engine.connect() as conn:
        stored = await document_repo.document_hashes(conn, result.dataset)
        empty_table = not stored and await document_repo.count_documents(conn) == 0
    todo: list[tuple[VehicleDoc, str]] = []
    for doc in docs:
        digest = doc.content_hash(embedder.model)
        if stored.get(doc.record_id) == digest:
            result.unchanged += 1
        else:
            todo.append((doc, digest))
    if progress is not None:
        progress.start(result.dataset, len(todo))

    if todo and empty_table:
        async with engine.begin() as conn:
            await document_repo.drop_embedding_index(conn)

    queue: asyncio.Queue[_Batch | None] = asyncio.Queue(maxsize=2)
    writer = asyncio.create_task(_write_batches(queue, result, engine, embedder, progress))
    try:
        await _embed_batches(todo, batch_size, embedder, result, queue, writer)
    finally:
        # Let the writer commit what is queued, then stop; its failure is the error to show.
        await _put(queue, None, writer)
        await writer

    if not defer_index:
        t1 = time.perf_counter()
        async with engine.begin() as conn:
            result.index_built = await document_repo.ensure_embedding_index(conn)
        result.index_s = time.perf_counter() - t1
    if todo:
        # Fresh statistics, or the planner, still estimating an empty table, scans it
        # instead of walking the HNSW index until autovacuum catches up.
        async with engine.begin() as conn:
            await document_repo.analyze(conn)


async def _embed_batches(
    todo: list[tuple[VehicleDoc, str]],
    batch_size: int,
    embedder: Embedder,
    result: IngestResult,
    queue: asyncio.Queue[_Batch | None],
    writer: asyncio.Task[None],
) -> None:
    cache: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        fresh = list(dict.fromkeys(d.embed_text for d, _ in chunk if d.embed_text not in cache))
        result.reused += len(chunk) - len(fresh)
        if fresh:
            t0 = time.perf_counter()
            vectors = await embedder.embed_documents(fresh)
            result.embed_s += time.perf_counter() - t0
            result.embedded += len(fresh)
            for text_, vector in zip(fresh, vectors, strict=True):
                cache[text_] = np.asarray(vector, dtype=np.float32)
        await _put(queue, _Batch(chunk, [cache[d.embed_text] for d, _ in chunk]), writer)


async def _put(queue: asyncio.Queue[_Batch | None], item: _Batch | None, writer: asyncio.Task[None]) -> None:
    """Queue `item` for the writer; raise the writer's error if it stopped instead of waiting forever."""
    if writer.done():
        writer.result()
        raise RuntimeError("the writer stopped early")  # pragma: no cover - it only stops on None or an error
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
        writer.result()
        raise RuntimeError("the writer stopped early")  # pragma: no cover


async def _write_batches(
    queue: asyncio.Queue[_Batch | None],
    result: IngestResult,
    engine: AsyncEngine,
    embedder: Embedder,
    progress: ProgressSink | None,
) -> None:
    while (batch := await queue.get()) is not None:
        rows = [
            _row(doc, digest, vector, embedder)
            for (doc, digest), vector in zip(batch.docs, batch.vectors, strict=True)
        ]
        async with engine.begin() as conn:
            written = await document_repo.write_documents(conn, rows)
        result.inserted += written.inserted
        result.updated += written.updated
        result.unchanged += len(rows) - written.inserted - written.updated  # raced with another run
        result.write_s += written.seconds
        result.batches += 1
        if progress is not None:
            progress.advance(result.dataset, len(rows))


def _row(
    doc: VehicleDoc, digest: str, vector: np.ndarray[Any, np.dtype[np.float32]], embedder: Embedder
) -> IncomingDocument:
    return IncomingDocument(
        dataset=doc.dataset,
        record_id=doc.record_id,
        kind=doc.kind,
        year=doc.year,
        make=doc.make,
        make_key=doc.make_key,
        model=doc.model,
        base_model=doc.base_model,
        model_key=doc.model_key,
        configuration=doc.configuration,
        engine=doc.engine,
        cylinders=doc.cylinders,
        displacement_l=doc.displacement_l,
        transmission=doc.transmission,
        drive=doc.drive,
        fuel=doc.fuel,
        vehicle_class=doc.vehicle_class,
        facts=doc.facts,
        content=doc.content,
        content_hash=digest,
        data_date=doc.data_date,
        embedding=vector,
        embedding_model=embedder.model,
        embedding_dim=embedder.dim,
    )
