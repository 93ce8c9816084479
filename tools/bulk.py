"""The bulk capability: decode VIN lists of up to a hundred thousand lines as jobs on Celery.

`submit` validates every input line up front (invalid ones are reported with their
line numbers and do not fail the job), de-duplicates, stores the job and its lines
in PostgreSQL and, after the transaction commits, enqueues one task per chunk
through a `JobQueue`. The worker runs `run_chunk` per task: idempotent (results
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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from celery import Celery
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.domain.vehicle import DecodedVehicle
from tools.domain.vin import Vin
from tools.errors import DomainError, InvalidInput, InvalidVin, NotAllowed
from tools.providers.base import DecodeRequest, Limit, LimitCheck, RateLimiter
from tools.providers.ultravin import UltravinDecoder
from tools.settings import BulkSettings, Settings
from tools.storage import job_repo
from tools.storage.job_repo import ChunkItem, ItemResult, JobRecord, NewItem
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


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input line: its number in the input, the VIN text and the year-hint text."""

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
    """Validate and de-duplicate the rows, and assign each unique VIN (with its hint) to a chunk."""
    latest = datetime.now(UTC).year + 2
    items: list[NewItem] = []
    first_line: dict[tuple[str, int | None], int] = {}
    for row in rows:
        shown = _clip(row.vin)
        try:
            vin = Vin.parse(row.vin)
            year = _year_hint(row.year, latest)
        except (InvalidVin, InvalidInput) as e:
            items.append(NewItem(row.line, shown, None, None, None, None, "invalid", e.to_dict()))
            continue
        key = (vin.value, year)
        if key in first_line:
            items.append(NewItem(row.line, shown, vin.value, year, None, first_line[key], "pending", None))
            continue
        chunk_no = len(first_line) // chunk_size
        first_line[key] = row.line
        items.append(NewItem(row.line, shown, vin.value, year, chunk_no, None, "pending", None))
    return items


# ------------------------------------------------------------------ submit, status, cancel


