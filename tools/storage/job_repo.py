"""Bulk jobs: jobs, their input lines (with results) and finished chunks. Repositories never commit.

A decoded line's result is stored as a compact row (`compact_row`): one JSON array of
the flattened `DecodedVehicle` fields, which PostgreSQL parses and stores for a
fraction of what the nested object cost. Its first element is `RESULT_LAYOUT_VERSION`
and the fields follow in `RESULT_LAYOUT` order; every reader (`expand_row`, the SQL of
`iter_results_csv` and `counts_by`) checks the version and rejects a row of another
layout (`ResultLayoutMismatch`, or a failed query) rather than misread it. Lines go in
and results come out with COPY: jobs have up to a hundred thousand lines.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import ColumnElement, Integer, Text, case, cast, func, null, select, text, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tools.domain.vehicle import DecodedVehicle
from tools.storage.models import Job, JobChunk, JobItem

ACTIVE = ("queued", "running")


# ------------------------------------------------------------------ the compact decode row


@dataclass(frozen=True, slots=True)
class ResultField:
    """One flattened `DecodedVehicle` field: its CSV column (`engine_hp`) and its path (`engine`, `hp`)."""

    column: str
    path: tuple[str, ...]


def _result_fields() -> list[ResultField]:
    fields: list[ResultField] = []
    for name, info in DecodedVehicle.model_fields.items():
        if name == "raw":
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            fields += [ResultField(f"{name}_{sub}", (name, sub)) for sub in nested.model_fields]
        else:
            fields.append(ResultField(name, (name,)))
    return fields


RESULT_FIELDS = _result_fields()
"""The decode fields a job stores per line, flattened, in `DecodedVehicle` order (`raw` is left out)."""

RESULT_LAYOUT_VERSION = 1
"""The layout of a stored compact row, its first element. Bump it whenever `RESULT_LAYOUT` changes."""

RESULT_LAYOUT: tuple[str, ...] = (
    "vin",
    "valid",
    "check_digit_valid",
    "make",
    "manufacturer",
    "model",
    "model_year",
    "trim",
    "series",
    "body_class",
    "vehicle_type",
    "doors",
    "drive_type",
    "transmission_style",
    "transmission_speeds",
    "engine_cylinders",
    "engine_displacement_l",
    "engine_model",
    "engine_configuration",
    "engine_hp",
    "engine_hp_to",
    "engine_fuel_type_primary",
    "engine_fuel_type_secondary",
    "engine_turbo",
    "engine_electrification",
    "plant_city",
    "plant_state",
    "plant_country",
    "gvwr",
    "gvwr_to",
    "errors",
    "suggestions",
    "source_provider",
    "source_fallback",
    "source_fallback_reason",
    "source_requested_provider",
    "source_data_version",
    "source_cached",
)
"""The columns of a stored compact row of layout `RESULT_LAYOUT_VERSION`, after the version.

