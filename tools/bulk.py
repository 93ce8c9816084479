"""The bulk capability: decode VIN lists of up to a hundred thousand lines as jobs on Celery.

`submit` validates every input line up front (invalid ones are reported with their
line numbers and do not fail the job), de-duplicates, stores the job and its lines
in PostgreSQL a batch of chunks per transaction and, after each commit, enqueues one
task per chunk of that batch through a `JobQueue`: workers decode the first chunks
while the rest are stored, and the job stays `submitting` (invisible) until its last
line is in. The worker runs `run_chunk` per task: idempotent (results
are upserted by job and line, a finished chunk is recorded once), so a task that
is delivered twice, or re-run after its worker was killed, writes each line once.

Progress (done, failed, total, rate, ETA) is summed from the finished chunks and
can be read at any time; results come out one row per input line, in input order.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from celery import Celery
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.domain.vin import SHOWN_INPUT_CHARS, Vin, clip_input
from tools.errors import DomainError, InvalidInput, InvalidVin, NotAllowed
from tools.providers.base import DecodeRequest, Limit, LimitCheck, RateLimiter
from tools.providers.ultravin import UltravinDecoder
from tools.settings import BulkSettings, Settings
from tools.storage import job_repo
from tools.storage.job_repo import ChunkItem, ItemResult, JobRecord, NewItem, ResultRenderer, VpicRenderer
from tools.storage.session import create_engine, session_factory, transaction
from tools.vin import Caller, VinDeps

logger = logging.getLogger(__name__)

RUN_CHUNK_TASK = "vinbot.bulk.run_chunk"
"""The Celery task name of `run_chunk`: producers send it by name and never import the worker."""

MIN_YEAR = 1980
INVALID_ROWS_SHOWN = 100
SUMMARY_GROUPS = 20
_YEAR_HEADERS = ("model_year", "modelyear", "year", "my")
ResultFormat = Literal["csv", "json"]


class JobNotFound(DomainError):
    """No job with this id belongs to the caller (another user's job is "not found" too)."""

    code = "job_not_found"


class JobQueue(Protocol):
    """Where job chunks go to be run (Celery in production, a fake in unit tests)."""

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        """Send one task per chunk of the job."""
        ...


class CeleryJobQueue:
    """Send chunk tasks to the Celery broker by name (`send_task`), without importing the worker."""

    def __init__(self, broker_url: str) -> None:
        self._app = Celery("vinbot-producer", broker=broker_url, set_as_current=False)
        self._app.conf.broker_connection_retry_on_startup = True
        # Load now what the first `send_task` loads (the result backend, the task sender and its
        # event dispatcher: ~0.1 s of imports and entry-point scans, no connection), so a
        # process pays it when it starts, not in the head of its first job.
        _ = self._app.backend, self._app.amqp.send_task_message

    async def enqueue(self, job_id: str, chunks: Sequence[int]) -> None:
        """Send the chunk tasks, off the event loop (kombu's client is blocking)."""
        if chunks:
            await asyncio.to_thread(self._send_all, job_id, list(chunks))

    def _send_all(self, job_id: str, chunks: list[int]) -> None:
        # A connection per batch, closed after it: kombu's connection pools are global
        # (keyed by URL), and a pooled connection left open keeps the embedded Redis alive.
        with self._app.connection_for_write() as connection:
            for chunk_no in chunks:
                self._app.send_task(RUN_CHUNK_TASK, args=[job_id, chunk_no], connection=connection)

    def close(self) -> None:
        """Release the producer app."""
        self._app.close()


def broker_url_for(redis_url: str) -> str:
    """Return the Celery broker URL of a Redis URL (`unix://path` becomes `redis+socket://path`)."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url.removeprefix("unix://")
    return redis_url


@dataclass(frozen=True)
class BulkDeps:
    """What the bulk capability needs, built once per process by `tools.bootstrap`."""

    sessions: async_sessionmaker[AsyncSession]
    queue: JobQueue | None
    limiter: RateLimiter | None = None
    settings: BulkSettings = field(default_factory=BulkSettings)


class InputRow(NamedTuple):
    """One input line: its number in the input, the VIN text and the year-hint text.

    A named tuple: a job has up to a hundred thousand of them, built three times faster.
    """

    line: int
    vin: str
    year: str | int | None = None


class JobProgress(BaseModel):
    """How far a job is: unique VINs decoded so far, the rate and the time left."""

    total: int
    done: int
    failed: int
    remaining: int
    percent: float
    rate_per_s: float | None
    eta_s: float | None


class InvalidRow(BaseModel):
    """An input line rejected at submission, with the reason."""

    line: int
    input: str
    error: dict[str, Any]


class JobSummary(BaseModel):
    """Input lines counted by make, model year and vehicle type (largest groups first)."""

    by_make: dict[str, int]
    by_model_year: dict[str, int]
    by_vehicle_type: dict[str, int]


class JobStatus(BaseModel):
    """A job's state, progress and, once finished, its summary."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["queued", "running", "done", "cancelled"]
    channel: str
    source_name: str | None
    lines: int
    invalid: int
    duplicates: int
    unique_vins: int
    chunks: int
    chunks_done: int
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    invalid_rows: list[InvalidRow]
    summary: JobSummary | None = None

    @property
    def finished(self) -> bool:
        """True when no more chunks will run."""
        return self.status in ("done", "cancelled")


@dataclass(frozen=True, slots=True)
class ChunkOutcome:
    """What one run of a chunk did (`skipped`: cancelled, unknown or already finished)."""

    job_id: str
    chunk_no: int
    done: int = 0
    failed: int = 0
    skipped: str | None = None


# ------------------------------------------------------------------ input


def parse_text(text: str) -> list[InputRow]:
    """Read a VIN list: plain `VIN` or `VIN,YEAR` lines, or a CSV with a `vin` (and `model_year`) header.

    Line numbers are the input's own, so errors point at the line the user sees.
    Blank lines and `#` comments are skipped.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), _dialect(text))
    rows: list[InputRow] = []
    vin_col, year_col = 0, 1
    header_seen = False
    previous_end = 0
    for cells in reader:
        line, previous_end = previous_end + 1, reader.line_num
        stripped = [c.strip() for c in cells]
        if not any(stripped) or stripped[0].startswith("#"):
            continue
        if not header_seen:
            header_seen = True
            lowered = [c.lower() for c in stripped]
            if "vin" in lowered:
                vin_col = lowered.index("vin")
                year_col = next((lowered.index(h) for h in _YEAR_HEADERS if h in lowered), -1)
                continue
        vin = stripped[vin_col] if vin_col < len(stripped) else ""
        year = stripped[year_col] if 0 <= year_col < len(stripped) else None
        rows.append(InputRow(line, vin, year or None))
    return rows


def rows_from_list(vins: Sequence[str], years: Sequence[int | None] | None = None) -> list[InputRow]:
    """Number a list of VINs (with optional per-VIN year hints) from 1."""
    if years is not None and len(years) != len(vins):
        raise InvalidInput("Give one year hint per VIN, or none.")
    return [InputRow(i + 1, v, years[i] if years is not None else None) for i, v in enumerate(vins)]


def _dialect(text: str) -> type[csv.Dialect]:
    head = text[:4096]
    if "\t" in head and "," not in head:
        return csv.excel_tab
    if ";" in head and "," not in head:

        class Semicolon(csv.excel):
            delimiter = ";"

        return Semicolon
    return csv.excel


def _year_hint(raw: str | int | None, latest: int) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        year = int(raw)
    except ValueError:
        raise InvalidInput(f"The model year {str(raw)[:16]!r} is not a number.") from None
    if not MIN_YEAR <= year <= latest:
        raise InvalidInput(f"The model year must be between {MIN_YEAR} and {latest}.")
    return year


def plan_items(rows: Sequence[InputRow], *, chunk_size: int) -> list[NewItem]:
    """Validate and de-duplicate the rows, and assign each unique VIN (with its hint) to a chunk.

    Chunks are filled in VIN order, not line order: ultravin decodes neighbouring VINs
    (one manufacturer's, sharing its pattern tables) far faster than scattered ones, so
    each chunk holds one stretch of the sorted VINs (a worker decodes a chunk in VIN
    order, `job_repo.load_chunk`): the bench's workers use a sixth less CPU than with
    chunks of input lines (bench/README.md, bulk_bench, 2026-11-26 session 7).

    The loop runs once per input line before the first chunk can be stored (a hundred
    thousand times in a large job), so it builds each `NewItem` with `tuple.__new__`
    (its generated `__new__` is a Python call: ~0.2 µs a line) and finds a repeated
    VIN with one `setdefault`; a unique line's item is built once its chunk is known.
    """
    latest = datetime.now(UTC).year + 2
    items: list[NewItem] = []
    append = items.append
    parse = Vin.parse
    new = tuple.__new__
    first_line: dict[tuple[str, int | None], int] = {}
    unique_vins: list[str] = []
    at: list[int] = []  # where each unique line is in `items`
    for line, raw, hint in rows:
        shown = raw if len(raw) <= SHOWN_INPUT_CHARS else clip_input(raw)
        try:
            vin = parse(raw).value
            year = None if hint is None or hint == "" else _year_hint(hint, latest)
        except (InvalidVin, InvalidInput) as e:
            append(new(NewItem, (line, shown, None, None, None, None, "invalid", e.to_dict())))
            continue
        first = first_line.setdefault((vin, year), line)
        if first != line:
            append(new(NewItem, (line, shown, vin, year, None, first, "pending", None)))
            continue
        unique_vins.append(vin)
        at.append(len(items))
        append(new(NewItem, (line, shown, vin, year, None, None, "pending", None)))
    # The chunk of each unique line by the rank of its VIN (a stable sort: one VIN with several
    # hints keeps its lines' order), then the lines rebuilt in line order: the items in rank
    # order would be read all over memory, which cost five times as much.
    chunk_of = [0] * len(at)
    ranked = sorted(range(len(at)), key=unique_vins.__getitem__)
    for chunk_no, start in enumerate(range(0, len(ranked), chunk_size)):
        for k in ranked[start : start + chunk_size]:
            chunk_of[k] = chunk_no
    for k, position in enumerate(at):
        items[position] = new(NewItem, (*items[position][:4], chunk_of[k], None, "pending", None))
    return items


FIRST_BATCH_CHUNKS = 1
"""Chunks in a job's first stored batch: small, as the workers wait for it."""


def storage_batches(items: Sequence[NewItem]) -> list[tuple[list[NewItem], range]]:
    """Split planned lines into batches to commit one after another, each with the chunks it completes.

    The first batch holds the first chunk's lines, so a worker starts at once; each
    next one twice as many chunks, so a hundred thousand lines take six commits. A
    chunk's lines are spread over the input (chunks are filled in VIN order), so each
    batch is stored a chunk after another, each chunk's lines in line order: the index
    by chunk grows at its end, and a chunk's lines sit together in the table for the
    worker that reads them. The lines no worker reads (duplicates, invalid lines) go
    last, with the last batch.
    """
    chunks = job_repo.chunk_count(items)
    by_chunk: list[list[NewItem]] = [[] for _ in range(chunks)]
    unread: list[NewItem] = []
    for item in items:
        chunk_no = item.chunk_no
        (unread if chunk_no is None else by_chunk[chunk_no]).append(item)
    batches: list[tuple[list[NewItem], range]] = []
    first_chunk, size = 0, FIRST_BATCH_CHUNKS
    while first_chunk < chunks or not batches:
        chunk_range = range(first_chunk, min(first_chunk + size, chunks))
        batches.append(([item for n in chunk_range for item in by_chunk[n]], chunk_range))
        first_chunk, size = first_chunk + size, size * 2
    batches[-1][0].extend(unread)
    return batches


# ------------------------------------------------------------------ submit, status, cancel


async def submit(
    rows: Sequence[InputRow], *, deps: BulkDeps, caller: Caller, source_name: str | None = None
) -> JobStatus:
    """Create a job from input rows, and enqueue its chunks as their lines are stored.

    If storing fails half-way, the job (with whatever its first chunks decoded) is deleted.

    Raises:
        InvalidInput: no rows, more lines than the caller's tier allows in one job,
            duplicate line numbers, or more VINs than a day's quota.
        NotAllowed: bulk jobs need a Redis broker, and this server has none.
        RateLimited: the caller's daily bulk quota is spent.
    """
    if deps.queue is None:
        raise NotAllowed("Bulk jobs are not available on this server (they need Redis for the job queue).")
    if not rows:
        raise InvalidInput("The list has no VINs.")
    settings = deps.settings
    max_lines = settings.max_vins_per_job(caller.tier)
    if len(rows) > max_lines:
        raise InvalidInput(f"Your plan allows {max_lines} lines per bulk job; this list has {len(rows)}.")
    if len({r.line for r in rows}) != len(rows):
        raise InvalidInput("Every row needs its own line number.")
    items = plan_items(sorted(rows, key=lambda r: r.line), chunk_size=settings.chunk_size)
    unique = sum(1 for i in items if i.chunk_no is not None)
    limiter = deps.limiter if unique else None
    quota = _quota(settings, caller, unique)
    if limiter is not None:
        await limiter.acquire_all(quota)
    job_id = secrets.token_hex(16)
    try:
        job = await _store(job_id, items, deps=deps, caller=caller, source_name=source_name)
    except BaseException:
        # No job: the quota it spent is given back. Chunks may have run already: take the
        # half-stored job, lines and results away.
        if limiter is not None:
            await limiter.refund_all(quota)
        await _discard(deps.sessions, job_id)
        raise
    logger.info("bulk job %s: %d lines, %d unique VINs, %d chunks", job_id, job.lines, unique, job.chunks)
    async with deps.sessions() as session:
        return await _status(session, job)


STALE_SUBMISSION = timedelta(hours=1)
"""A job still `submitting` after this long lost its submitter (killed half-way): the owner's
next submit deletes it."""


async def _store(
    job_id: str, items: Sequence[NewItem], *, deps: BulkDeps, caller: Caller, source_name: str | None
) -> JobRecord:
    """Store the job's lines a batch per commit, and enqueue each batch's chunks once it has committed.

    The job is `submitting` until its last batch: the workers decode the first chunks
    while the later lines are being stored, but its owner sees the job only once every
    line is in (its last commit, `job_repo.open_job`, decides its status).
    """
    assert deps.queue is not None  # noqa: S101 - checked by `submit`
    batches = storage_batches(items)
    job: JobRecord | None = None
    for n, (batch, chunks) in enumerate(batches):
        async with transaction(deps.sessions) as session:
            if n == 0:
                await job_repo.delete_stale_submissions(session, caller.user_id, older_than=STALE_SUBMISSION)
                await job_repo.insert_job(
                    session,
                    job_id=job_id,
                    user_id=caller.user_id,
                    channel=caller.channel,
                    source_name=clip_input(source_name, 200) if source_name else None,
                    chunk_size=deps.settings.chunk_size,
                    items=items,
                )
            await job_repo.add_items(session, job_id, batch)
            if n == len(batches) - 1:
                job = await job_repo.open_job(session, job_id)
        # Only after the commit: a worker that picks a chunk up must find its lines.
        await deps.queue.enqueue(job_id, chunks)
    assert job is not None  # noqa: S101 - the last batch opened it
    return job


async def _discard(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    async with transaction(sessions) as session:
        await job_repo.delete_job(session, job_id)


async def get_status(job_id: str, *, deps: BulkDeps, caller: Caller) -> JobStatus:
    """Return the job's status and progress (with its summary once it has finished).

    Raises:
        JobNotFound: no such job, or it belongs to someone else.
    """
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        return await _status(session, job)


async def cancel(job_id: str, *, deps: BulkDeps, caller: Caller) -> JobStatus:
    """Cancel the job: chunks not yet started are skipped; what is decoded stays readable.

    Cancelling a finished job changes nothing and returns its status.

    Raises:
        JobNotFound: no such job, or it belongs to someone else.
    """
    async with transaction(deps.sessions) as session:
        job = await _owned(session, job_id, caller)
        if await job_repo.set_status(session, job.id, "cancelled", only_from=job_repo.ACTIVE):
            logger.info("bulk job %s cancelled", job.id)
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        return await _status(session, job)


async def resend_unfinished(deps: BulkDeps, *, idle: timedelta | None = None) -> int:
    """Send every unfinished chunk of every queued or running job again; return how many were sent.

    For a worker starting up: Redis loses a chunk's message when a worker is killed between
    popping it and recording it as unacknowledged (kombu's Redis transport pops first), and
    a job would then wait for that chunk forever. A chunk whose message was not lost runs
    twice, which writes each line once (`run_chunk` skips a finished chunk). With `idle`,
    for a running worker's sweep: only when no chunk of those jobs finished for that long
    (a broker that restarted empty loses every waiting message, and no worker starts).
    """
    if deps.queue is None:
        return 0
    async with deps.sessions() as session:
        jobs = await job_repo.unfinished_chunks(session, idle=idle)
    for job_id, chunks in jobs:
        await deps.queue.enqueue(job_id, chunks)
        logger.info("bulk job %s: %d unfinished chunks sent again", job_id, len(chunks))
    return sum(len(chunks) for _, chunks in jobs)


async def _owned(session: AsyncSession, job_id: str, caller: Caller) -> JobRecord:
    job = await job_repo.get_job(session, job_id) if _looks_like_job_id(job_id) else None
    # A job still being submitted is nobody's yet: its submitter returns the id when it is whole.
    if job is None or job.user_id != caller.user_id or job.status == job_repo.SUBMITTING:
        raise JobNotFound("There is no job with this id.")
    return job


def _looks_like_job_id(job_id: str) -> bool:
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)


async def _status(session: AsyncSession, job: JobRecord) -> JobStatus:
    progress = await job_repo.progress(session, job.id)
    total = job.unique_vins
    processed = progress.done + progress.failed
    remaining = max(0, total - processed)
    rate: float | None = None
    eta: float | None = None
    if job.started_at is not None and processed:
        end = job.finished_at or datetime.now(UTC)
        elapsed = max((end - job.started_at).total_seconds(), 1e-3)
        rate = round(processed / elapsed, 1)
        eta = round(remaining / rate, 1) if job.status in job_repo.ACTIVE and rate else None
    invalid = await job_repo.invalid_rows(session, job.id, limit=INVALID_ROWS_SHOWN) if job.invalid else []
    summary = await _summary(session, job.id) if job.status in ("done", "cancelled") else None
    return JobStatus(
        id=job.id,
        status=job.status,
        channel=job.channel,
        source_name=job.source_name,
        lines=job.lines,
        invalid=job.invalid,
        duplicates=job.lines - job.invalid - job.unique_vins,
        unique_vins=job.unique_vins,
        chunks=job.chunks,
        chunks_done=progress.chunks_done,
        progress=JobProgress(
            total=total,
            done=progress.done,
            failed=progress.failed,
            remaining=remaining,
            percent=round(100.0 * processed / total, 1) if total else 100.0,
            rate_per_s=rate,
            eta_s=eta,
        ),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        invalid_rows=[InvalidRow(line=r.line, input=r.input, error=r.error or {}) for r in invalid],
        summary=summary,
    )


async def _summary(session: AsyncSession, job_id: str) -> JobSummary:
    groups = {
        name: dict(counts)
        for name, counts in (await job_repo.summary_counts(session, job_id, limit=SUMMARY_GROUPS)).items()
    }
    return JobSummary(
        by_make=groups["make"], by_model_year=groups["model_year"], by_vehicle_type=groups["vehicle_type"]
    )


def _quota(settings: BulkSettings, caller: Caller, count: int) -> list[LimitCheck]:
    """The daily bulk quota a job of `count` unique VINs spends.

    Raises:
        InvalidInput: `count` is more than a whole day's quota.
    """
    per_day = Limit(settings.vins_per_day(caller.tier), timedelta(days=1))
    if count > per_day.limit:
        raise InvalidInput(
            f"Your plan allows {per_day.limit} VINs a day in bulk jobs; this list has {count}."
        )
    return [LimitCheck(f"user:{caller.user_id}:bulk:day", per_day, count)]


# ------------------------------------------------------------------ results


NOT_DECODED_CANCELLED = "This line was not decoded: the job was cancelled first."
NOT_DECODED_PENDING = "This line was not decoded: the job has not reached it yet."
DECODE_FAILED = "decode_failed"


def _not_decoded(cancelled: bool) -> dict[str, str]:
    message = NOT_DECODED_CANCELLED if cancelled else NOT_DECODED_PENDING
    return {"error": "not_decoded", "message": message}


async def iter_results(job_id: str, *, deps: BulkDeps, caller: Caller) -> AsyncIterator[dict[str, Any]]:
    """Yield one JSON object per input line, in input order: `line`, `input`, the decode fields, `error`.

    A line with no decode has `vin` None, `valid` False and its `error` object.

    Raises:
        JobNotFound: no such job, or it belongs to someone else (raised on first iteration).
        ResultLayoutMismatch: a stored result of another layout.
    """
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        missing = _not_decoded(job.status == "cancelled")
        async for page in job_repo.iter_results_json(session, job.id, not_decoded=missing):
            for row in page:
                yield json.loads(row)


async def stream_results(
    job_id: str, fmt: ResultFormat, *, deps: BulkDeps, caller: Caller
) -> AsyncIterator[bytes]:
    """Yield the job's results file in pieces: CSV (with a header) or one JSON array.

    Both come from the text stored per result, without building a vehicle again: one
    row per input line, in input order, as `iter_rendered` writes them. PostgreSQL
    joins the stored CSV lines a block at a time, two segments at once (`_csv_file`);
    the JSON objects are filled in from the stored cells (`job_repo.result_json`).

    Raises:
        JobNotFound: no such job, or it belongs to someone else (raised on first iteration).
        ResultLayoutMismatch: a stored result of another layout (JSON; the CSV query fails).
    """
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        missing = _not_decoded(job.status == "cancelled")
    # Read on connections of their own: this one is back in the pool.
    if fmt == "csv":
        pieces = _csv_file(deps.sessions, job.id, missing)
    else:
        pieces = _json_file(deps.sessions, job.id, missing)
    async with aclosing(pieces):  # a reader that stops early closes it now, not at garbage collection
        async for piece in pieces:
            yield piece


async def _json_file(
    sessions: async_sessionmaker[AsyncSession], job_id: str, missing: dict[str, str]
) -> AsyncGenerator[bytes, None]:
    async with sessions() as session:
        opening = "[\n"
        async for page in job_repo.iter_results_json(session, job_id, not_decoded=missing):
            yield (opening + ",\n".join(page)).encode()
            opening = ",\n"
        yield b"[]\n" if opening == "[\n" else b"\n]\n"


CSV_READERS = 2
"""Segments of a CSV download that PostgreSQL renders at once, each on its own connection."""


async def _csv_file(
    sessions: async_sessionmaker[AsyncSession], job_id: str, missing: dict[str, str]
) -> AsyncGenerator[bytes, None]:
    """Yield the CSV header, then the job's rows a segment at a time, `CSV_READERS` rendered at once.

    Rendering a job's CSV is PostgreSQL's work, one backend per query: on one connection
    it uses one core while the job's other cores sit idle at the end of the job. Each
    segment is read in its own short transaction; a finished job's results no longer
    change, and every line is in exactly one segment whatever the snapshot.
    """

    async def read(segment: range) -> bytes:
        async with sessions() as session:
            return await job_repo.results_csv(session, job_id, segment, not_decoded=missing)

    yield (",".join(CSV_COLUMNS) + "\n").encode()
    async with sessions() as session:
        lines = await job_repo.line_span(session, job_id)
    step = job_repo.CSV_SEGMENT_LINES
    # Segments start on a multiple of `step`, so a segment holds whole blocks of the query.
    starts = range(lines.start - lines.start % step, lines.stop, step)
    last = starts[-1] if starts else None
    pending: deque[asyncio.Task[bytes]] = deque()
    try:
        for start in starts:
            pending.append(asyncio.create_task(read(range(start, start + step))))
            # `CSV_READERS` in flight; once the last one is started, the rest in order.
            while len(pending) >= CSV_READERS or (pending and start == last):
                if data := await pending.popleft():  # a segment of no lines is skipped
                    yield data
    finally:
        # The caller stopped reading (a client went away): stop the queries still running.
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def ensure_owned(job_id: str, *, deps: BulkDeps, caller: Caller) -> None:
    """Raise `JobNotFound` unless the caller owns the job (before a response starts streaming)."""
    async with deps.sessions() as session:
        await _owned(session, job_id, caller)


CSV_COLUMNS = ["line", "input", *(f.column for f in job_repo.RESULT_FIELDS), "error", "error_message"]
"""The CSV header: the `DecodedVehicle` fields, nested ones flattened (`engine_hp`), then the error."""


def csv_cells(row: dict[str, Any]) -> list[str]:
    """Flatten one result object (`result_row`) into CSV cells in `CSV_COLUMNS` order."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if key == "error":
            flat["error"] = value.get("error") if isinstance(value, dict) else None
            flat["error_message"] = value.get("message") if isinstance(value, dict) else None
        elif isinstance(value, dict):
            for sub, inner in value.items():
                flat[f"{key}_{sub}"] = inner
        elif key == "errors" and isinstance(value, list):
            flat[key] = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in value)
        elif isinstance(value, list):
            flat[key] = " ".join(str(v) for v in value)
        else:
            flat[key] = value
    return [_cell(flat.get(column)) for column in CSV_COLUMNS]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def iter_rendered(rows: AsyncIterator[dict[str, Any]], fmt: ResultFormat) -> AsyncIterator[str]:
    """Render result objects as CSV (with a header) or as one JSON array, in pieces for streaming."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        count = 0
        async for row in rows:
            writer.writerow(csv_cells(row))
            count += 1
            if count % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
        return
    first = True
    pieces: list[str] = []
    async for row in rows:
        pieces.append(("[\n" if first else ",\n") + json.dumps(row, ensure_ascii=False))
        first = False
        if len(pieces) >= 1000:
            yield "".join(pieces)
            pieces.clear()
    pieces.append("[]\n" if first else "\n]\n")
    yield "".join(pieces)


async def watch(
    job_id: str, *, deps: BulkDeps, caller: Caller, interval_s: float = 1.0
) -> AsyncIterator[JobStatus]:
    """Yield the job's status now and then each time it changes, until the job has finished.

    For transports that show progress (a bar, an edited chat message): it polls
    `get_status` every `interval_s` seconds and yields only when the state, the
    chunks finished or the counts moved, so a caller can render every status it gets.
    The last status yielded is the finished one (with its summary). Stop iterating
    to stop watching; the job runs on regardless.

    Raises:
        JobNotFound: no such job, or it belongs to someone else (raised on first iteration).
    """
    last: tuple[object, ...] | None = None
    while True:
        status = await get_status(job_id, deps=deps, caller=caller)
        seen = (status.status, status.chunks_done, status.progress.done, status.progress.failed)
        if seen != last:
            last = seen
            yield status
        if status.finished:
            return
        await asyncio.sleep(interval_s)


# ------------------------------------------------------------------ worker side


class ChunkRunner:
    """What one worker process keeps between chunk tasks: an event loop, a database pool, the decoders.

    Opening an engine, a Redis pool and an HTTP client for every chunk cost more than
    decoding it. The runner opens them once, on the first task, inside its own event
    loop, and every later task runs in that same loop (async pools must not cross event
    loops). Build it in the worker process (after the fork), and `close` it on shutdown.
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.database_url:
            raise RuntimeError("the worker needs a resolved DATABASE_URL")
        self._settings = settings
        self._loop = asyncio.Runner()
        self._stack = AsyncExitStack()
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._offline = VinDeps(decoders={"offline": UltravinDecoder()})
        self._vin: VinDeps | None = None
        self._closed = False

    def run(self, job_id: str, chunk_no: int, *, offline: bool = False) -> ChunkOutcome:
        """Decode one chunk and write its results (`offline`: with the offline decoder only).

        Raises:
            ProviderError: the decoder failed (the task retries with backoff, then decodes offline).
        """
        return self._loop.run(self._run(job_id, chunk_no, offline=offline))

    def fail(self, job_id: str, chunk_no: int, message: str) -> ChunkOutcome:
        """Record every line of a chunk that could not be decoded at all as failed, with `message`."""
        return self._loop.run(self._fail(job_id, chunk_no, message))

    def close(self) -> None:
        """Close the pools and the event loop; closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._stack.aclose())
        finally:
            self._loop.close()

    async def _open(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            settings = self._settings
            if settings.vin_provider == "offline":
                # The offline decoder needs only the database: no HTTP client, no Redis.
                assert settings.database_url is not None  # noqa: S101 - checked in __init__
                engine = create_engine(settings.database_url, pool_size=1)
                self._stack.push_async_callback(engine.dispose)
                self._sessions = session_factory(engine)
                self._vin = self._offline
            else:
                # Imported here: tools.bootstrap builds `BulkDeps` from this module.
                from tools.bootstrap import build_tool_deps, open_infrastructure

                infra = await self._stack.enter_async_context(
                    open_infrastructure(settings, migrate_schema=False)
                )
                self._sessions = infra.sessions
                self._vin = build_tool_deps(settings, infra).vin
        return self._sessions

    async def _run(self, job_id: str, chunk_no: int, *, offline: bool) -> ChunkOutcome:
        sessions = await self._open()
        vin = self._offline if offline or self._vin is None else self._vin
        return await process_chunk(job_id, chunk_no, sessions=sessions, vin=vin, offline=offline)

    async def _fail(self, job_id: str, chunk_no: int, message: str) -> ChunkOutcome:
        return await fail_chunk(job_id, chunk_no, sessions=await self._open(), message=message)


async def process_chunk(
    job_id: str,
    chunk_no: int,
    *,
    sessions: async_sessionmaker[AsyncSession],
    vin: VinDeps,
    offline: bool = False,
) -> ChunkOutcome:
    """Decode one chunk and write its results; idempotent, and a no-op for cancelled jobs.

    Raises:
        ProviderError: the decoder failed (the task retries with backoff, then decodes offline).
    """
    # Two short transactions, and the decode between them outside any: a decode may take
    # long (HTTP calls, rate-limit waits, retries), and must hold neither a connection in
    # an open transaction nor the job row (which the first chunk's `start_chunk` locks,
    # and which other chunks' `_finish` and a cancel need). Only the second writes much.
    async with transaction(sessions) as session:
        skip = await job_repo.start_chunk(session, job_id, chunk_no)
        if skip is not None:
            return ChunkOutcome(job_id, chunk_no, skipped=skip)
        items = await job_repo.load_chunk(session, job_id, chunk_no)
    results = await _decode(items, vin, offline=offline)
    done = sum(1 for r in results if r.valid)
    async with transaction(sessions) as session:
        # Cancelled, or finished by another delivery of this task, while it decoded: save nothing.
        # The chunk lock makes a concurrent delivery wait here, then see the chunk finished.
        await job_repo.lock_chunk(session, job_id, chunk_no)
        skip = await job_repo.chunk_skip(session, job_id, chunk_no)
        if skip is not None:
            return ChunkOutcome(job_id, chunk_no, skipped=skip)
        await job_repo.save_results(session, job_id, results)
        # `_finish` re-checks under the job row lock: a cancel committed after the check above
        # keeps these results but counts nothing.
        return await _finish(session, job_id, chunk_no, done=done, failed=len(results) - done)


async def fail_chunk(
    job_id: str, chunk_no: int, *, sessions: async_sessionmaker[AsyncSession], message: str
) -> ChunkOutcome:
    """Mark a chunk that no decoder could decode as failed, line by line, and count it finished.

    The job then ends as `done` like any other: its progress counts these lines as
    failed, and each carries the error `decode_failed` with `message`. Idempotent, and a
    no-op when the chunk already finished or the job is no longer active.
    """
    async with transaction(sessions) as session:
        job = await job_repo.get_job(session, job_id)
        if job is None:
            return ChunkOutcome(job_id, chunk_no, skipped="unknown job")
        if job.status not in job_repo.ACTIVE:
            return ChunkOutcome(job_id, chunk_no, skipped=job.status)
        await job_repo.lock_chunk(session, job_id, chunk_no)
        if await job_repo.chunk_finished(session, job_id, chunk_no):
            return ChunkOutcome(job_id, chunk_no, skipped="already finished")
        failed = await job_repo.fail_chunk(
            session, job_id, chunk_no, {"error": DECODE_FAILED, "message": message}
        )
        logger.warning("chunk %d of job %s failed: %d lines marked failed", chunk_no, job_id, failed)
        return await _finish(session, job_id, chunk_no, done=0, failed=failed)


async def _finish(
    session: AsyncSession, job_id: str, chunk_no: int, *, done: int, failed: int
) -> ChunkOutcome:
    # The job row lock orders chunk completions, so exactly one sees the last chunk finish.
    job = await job_repo.lock_job(session, job_id)
    if job is None or job[0] not in job_repo.ACTIVE:
        # Cancelled while this chunk ran: keep what it decoded, count nothing more.
        return ChunkOutcome(job_id, chunk_no, done, failed, skipped="cancelled")
    status, chunks = job
    finished = await job_repo.finish_chunk(session, job_id, chunk_no, done=done, failed=failed)
    # A job still `submitting` is finished by its submitter (`job_repo.open_job`), which
    # counts the chunks under this same lock.
    if finished >= chunks and status != job_repo.SUBMITTING:
        await job_repo.set_status(session, job_id, "done", only_from=job_repo.ACTIVE)
        logger.info("bulk job %s done", job_id)
    return ChunkOutcome(job_id, chunk_no, done, failed)


async def _decode(items: Sequence[ChunkItem], deps: VinDeps, *, offline: bool) -> list[ItemResult]:
    name = "offline" if offline or deps.default_provider not in deps.decoders else deps.default_provider
    decoder = deps.decoders[name]
    requests = [DecodeRequest(Vin(item.vin), item.year_hint) for item in items]
    if isinstance(decoder, UltravinDecoder):
        # Jobs store the fields rendered as text: the offline decoder's attribute maps are
        # rendered straight into cells (`VpicRenderer`), with no vehicle or field dict per line.
        render_row = VpicRenderer(decoder.source).render
        return [
            render_row(
                item.line, row["vin"], row["attributes"], check_digit_valid=bool(row["check_digit_valid"])
            )
            for item, row in zip(items, decoder.decode_rows_sync(requests), strict=True)
        ]
    fields = [vehicle.__dict__ for vehicle in await decoder.decode_many(requests)] if requests else []
    render = ResultRenderer().render
    return [render(item.line, values) for item, values in zip(items, fields, strict=True)]