async def submit(
    rows: Sequence[InputRow], *, deps: BulkDeps, caller: Caller, source_name: str | None = None
) -> JobStatus:
    """Create a job from input rows and enqueue its chunks once it is stored.

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
    if unique and deps.limiter is not None:
        await _spend_quota(deps.limiter, settings, caller, unique)
    job_id = secrets.token_hex(16)
    async with transaction(deps.sessions) as session:
        job = await job_repo.create_job(
            session,
            job_id=job_id,
            user_id=caller.user_id,
            channel=caller.channel,
            source_name=_clip(source_name, 200) if source_name else None,
            chunk_size=settings.chunk_size,
            items=items,
        )
    # Only after the commit: a worker that picks a chunk up must find the job's lines.
    await deps.queue.enqueue(job_id, range(job.chunks))
    logger.info("bulk job %s: %d lines, %d unique VINs, %d chunks", job_id, job.lines, unique, job.chunks)
    async with deps.sessions() as session:
        return await _status(session, job)


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


async def requeue(job_id: str, *, deps: BulkDeps, caller: Caller) -> int:
    """Send the unfinished chunks of an active job again (after a lost broker); return how many.

    Safe at any time: a chunk that runs twice writes each line once.

    Raises:
        JobNotFound: no such job, or it belongs to someone else.
    """
    if deps.queue is None:
        raise NotAllowed("Bulk jobs are not available on this server (they need Redis for the job queue).")
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        if job.status not in job_repo.ACTIVE:
            return 0
        pending = await job_repo.pending_chunks(session, job.id, job.chunks)
    await deps.queue.enqueue(job.id, pending)
    return len(pending)


async def _owned(session: AsyncSession, job_id: str, caller: Caller) -> JobRecord:
    job = await job_repo.get_job(session, job_id) if _looks_like_job_id(job_id) else None
    if job is None or job.user_id != caller.user_id:
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
        name: dict(await job_repo.counts_by(session, job_id, name, limit=SUMMARY_GROUPS))
        for name in ("make", "model_year", "vehicle_type")
    }
    return JobSummary(
        by_make=groups["make"], by_model_year=groups["model_year"], by_vehicle_type=groups["vehicle_type"]
    )


async def _spend_quota(limiter: RateLimiter, settings: BulkSettings, caller: Caller, count: int) -> None:
    per_day = Limit(settings.vins_per_day(caller.tier), timedelta(days=1))
    if count > per_day.limit:
        raise InvalidInput(
            f"Your plan allows {per_day.limit} VINs a day in bulk jobs; this list has {count}."
        )
    await limiter.acquire_all([LimitCheck(f"user:{caller.user_id}:bulk:day", per_day, count)])


# ------------------------------------------------------------------ results


def result_row(row: job_repo.ResultRow, *, cancelled: bool = False) -> dict[str, Any]:
    """Return one input line as a JSON object: `line`, `input`, then the decode fields or `error`."""
    head: dict[str, Any] = {"line": row.line, "input": row.input}
    if row.result is not None:
        return {**head, **row.result, "error": row.error}
    error = row.error
    if error is None:
        reason = "the job was cancelled first" if cancelled else "the job has not reached it yet"
        error = {"error": "not_decoded", "message": f"This line was not decoded: {reason}."}
    return {**head, "vin": None, "valid": False, "error": error}


async def iter_results(job_id: str, *, deps: BulkDeps, caller: Caller) -> AsyncIterator[dict[str, Any]]:
    """Yield one JSON object per input line, in input order.

    Raises:
        JobNotFound: no such job, or it belongs to someone else (raised on first iteration).
    """
    async with deps.sessions() as session:
        job = await _owned(session, job_id, caller)
        cancelled = job.status == "cancelled"
        async for row in job_repo.iter_results(session, job.id):
            yield result_row(row, cancelled=cancelled)


async def ensure_owned(job_id: str, *, deps: BulkDeps, caller: Caller) -> None:
    """Raise `JobNotFound` unless the caller owns the job (before a response starts streaming)."""
    async with deps.sessions() as session:
        await _owned(session, job_id, caller)


def _csv_columns() -> list[str]:
    columns = ["line", "input"]
    for name, info in DecodedVehicle.model_fields.items():
        if name == "raw":
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            columns += [f"{name}_{sub}" for sub in nested.model_fields]
        else:
            columns.append(name)
    return [*columns, "error", "error_message"]


CSV_COLUMNS = _csv_columns()
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
    async for row in rows:
        yield ("[\n" if first else ",\n") + json.dumps(row, ensure_ascii=False)
        first = False
    yield "[]\n" if first else "\n]\n"


# ------------------------------------------------------------------ worker side


async def run_chunk(job_id: str, chunk_no: int, settings: Settings, *, offline: bool = False) -> ChunkOutcome:
    """Run one chunk in the worker: open this task's clients inside its event loop, then decode.

    `offline` decodes with the offline decoder, the fallback after the retries are spent.
    """
    if offline or settings.vin_provider == "offline":
        # The offline decoder needs only the database: skip the HTTP client and Redis
        # (building an HTTP client's TLS context alone costs more than a chunk's writes).
        if not settings.database_url:
            raise RuntimeError("the worker needs a resolved DATABASE_URL")
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            vin = VinDeps(decoders={"offline": UltravinDecoder()})
            return await process_chunk(
                job_id, chunk_no, sessions=session_factory(engine), vin=vin, offline=True
            )
        finally:
            await engine.dispose()
    # Imported here: tools.bootstrap builds `BulkDeps` from this module.
    from tools.bootstrap import build_tool_deps, open_infrastructure

    async with open_infrastructure(settings, migrate_schema=False) as infra:
        deps = build_tool_deps(settings, infra)
        return await process_chunk(job_id, chunk_no, sessions=infra.sessions, vin=deps.vin)


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
    async with transaction(sessions) as session:
        job = await job_repo.get_job(session, job_id)
        if job is None:
            return ChunkOutcome(job_id, chunk_no, skipped="unknown job")
        if job.status not in job_repo.ACTIVE:
            return ChunkOutcome(job_id, chunk_no, skipped=job.status)
        if await job_repo.chunk_finished(session, job_id, chunk_no):
            return ChunkOutcome(job_id, chunk_no, skipped="already finished")
        await job_repo.mark_running(session, job_id)
        items = await job_repo.load_chunk(session, job_id, chunk_no)
    results = await _decode(items, vin, offline=offline)
    done = sum(1 for r in results if r.state == "done")
    async with transaction(sessions) as session:
        await job_repo.save_results(session, job_id, results)
        # The job row lock orders chunk completions, so exactly one sees the last chunk finish.
        job = await job_repo.get_job(session, job_id, lock=True)
        if job is None or job.status not in job_repo.ACTIVE:
            # Cancelled while this chunk ran: keep what it decoded, count nothing more.
            return ChunkOutcome(job_id, chunk_no, done, len(results) - done, skipped="cancelled")
        finished = await job_repo.finish_chunk(
            session, job_id, chunk_no, done=done, failed=len(results) - done
        )
        if finished >= job.chunks:
            await job_repo.set_status(session, job_id, "done", only_from=job_repo.ACTIVE)
            logger.info("bulk job %s done", job_id)
    return ChunkOutcome(job_id, chunk_no, done, len(results) - done)


async def _decode(items: Sequence[ChunkItem], deps: VinDeps, *, offline: bool) -> list[ItemResult]:
    name = "offline" if offline or deps.default_provider not in deps.decoders else deps.default_provider
    decoder = deps.decoders[name]
    requests = [DecodeRequest(Vin(item.vin), item.year_hint) for item in items]
    vehicles = await decoder.decode_many(requests) if requests else []
    return [
        ItemResult(
            line=item.line,
            input=item.input,
            state="done" if vehicle.valid else "failed",
            result=vehicle.model_dump(mode="json", exclude={"raw"}),
            error=None,
        )
        for item, vehicle in zip(items, vehicles, strict=True)
    ]


def _clip(raw: str, limit: int = 64) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "…"