Written out, not derived: a change to `DecodedVehicle` fails the check below at import
(and a unit test) until this tuple and `RESULT_LAYOUT_VERSION` are updated together.
"""

if tuple(f.column for f in RESULT_FIELDS) != RESULT_LAYOUT:
    raise RuntimeError(
        "DecodedVehicle's fields no longer match job_repo.RESULT_LAYOUT: update the layout and "
        "bump RESULT_LAYOUT_VERSION (stored job results of the old layout will be rejected)"
    )

_VERSION_TEXT = str(RESULT_LAYOUT_VERSION)
# Positions in a stored row: the version comes first, then `RESULT_LAYOUT`, then the two lists.
_AT = {column: i + 1 for i, column in enumerate(RESULT_LAYOUT)}
_ERRORS_AT = _AT["errors"]
_SUGGESTIONS_AT = _AT["suggestions"]
_ERROR_LIST_AT = len(RESULT_LAYOUT) + 1
_SUGGESTION_LIST_AT = len(RESULT_LAYOUT) + 2
_ROW_LENGTH = len(RESULT_LAYOUT) + 3


class ResultLayoutMismatch(RuntimeError):
    """A stored result row is not of layout `RESULT_LAYOUT_VERSION`: it cannot be read safely."""


def _mismatch_sql(r: str) -> str:
    """SQL that fails the query, naming the stored layout, for the compact row `r` of another layout.

    It depends on `r`, so PostgreSQL evaluates it only for such a row, at run time.
    """
    return (
        f"CAST('stored job result of layout ' || coalesce({r}->>0, '?') "
        f"|| ', expected layout {_VERSION_TEXT}' AS int)::text"
    )


def _readers() -> tuple[Callable[[Any], tuple[Any, ...]], list[Callable[[Any], tuple[Any, ...]] | None]]:
    # One C-level read of the top-level fields, then one per nested model, from their `__dict__`.
    tops: list[str] = []
    nested: list[Callable[[Any], tuple[Any, ...]] | None] = []
    for field in RESULT_FIELDS:
        top = field.path[0]
        if tops and tops[-1] == top:
            continue
        subs = [f.path[1] for f in RESULT_FIELDS if len(f.path) == 2 and f.path[0] == top]
        tops.append(top)
        nested.append(itemgetter(*subs) if subs else None)
    return itemgetter(*tops), nested


_READ_TOP, _READ_NESTED = _readers()


def compact_row(vehicle: DecodedVehicle) -> list[Any]:
    """Return the vehicle as the compact row a job stores: one JSON array per line.

    The first value is `RESULT_LAYOUT_VERSION`; the next `len(RESULT_LAYOUT)` are the
    flattened fields as the CSV shows them (errors as `code: message; ...`, suggestions
    space-separated, None when empty); the last two keep the errors (`[code, message]` pairs) and suggestions
    as lists, so `expand_row` gives back exactly `model_dump(mode="json", exclude={"raw"})`.
    """
    return compact_fields(vehicle.__dict__)


def compact_fields(fields: Mapping[str, Any]) -> list[Any]:
    """Return `compact_row` of the vehicle whose fields (its `__dict__`) these are."""
    row: list[Any] = [RESULT_LAYOUT_VERSION]
    for value, nested in zip(_READ_TOP(fields), _READ_NESTED, strict=True):
        if nested is None:
            row.append(value)
        else:
            row.extend(nested(value.__dict__))
    errors = fields["errors"]
    suggestions = fields["suggestions"]
    row[_ERRORS_AT] = "; ".join(f"{e.code}: {e.message}" for e in errors) if errors else None
    row[_SUGGESTIONS_AT] = " ".join(suggestions) if suggestions else None
    row.append([[e.code, e.message] for e in errors])
    row.append(list(suggestions))
    return row


def expand_row(row: list[Any] | dict[str, Any]) -> dict[str, Any]:
    """Return a stored result as the `DecodedVehicle` fields (nested, as `model_dump(mode="json")`).

    Raises:
        ResultLayoutMismatch: a compact row of another layout than `RESULT_LAYOUT_VERSION`.
    """
    if isinstance(row, dict):  # stored before compact rows
        return row
    if not row or row[0] != RESULT_LAYOUT_VERSION or len(row) != _ROW_LENGTH:
        stored = row[0] if row and isinstance(row[0], int) else "unversioned"
        raise ResultLayoutMismatch(
            f"stored job result of layout {stored} ({len(row)} values), "
            f"expected layout {RESULT_LAYOUT_VERSION} ({_ROW_LENGTH} values)"
        )
    fields: dict[str, Any] = {}
    for field, value in zip(RESULT_FIELDS, row[1:_ERROR_LIST_AT], strict=True):
        if len(field.path) == 2:
            top, sub = field.path
            nested = fields.get(top)
            if nested is None:
                nested = fields[top] = {}
            nested[sub] = value
        else:
            fields[field.column] = value
    errors, suggestions = row[_ERROR_LIST_AT], row[_SUGGESTION_LIST_AT]
    fields["errors"] = [{"code": code, "message": message} for code, message in errors]
    fields["suggestions"] = list(suggestions)
    return fields


def _cell_sql(field: ResultField) -> str:
    """SQL for one CSV cell of result `r`: its position in a compact row, or the field of an object.

    A compact row of another layout fails the query (`_mismatch_sql`); a NULL `r` gives NULL.
    """
    if field.path == ("errors",):
        legacy = (
            "(SELECT string_agg((issue.value->>'code') || ': ' || (issue.value->>'message'), '; ') "
            "FROM jsonb_array_elements(r->'errors') AS issue(value))"
        )
    elif field.path == ("suggestions",):
        legacy = (
            "(SELECT string_agg(hint.value, ' ') "
            "FROM jsonb_array_elements_text(r->'suggestions') AS hint(value))"
        )
    else:
        legacy = "r #>> '{" + ",".join(field.path) + "}'"
    cell = (
        f"CASE WHEN jsonb_typeof(r) = 'object' THEN {legacy} "
        f"WHEN r->>0 = '{_VERSION_TEXT}' THEN r->>{_AT[field.column]} "
        f"WHEN r IS NOT NULL THEN {_mismatch_sql('r')} END"
    )
    return f"coalesce({cell}, 'false')" if field.path == ("valid",) else cell


def _results_csv_query() -> str:
    cells = ", ".join(_cell_sql(f) for f in RESULT_FIELDS)
    return (
        "COPY (SELECT i.line, i.input, "
        + cells
        + ", coalesce(e->>'error', CASE WHEN r IS NULL THEN 'not_decoded' END)"
        ", coalesce(e->>'message', CASE WHEN r IS NULL THEN %(not_decoded)s END) "
        "FROM job_items i "
        "LEFT JOIN job_items f ON f.job_id = i.job_id AND f.line = i.dup_of "
        "CROSS JOIN LATERAL (SELECT "
        "  CASE WHEN i.dup_of IS NULL THEN i.result ELSE f.result END AS r,"
        "  CASE WHEN i.dup_of IS NULL THEN i.error ELSE f.error END AS e) x "
        "WHERE i.job_id = %(job_id)s ORDER BY i.line"
        ") TO STDOUT (FORMAT csv)"
    )


_RESULTS_CSV = _results_csv_query()


async def iter_results_csv(session: AsyncSession, job_id: str, *, not_decoded: str) -> AsyncIterator[bytes]:
    """Yield the job's results as CSV rows (no header), rendered by PostgreSQL, in line order.

    Columns: `line`, `input`, the `RESULT_FIELDS` columns, `error`, `error_message`. A
    duplicate line shows its first line's result; a line with neither a result nor an
    error shows `not_decoded` with the message `not_decoded`.
    """
    driver = await _driver(session)
    async with (
        driver.cursor() as cursor,
        cursor.copy(_RESULTS_CSV, {"job_id": job_id, "not_decoded": not_decoded}) as copy,
    ):
        async for data in copy:
            yield bytes(data)


@dataclass(frozen=True, slots=True)
class NewItem:
    """One input line as validated at submission."""

    line: int
    input: str
    vin: str | None
    year_hint: int | None
    chunk_no: int | None
    dup_of: int | None
    state: str  # pending | invalid | duplicate lines stay pending until their first line is decoded
    error: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as the capability sees one."""

    id: str
    user_id: int
    channel: str
    status: str
    source_name: str | None
    lines: int
    invalid: int
    unique_vins: int
    chunk_size: int
    chunks: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChunkItem:
    """A line a chunk decodes."""

    line: int
    input: str
    vin: str
    year_hint: int | None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of one decoded line, as the worker writes it.

    `result` is the compact decode row (`compact_row`): a JSON array, which
    costs PostgreSQL far less to parse and store than the same fields as an object.
    """

    line: int
    state: str  # done | failed
    result: list[Any] | None
    error: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Decoded unique VINs so far, from the finished chunks."""

    done: int
    failed: int
    chunks_done: int


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One input line with its (or its first duplicate's) result.

    `result` is a compact decode row (a list), or, for jobs decoded before compact
    rows, the `DecodedVehicle` fields as an object.
    """

    line: int
    input: str
    state: str
    result: list[Any] | dict[str, Any] | None
    error: dict[str, Any] | None


def _record(job: Job) -> JobRecord:
    return JobRecord(
        id=job.id,
        user_id=job.user_id,
        channel=job.channel,
        status=job.status,
        source_name=job.source_name,
        lines=job.lines,
        invalid=job.invalid,
        unique_vins=job.unique_vins,
        chunk_size=job.chunk_size,
        chunks=job.chunks,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


COPY_BATCH = 5_000
# PostgreSQL text cannot hold NUL, so it is dropped; the rest is escaped as COPY reads it.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})
_COPY_SPECIAL = frozenset("\\\t\n\r\x00")


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    # `translate` looks every character up in a dict: test first, it is rarely needed.
    return value.translate(_COPY_ESCAPES) if not _COPY_SPECIAL.isdisjoint(value) else value


def _copy_json(value: object) -> str:
    """Serialise `value` as JSON text escaped for COPY (pydantic-core's serialiser: fast)."""
    # JSON text has no raw control characters, so only backslashes need doubling.
    return to_json(value).decode().replace("\\", "\\\\")


async def _driver(session: AsyncSession) -> Any:
    """Return the session's psycopg `AsyncConnection` (for COPY, which SQLAlchemy does not wrap)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def create_job(
    session: AsyncSession,
    *,
    job_id: str,
    user_id: int,
    channel: str,
    source_name: str | None,
    chunk_size: int,
    items: Sequence[NewItem],
) -> JobRecord:
    """Insert a job and all its lines (with COPY: a job may have a hundred thousand lines)."""
    invalid = sum(1 for i in items if i.state == "invalid")
    unique = sum(1 for i in items if i.chunk_no is not None)
    chunks = max((i.chunk_no for i in items if i.chunk_no is not None), default=-1) + 1
    status = "queued" if chunks else "done"
    await session.execute(
        insert(Job).values(
            id=job_id,
            user_id=user_id,
            channel=channel,
            status=status,
            source_name=source_name,
            lines=len(items),
            invalid=invalid,
            unique_vins=unique,
            chunk_size=chunk_size,
            chunks=chunks,
            finished_at=None if chunks else func.now(),
        )
    )
    driver = await _driver(session)
    columns = "job_id, line, input, vin, year_hint, chunk_no, dup_of, state, error"
    async with driver.cursor() as cursor, cursor.copy(f"COPY job_items ({columns}) FROM STDIN") as copy:
        # One text buffer per few thousand rows: `write_row` per row cost more than the rest of a submit.
        buffer: list[str] = []
        null = r"\N"
        for i in items:
            # `vin` is a validated VIN and the numbers are ints: only `input` and `error` need escaping.
            error = null if i.error is None else _copy_json(i.error)
            buffer.append(
                f"{job_id}\t{i.line}\t{_copy_text(i.input)}\t{i.vin or null}\t"
                f"{null if i.year_hint is None else i.year_hint}\t"
                f"{null if i.chunk_no is None else i.chunk_no}\t"
                f"{null if i.dup_of is None else i.dup_of}\t{i.state}\t{error}\n"
            )
            if len(buffer) >= COPY_BATCH:
                await copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            await copy.write("".join(buffer))
    job = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()
    return _record(job)


async def get_job(session: AsyncSession, job_id: str, *, lock: bool = False) -> JobRecord | None:
    """Return the job, or None; `lock` holds its row until the transaction ends."""
    stmt = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    job = (await session.execute(stmt)).scalar_one_or_none()
    return _record(job) if job is not None else None


async def set_status(session: AsyncSession, job_id: str, status: str, *, only_from: Sequence[str]) -> bool:
    """Set the job's status if it is one of `only_from`, stamping `finished_at`; True if it changed."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(only_from))
        .values(status=status, finished_at=func.now())
        .returning(Job.id)
    )
    return result.first() is not None


async def start_chunk(session: AsyncSession, job_id: str, chunk_no: int) -> str | None:
    """Mark the job running (once) and return why the chunk must not run, or None to run it.

    One statement: the job's status after the update, and whether the chunk already finished.
    """
    row = (
        await session.execute(
            text(
                "WITH started AS ("
                "  UPDATE jobs SET status = 'running', started_at = now()"
                "  WHERE id = :job_id AND status = 'queued' RETURNING status)"
                "SELECT coalesce((SELECT status FROM started), j.status),"
                "  EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.chunk_no = :chunk_no) "
                "FROM jobs j WHERE j.id = :job_id"
            ),
            {"job_id": job_id, "chunk_no": chunk_no},
        )
    ).first()
    return _skip_reason(row)


async def chunk_skip(session: AsyncSession, job_id: str, chunk_no: int) -> str | None:
    """Return why the chunk's results must not be saved now (as `start_chunk`, changing nothing), or None.

    Read just before the results are saved: the job may have been cancelled, or the
    chunk finished by another delivery of its task, while this one decoded.
    """
    row = (
        await session.execute(
            text(
                "SELECT j.status,"
                "  EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.chunk_no = :chunk_no) "
                "FROM jobs j WHERE j.id = :job_id"
            ),
            {"job_id": job_id, "chunk_no": chunk_no},
        )
    ).first()
    return _skip_reason(row)


def _skip_reason(row: Any) -> str | None:
    if row is None:
        return "unknown job"
    status, finished = row
    if status not in ACTIVE:
        return str(status)
    return "already finished" if finished else None


async def chunk_finished(session: AsyncSession, job_id: str, chunk_no: int) -> bool:
    """Tell whether the chunk was already finished (a redelivered task)."""
    stmt = select(JobChunk.chunk_no).where(JobChunk.job_id == job_id, JobChunk.chunk_no == chunk_no)
    return (await session.execute(stmt)).first() is not None


async def load_chunk(session: AsyncSession, job_id: str, chunk_no: int) -> list[ChunkItem]:
    """Return the lines of one chunk, in line order."""
    stmt = (
        select(JobItem.line, JobItem.input, JobItem.vin, JobItem.year_hint)
        .where(JobItem.job_id == job_id, JobItem.chunk_no == chunk_no)
        .order_by(JobItem.line)
    )
    return [ChunkItem(line, raw, vin or "", year) for line, raw, vin, year in await session.execute(stmt)]


async def save_results(
    session: AsyncSession, job_id: str, chunk_no: int, results: Sequence[ItemResult]
) -> None:
    """Upsert a chunk's results keyed by job and line, so a chunk that runs twice writes each line once.

    The rows go in with COPY to a temporary table, then one UPDATE joins them to the
    chunk's lines (found through the chunk index, not by hashing the whole job).
    """
    if not results:
        return
    driver = await _driver(session)
    async with driver.cursor() as cursor:
        await cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS chunk_results "
            "(line int PRIMARY KEY, state text, result jsonb, error jsonb) ON COMMIT DELETE ROWS"
        )
        lines: list[str] = []
        for r in results:
            result = _copy_json(r.result) if r.result is not None else r"\N"
            error = _copy_json(r.error) if r.error is not None else r"\N"
            lines.append(f"{r.line}\t{r.state}\t{result}\t{error}\n")
        async with cursor.copy("COPY chunk_results (line, state, result, error) FROM STDIN") as copy:
            await copy.write("".join(lines))
    await session.execute(
        text(
            "UPDATE job_items i SET state = r.state, result = r.result, error = r.error "
            "FROM chunk_results r "
            "WHERE i.job_id = :job_id AND i.chunk_no = :chunk_no AND i.line = r.line"
        ),
        {"job_id": job_id, "chunk_no": chunk_no},
    )


async def fail_chunk(session: AsyncSession, job_id: str, chunk_no: int, error: dict[str, object]) -> int:
    """Mark every line of the chunk failed with `error`; return how many lines it has."""
    result = await session.execute(
        text(
            "UPDATE job_items SET state = 'failed', result = NULL, error = CAST(:error AS jsonb) "
            "WHERE job_id = :job_id AND chunk_no = :chunk_no"
        ),
        {"job_id": job_id, "chunk_no": chunk_no, "error": json.dumps(error, ensure_ascii=False)},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def finish_chunk(session: AsyncSession, job_id: str, chunk_no: int, *, done: int, failed: int) -> int:
    """Record a finished chunk (once) and return how many of the job's chunks are finished."""
    await session.execute(
        insert(JobChunk)
        .values(job_id=job_id, chunk_no=chunk_no, done=done, failed=failed)
        .on_conflict_do_nothing(index_elements=[JobChunk.job_id, JobChunk.chunk_no])
    )
    stmt = select(func.count()).select_from(JobChunk).where(JobChunk.job_id == job_id)
    return int((await session.execute(stmt)).scalar_one())


async def progress(session: AsyncSession, job_id: str) -> Progress:
    """Return the job's progress, summed over its finished chunks."""
    stmt = select(
        func.coalesce(func.sum(JobChunk.done), 0),
        func.coalesce(func.sum(JobChunk.failed), 0),
        func.count(),
    ).where(JobChunk.job_id == job_id)
    done, failed, chunks = (await session.execute(stmt)).one()
    return Progress(int(done), int(failed), int(chunks))


async def pending_chunks(session: AsyncSession, job_id: str, chunks: int) -> list[int]:
    """Return the chunk numbers of the job that have not finished."""
    stmt = select(JobChunk.chunk_no).where(JobChunk.job_id == job_id)
    finished = set((await session.execute(stmt)).scalars())
    return [n for n in range(chunks) if n not in finished]


async def iter_results(session: AsyncSession, job_id: str, *, page: int = 5000) -> AsyncIterator[ResultRow]:
    """Yield every input line in line order; a duplicate line carries its first line's result.

    Pages by line number with plain, index-only queries: SQLAlchemy's server-side
    streaming over psycopg's async cursor took seconds per thousand rows, and a self-join
    for the duplicates made the planner hash the whole job for every page.
    """
    after = 0
    while True:
        stmt = (
            select(JobItem.line, JobItem.input, JobItem.state, JobItem.result, JobItem.error, JobItem.dup_of)
            .where(JobItem.job_id == job_id, JobItem.line > after)
            .order_by(JobItem.line)
            .limit(page)
        )
        rows = (await session.execute(stmt)).all()
        wanted = {dup for *_, dup in rows if dup is not None}
        firsts: dict[int, tuple[str, Any, Any]] = {}
        if wanted:
            lookup = select(JobItem.line, JobItem.state, JobItem.result, JobItem.error).where(
                JobItem.job_id == job_id, JobItem.line.in_(wanted)
            )
            firsts = {
                line: (state, result, error) for line, state, result, error in await session.execute(lookup)
            }
        for line, raw, state, result, error, dup in rows:
            if dup is not None and dup in firsts:
                state, result, error = firsts[dup]
            yield ResultRow(line, raw, state, result, error)
        if len(rows) < page:
            return
        after = rows[-1][0]


async def invalid_rows(session: AsyncSession, job_id: str, *, limit: int) -> list[ResultRow]:
    """Return the first `limit` lines rejected at submission."""
    stmt = (
        select(JobItem.line, JobItem.input, JobItem.error)
        .where(JobItem.job_id == job_id, JobItem.state == "invalid")
        .order_by(JobItem.line)
        .limit(limit)
    )
    return [ResultRow(line, raw, "invalid", None, error) for line, raw, error in await session.execute(stmt)]


async def counts_by(session: AsyncSession, job_id: str, field: str, *, limit: int) -> list[tuple[str, int]]:
    """Count decoded input lines (duplicates included) by a top-level result field, largest first.

    Lines that were decoded carry their result; a duplicate line points at its first
    occurrence (`dup_of`). Counting the two groups separately keeps the join to the
    duplicates only: a self-join of the whole job could be planned as a nested loop
    over tens of thousands of rows (seen taking 20 s on a 20,000-line job).
    """
    if field not in {"make", "model_year", "vehicle_type"}:
        raise ValueError(f"cannot group by {field!r}")
    own = _stored_field(JobItem.result, field)
    decoded = (
        select(own.label("value"), func.count().label("n"))
        .where(JobItem.job_id == job_id, JobItem.result.is_not(None))
        .group_by(own)
    )
    first = aliased(JobItem)
    theirs = _stored_field(first.result, field)
    repeated = (
        select(theirs.label("value"), func.count().label("n"))
        .select_from(JobItem)
        .join(first, (first.job_id == JobItem.job_id) & (first.line == JobItem.dup_of))
        .where(JobItem.job_id == job_id, JobItem.dup_of.is_not(None))
        .group_by(theirs)
    )
    both = union_all(decoded, repeated).subquery()
    total = func.sum(both.c.n)
    stmt = (
        select(both.c.value, total)
        .where(both.c.value.is_not(None))
        .group_by(both.c.value)
        .order_by(total.desc(), both.c.value)
        .limit(limit)
    )
    return [(str(key), int(count)) for key, count in await session.execute(stmt)]


def _stored_field(result: Any, field: str) -> ColumnElement[str | None]:
    """SQL for a top-level field of a stored result: from a compact row of `RESULT_LAYOUT`, or an object.

    A compact row of another layout fails the query (`_mismatch_sql`); a NULL result gives NULL.
    """
    # As `_mismatch_sql`: it depends on the row, so it is evaluated (and fails) only for such a row.
    mismatch = func.concat(
        "stored job result of layout ",
        func.coalesce(result[0].astext, "?"),
        f", expected layout {_VERSION_TEXT}",
    )
    return case(
        (func.jsonb_typeof(result) == "object", result[field].astext),
        (result[0].astext == _VERSION_TEXT, result[_AT[field]].astext),
        # JSON null (an ORM write of None) reads as no result, like SQL NULL.
        (func.jsonb_typeof(result) == "array", cast(cast(mismatch, Integer), Text)),
        else_=null(),
    )
