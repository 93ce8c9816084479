"""Bulk jobs: jobs, their input lines, their results and finished chunks. Repositories never commit.

A decoded line's result is stored once, as text already rendered for the results file
(layout `RESULT_LAYOUT_VERSION`): `cells`, the line's CSV cells after `line` and `input`
exactly as the CSV download shows them, plus `detail` (JSON the CSV cannot carry: the
decode's error list, or a failed line's error object) and typed summary columns (make,
model year, vehicle type, error code). A chunk's results go in with one COPY; for the
CSV download PostgreSQL prefixes each stored line with its number and input and joins a
block of lines into one text; the JSON download turns the same cells into JSON with a
per-layout template, without building the vehicle again. Every reader checks the stored
layout and rejects a row of another one (`ResultLayoutMismatch`, or a failed query)
rather than misread it. Lines and results go in with COPY: jobs have up to a hundred
thousand lines. Their reference to the job is checked once per statement by triggers
(migration 0009), not row by row by a foreign key, which cost PostgreSQL more than the
rest of the COPY.
"""

from __future__ import annotations

import csv
import json
import re
import types
import typing
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring as _json_text  # `json.dumps(text, ensure_ascii=False)`, in C
from operator import call, itemgetter
from typing import Any, NamedTuple

from psycopg.errors import UniqueViolation
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tools.domain.vehicle import (
    VPIC_FIELDS,
    BoundedMemo,
    DecodedVehicle,
    DecodeIssue,
    DecodeSource,
    RawValue,
    VpicField,
    errors_from_vpic,
    is_valid,
    suggestions_from_vpic,
    trusted_fields,
)
from tools.storage.models import Job, JobChunk, JobItem
from tools.storage.session import rows

SUBMITTING = "submitting"
"""A job whose lines are still being stored, a batch per commit: its stored chunks already run,
but its owner cannot see it (it has no id yet for them), and only the submitter finishes it
(`open_job`)."""
ACTIVE = (SUBMITTING, "queued", "running")
"""The statuses of a job whose chunks may run."""


# ------------------------------------------------------------------ the stored result layout


@dataclass(frozen=True, slots=True)
class ResultField:
    """One flattened `DecodedVehicle` field: CSV column (`engine_hp`), path (`engine`, `hp`), JSON kind.

    `kind` is how the JSON download writes the cell: `text` (a string), `literal` (a
    number or boolean, as the CSV shows it), `issues` (the decode's error list, kept in
    `detail`) or `words` (the space-separated suggestions).
    """

    column: str
    path: tuple[str, ...]
    kind: str


def _kind(name: str, annotation: Any) -> str:
    if name == "errors":
        return "issues"
    if name == "suggestions":
        return "words"
    args = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) else {annotation}
    return "literal" if args & {bool, int, float} else "text"


def _result_fields() -> list[ResultField]:
    fields: list[ResultField] = []
    for name, info in DecodedVehicle.model_fields.items():
        if name == "raw":
            continue
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            fields += [
                ResultField(f"{name}_{sub}", (name, sub), _kind(sub, inner.annotation))
                for sub, inner in nested.model_fields.items()
            ]
        else:
            fields.append(ResultField(name, (name,), _kind(name, nested)))
    return fields


RESULT_FIELDS = _result_fields()
"""The decode fields a job stores per line, flattened, in `DecodedVehicle` order (`raw` is left out)."""

RESULT_LAYOUT_VERSION = 2
"""The layout of a stored result (its `layout` column). Bump it whenever `RESULT_LAYOUT` changes.

1 was a JSON array per line in `job_items.result` (migration 0008 rendered those as layout 2).
"""

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
"""The CSV columns a stored result's `cells` hold (then `error` and `error_message`), in order.

Written out, not derived: a change to `DecodedVehicle` fails the check below at import
(and a unit test) until this tuple and `RESULT_LAYOUT_VERSION` are updated together.
"""

if tuple(f.column for f in RESULT_FIELDS) != RESULT_LAYOUT:
    raise RuntimeError(
        "DecodedVehicle's fields no longer match job_repo.RESULT_LAYOUT: update the layout and "
        "bump RESULT_LAYOUT_VERSION (stored job results of the old layout will be rejected)"
    )

_AT = {column: i for i, column in enumerate(RESULT_LAYOUT)}
_ERRORS_AT = _AT["errors"]
_SUGGESTIONS_AT = _AT["suggestions"]
_LITERAL_AT = tuple(i for i, f in enumerate(RESULT_FIELDS) if f.kind == "literal")
_CELLS = len(RESULT_LAYOUT) + 2  # and `error`, `error_message`


class ResultLayoutMismatch(RuntimeError):
    """A stored result is not of layout `RESULT_LAYOUT_VERSION`: it cannot be read safely."""


_TEXT_OF_BOOL: dict[bool | None, str | None] = {True: "true", False: "false", None: None}


def _errors_text(errors: Sequence[DecodeIssue]) -> str:
    """Return the `errors` cell: each issue as `code: message`, joined by "; "."""
    return "; ".join(f"{e.code}: {e.message}" for e in errors)


def _errors_detail(errors: Sequence[DecodeIssue]) -> str:
    """Return the stored `detail` of a line's issues: a JSON array of `{code, message}`."""
    return json.dumps([{"code": e.code, "message": e.message} for e in errors], ensure_ascii=False)


def _flatten(f: Mapping[str, Any]) -> list[Any]:
    """Return the `RESULT_LAYOUT` cells of a vehicle's fields, then `error` and `error_message` (None).

    Booleans as `true`/`false` and the lists joined, as the CSV shows them; other values
    as they are (csv.writer writes None as an empty cell). Written out, field by field, as
    the hot loop of a bulk job; tests/unit/test_bulk.py checks it against the model's fields.
    """
    t = f["transmission"].__dict__
    e = f["engine"].__dict__
    p = f["plant"].__dict__
    s = f["source"].__dict__
    bools = _TEXT_OF_BOOL
    errors = f["errors"]
    suggestions = f["suggestions"]
    return [
        f["vin"],
        bools[f["valid"]],
        bools[f["check_digit_valid"]],
        f["make"],
        f["manufacturer"],
        f["model"],
        f["model_year"],
        f["trim"],
        f["series"],
        f["body_class"],
        f["vehicle_type"],
        f["doors"],
        f["drive_type"],
        t["style"],
        t["speeds"],
        e["cylinders"],
        e["displacement_l"],
        e["model"],
        e["configuration"],
        e["hp"],
        e["hp_to"],
        e["fuel_type_primary"],
        e["fuel_type_secondary"],
        bools[e["turbo"]],
        e["electrification"],
        p["city"],
        p["state"],
        p["country"],
        f["gvwr"],
        f["gvwr_to"],
        _errors_text(errors) if errors else None,
        " ".join(suggestions) if suggestions else None,
        s["provider"],
        bools[s["fallback"]],
        s["fallback_reason"],
        s["requested_provider"],
        s["data_version"],
        bools[s["cached"]],
        None,  # error
        None,  # error_message
    ]


class _Lines(list[str]):
    """A file for `csv.writer` that keeps each written row as one string."""

    def write(self, row: str) -> None:
        self.append(row)


class ItemResult(NamedTuple):
    """One line's result as stored: the rendered `cells` and `detail`, and the summary columns."""

    line: int
    valid: bool
    make: str | None
    model_year: int | None
    vehicle_type: str | None
    error: str | None
    cells: str
    detail: str | None


class ResultRenderer:
    """Render decoded fields as stored results: CSV cells as PostgreSQL's COPY writes them.

    One per chunk (it holds a `csv.writer`); not thread-safe.
    """

    def __init__(self) -> None:
        self._lines = _Lines()
        # "\r\n": the writer quotes a cell holding either character, as PostgreSQL does.
        self._writer = csv.writer(self._lines, lineterminator="\r\n")

    def render(self, line: int, fields: Mapping[str, Any]) -> ItemResult:
        """Return the stored result of one decoded line from the vehicle's fields (its `__dict__`)."""
        errors = fields["errors"]
        cells = _flatten(fields)
        detail = _errors_detail(errors) if errors else None
        return ItemResult(
            line,
            fields["valid"],
            fields["make"],
            fields["model_year"],
            fields["vehicle_type"],
            None,
            self._cells(cells),
            detail,
        )

    def _cells(self, cells: list[Any]) -> str:
        if "" in cells:
            # PostgreSQL quotes an empty string (`""`) to tell it from NULL; csv.writer does not.
            return ",".join(_csv_cell(c) for c in cells)
        self._writer.writerow(cells)
        return self._lines.pop()[:-2]


SUMMARY_FIELDS = ("make", "model_year", "vehicle_type")
"""The typed summary columns of a stored result (besides `error`)."""


def _value_cell(value: object) -> str:
    """Return a flattened field value as its stored CSV cell (as `_flatten` then `_cells` write it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _csv_cell(value)


def _errors_cells(raw: tuple[RawValue | None, RawValue | None]) -> tuple[str, str | None, bool]:
    errors, blocking = errors_from_vpic(*raw)
    if not errors:
        return "", None, blocking
    return _csv_cell(_errors_text(errors)), _errors_detail(errors), blocking


def _variable_cells(field: VpicField, at: int) -> Callable[[Any], str]:
    """Return a function from the raw value of the field's `at`-th variable to its stored cell.

    A field of several variables (`transmission`, `engine`, `plant`) is a model whose
    `at`-th value is read from its `at`-th variable alone (`_check_nested_fields`): its
    cells are rendered a variable at a time, so a line looks each value up once instead of
    hashing a tuple of ten and building a model for every new combination.
    """
    read, width = field.read, len(field.variables)
    if width == 1:
        return lambda raw: _value_cell(read(raw))

    def cell(raw: Any) -> str:
        model = read(tuple(raw if i == at else None for i in range(width)))
        return _value_cell(tuple(model.__dict__.values())[at])

    return cell


def _check_nested_fields() -> None:
    # The variable-at-a-time rendering above needs one model value per variable, in order.
    for f in VPIC_FIELDS:
        if len(f.variables) > 1 and len(f.read((None,) * len(f.variables)).__dict__) != len(f.variables):
            raise RuntimeError(
                f"vPIC field {f.name} no longer has one value per variable: see _variable_cells"
            )


_check_nested_fields()

# Each variable's rendered cell comes from a memo keyed by its raw value: vPIC values repeat
# across VINs ("Not Applicable", "Gasoline", a plant's country), so most lines are a dict
# look-up per variable. Memos are per process and bounded.
_MEMO_LIMIT = 20_000
_VARIABLES = tuple(variable for f in VPIC_FIELDS for variable in f.variables)
"""Every variable the `VPIC_FIELDS` read, flat: one `map` looks a decode's values up."""
_VARIABLE_CELLS = tuple(
    BoundedMemo(_variable_cells(f, at), limit=_MEMO_LIMIT).__getitem__
    for f in VPIC_FIELDS
    for at in range(len(f.variables))
)
_FIELD = {f.name: f for f in VPIC_FIELDS}
_MAKE_VARIABLE, _MODEL_YEAR_VARIABLE, _VEHICLE_TYPE_VARIABLE = (
    _FIELD[name].variables[0] for name in SUMMARY_FIELDS
)
_MAKE, _MODEL_YEAR, _VEHICLE_TYPE = (
    BoundedMemo(_FIELD[name].read, limit=_MEMO_LIMIT).__getitem__ for name in SUMMARY_FIELDS
)
_ERRORS_CELLS = BoundedMemo(_errors_cells, limit=_MEMO_LIMIT).__getitem__


class VpicRenderer:
    """Render ultravin's decodes straight into stored results, through the vPIC field table.

    The same cells, detail and summary columns as `ResultRenderer` renders from the
    `DecodedVehicle` that `vehicle_from_vpic(..., trusted=True)` builds from the same
    attributes (tests/unit/test_bulk.py compares them), without building that vehicle
    or any per-line dict: each variable's cell comes from `VPIC_FIELDS` through a memo.
    """

    def __init__(self, source: DecodeSource) -> None:
        self._source = source
        s = source.__dict__
        self._source_cells = ",".join(_value_cell(s[name]) for name in DecodeSource.model_fields)
        self._fallback = ResultRenderer()

    def render(
        self, line: int, vin: str, attributes: Mapping[str, RawValue], *, check_digit_valid: bool
    ) -> ItemResult:
        """Return the stored result of one line from ultravin's `vin`, `attributes` and check-digit flag."""
        get = attributes.get
        try:
            # One look-up per variable in C: every variable's value mapped through its memo and joined.
            middle = ",".join(map(call, _VARIABLE_CELLS, map(get, _VARIABLES)))
            errors, detail, blocking = _ERRORS_CELLS((get("Error Code"), get("Error Text")))
            make = _MAKE(get(_MAKE_VARIABLE))
        except TypeError:
            # A list (unhashable) where vPIC promises a string: the vehicle's own way, which reads it.
            fields = trusted_fields(vin, attributes, check_digit_valid=check_digit_valid, source=self._source)
            return self._fallback.render(line, fields)
        valid = is_valid(make, blocking)
        suggested = get("Suggested VIN")
        suggestions = suggestions_from_vpic(vin, suggested) if suggested else ()
        return ItemResult(
            line,
            valid,
            make,
            _MODEL_YEAR(get(_MODEL_YEAR_VARIABLE)),
            _VEHICLE_TYPE(get(_VEHICLE_TYPE_VARIABLE)),
            None,
            f"{_csv_cell(vin)},{'true' if valid else 'false'},{'true' if check_digit_valid else 'false'},"
            f"{middle},{errors},{_csv_cell(' '.join(suggestions)) if suggestions else ''},"
            f"{self._source_cells},,",
            detail,
        )


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    cell = str(value)
    # Four substring tests (in C) cost a tenth of a generator over the characters.
    if cell == "" or "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


_BLANK_CELLS = ",false" + "," * (len(RESULT_LAYOUT) - 2)
"""The cells of a line with no decode (`vin` empty, `valid` false, the rest empty), before its error."""


def error_cells(error: Mapping[str, Any]) -> str:
    """Return the stored cells of a line that carries `error` instead of a decode."""
    return f"{_BLANK_CELLS},{_csv_cell(error.get('error'))},{_csv_cell(error.get('message'))}"


# ---- JSON from the stored cells

_QUOTED_OR_PLAIN = re.compile(r'"((?:[^"]|"")*)"|([^,]*)')


def _split_cells(cells: str) -> list[str | None]:
    """Split stored CSV cells; an unquoted empty cell is None (NULL), a quoted one `""`."""
    if '"' not in cells:
        return [c or None for c in cells.split(",")]
    if '""' not in cells:
        # No empty quoted cell (and no escaped quote): the csv module's reader, in C, is exact.
        return [c or None for c in next(csv.reader((cells,)))]
    out: list[str | None] = []
    pos, end = 0, len(cells)
    while True:
        match = _QUOTED_OR_PLAIN.match(cells, pos)
        assert match is not None  # noqa: S101 - the pattern matches the empty string
        quoted, plain = match.groups()
        out.append(quoted.replace('""', '"') if quoted is not None else plain or None)
        pos = match.end()
        if pos >= end:
            return out
        pos += 1  # the comma


def _json_format() -> str:
    # The keys, and the braces of the nested objects, around one `%s` per field.
    parts: list[str] = []
    top: str | None = None
    for field in RESULT_FIELDS:
        if len(field.path) == 1:
            parts.append(("}, " if top else ", " if parts else "") + f'"{field.column}": %s')
            top = None
        elif field.path[0] != top:
            parts.append(
                ("}, " if top else ", " if parts else "") + f'"{field.path[0]}": {{"{field.path[1]}": %s'
            )
            top = field.path[0]
        else:
            parts.append(f', "{field.path[1]}": %s')
    return "".join(parts) + ("}" if top else "")


_JSON_FORMAT = _json_format()
_TEXT_AT = tuple(i for i, f in enumerate(RESULT_FIELDS) if f.kind == "text")
_FIELD_COUNT = len(RESULT_FIELDS)


def result_json(line: int, input_text: str, cells: str | None, detail: str | None, error: str | None) -> str:
    """Return one results line as the JSON object the download shows (`json.dumps` of the row).

    `cells`/`detail` are a stored result of layout `RESULT_LAYOUT_VERSION`, or None;
    `error` is the JSON of the line's error object (a stored failure, a line rejected at
    submission, or not decoded), used when it has no decode.
    """
    head = f'{{"line": {line}, "input": {_json_text(input_text)}, '
    if cells is None or error is not None:
        return f'{head}"vin": null, "valid": false, "error": {error or "null"}}}'
    values = _split_cells(cells)
    if len(values) != _CELLS:
        raise ResultLayoutMismatch(f"a stored result has {len(values)} cells, layout has {_CELLS}")
    text = _json_text
    for at in _TEXT_AT:
        value = values[at]
        values[at] = "null" if value is None else text(value)
    for at in _LITERAL_AT:
        values[at] = values[at] or "null"
    values[_ERRORS_AT] = detail or "[]"
    words = values[_SUGGESTIONS_AT]
    values[_SUGGESTIONS_AT] = "[" + ", ".join(map(text, words.split(" "))) + "]" if words else "[]"
    return head + _JSON_FORMAT % tuple(values[:_FIELD_COUNT]) + ', "error": null}'


class NewItem(NamedTuple):
    """One input line as validated at submission (a named tuple: a job has up to 100,000)."""

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


class ChunkItem(NamedTuple):
    """A line a chunk decodes."""

    line: int
    input: str
    vin: str
    year_hint: int | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Decoded unique VINs so far, from the finished chunks."""

    done: int
    failed: int
    chunks_done: int


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """An input line rejected at submission, with its error."""

    line: int
    input: str
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


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (backslash, tab, newline, carriage return)."""
    # `translate` looks every character up in a dict: test first, it is rarely needed. Five
    # substring tests (in C) cost a fraction of `frozenset.isdisjoint`, which hashes each character.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value or "\x00" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_json(value: object) -> str:
    """Serialise `value` as JSON text escaped for COPY (pydantic-core's serialiser: fast)."""
    # JSON text has no raw control characters, so only backslashes need doubling.
    return to_json(value).decode().replace("\\", "\\\\")


async def _driver(session: AsyncSession) -> Any:
    """Return the session's psycopg `AsyncConnection` (for COPY, which SQLAlchemy does not wrap)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def _fetch_one(session: AsyncSession, sql: str, params: Mapping[str, object]) -> Any:
    """Run one statement through psycopg itself and return its first row (or None).

    For the statements every chunk runs: through the session each cost ~1 ms of client
    CPU (a few hundred microseconds through psycopg), ten of them per chunk.
    """
    found = await rows(await _driver(session), sql, params)
    return found[0] if found else None


def chunk_count(items: Sequence[NewItem]) -> int:
    """Return how many chunks the planned `items` fill (their highest chunk number plus one)."""
    return max((i.chunk_no for i in items if i.chunk_no is not None), default=-1) + 1


async def insert_job(
    session: AsyncSession,
    *,
    job_id: str,
    user_id: int,
    channel: str,
    source_name: str | None,
    chunk_size: int,
    items: Sequence[NewItem],
) -> None:
    """Insert a job `submitting`, with the counts of all its planned `items` (stored by `add_items`)."""
    await session.execute(
        insert(Job).values(
            id=job_id,
            user_id=user_id,
            channel=channel,
            status=SUBMITTING,
            source_name=source_name,
            lines=len(items),
            invalid=sum(1 for i in items if i.state == "invalid"),
            unique_vins=sum(1 for i in items if i.chunk_no is not None),
            chunk_size=chunk_size,
            chunks=chunk_count(items),
        )
    )


async def add_items(session: AsyncSession, job_id: str, items: Sequence[NewItem]) -> None:
    """Insert lines of a job (with COPY: a job may have a hundred thousand lines)."""
    driver = await _driver(session)
    columns = "job_id, line, input, vin, year_hint, chunk_no, dup_of, state, error"
    async with driver.cursor() as cursor, cursor.copy(f"COPY job_items ({columns}) FROM STDIN") as copy:
        # One text buffer per few thousand rows: `write_row` per row cost more than the rest of a submit.
        buffer: list[str] = []
        null = r"\N"
        # Unpacked in the loop header: eight attribute look-ups a line cost a fifth of the formatting.
        for line, text, vin, year, chunk_no, dup_of, state, error in items:
            # `vin` is a validated VIN and the numbers are ints: only `input` and `error` need escaping.
            buffer.append(
                f"{job_id}\t{line}\t{_copy_text(text)}\t{vin or null}\t"
                f"{null if year is None else year}\t"
                f"{null if chunk_no is None else chunk_no}\t"
                f"{null if dup_of is None else dup_of}\t{state}\t"
                f"{null if error is None else _copy_json(error)}\n"
            )
            if len(buffer) >= COPY_BATCH:
                await copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            await copy.write("".join(buffer))


async def open_job(session: AsyncSession, job_id: str) -> JobRecord:
    """End a job's submission: `done` if every chunk finished, else `running` once one started, else `queued`.

    Its chunks may have run while its lines were stored, and `_finish` leaves a
    `submitting` job as it is even after the last one: the status is decided here,
    under the job row lock that chunk completions take, counting the finished chunks
    in a statement of its own after the lock is held (a snapshot taken before waiting
    would miss a completion committed meanwhile).
    """
    job = await get_job(session, job_id, lock=True)
    if job is None or job.status != SUBMITTING:
        raise RuntimeError(f"job {job_id} is not being submitted")
    finished = await count_finished_chunks(session, job_id)
    status = "done" if finished >= job.chunks else "running" if job.started_at is not None else "queued"
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=status, finished_at=func.now() if status == "done" else None)
    )
    stmt = select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    return _record((await session.execute(stmt)).scalar_one())


async def delete_job(session: AsyncSession, job_id: str) -> None:
    """Delete a job with its lines, results and chunks (a submission that failed half-way)."""
    await session.execute(delete(Job).where(Job.id == job_id))


async def delete_stale_submissions(session: AsyncSession, user_id: int, *, older_than: timedelta) -> int:
    """Delete the user's jobs still `submitting` after `older_than`: their submitter died half-way."""
    result = await session.execute(
        delete(Job).where(
            Job.user_id == user_id, Job.status == SUBMITTING, Job.created_at < func.now() - older_than
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def get_job(session: AsyncSession, job_id: str, *, lock: bool = False) -> JobRecord | None:
    """Return the job, or None; `lock` holds its row until the transaction ends.

    The lock is FOR NO KEY UPDATE, which the key-share lock a chunk's result rows take on
    their job (the reference check of migration 0009, once per statement) does not block:
    two chunks that both wrote results and then lock the job would otherwise deadlock,
    each waiting for the other's key-share lock.
    """
    # Through psycopg itself, as `_fetch_one` says: every status read (a client polling a job's
    # progress) starts here.
    row = await _fetch_one(
        session,
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %(job_id)s{' FOR NO KEY UPDATE' if lock else ''}",  # noqa: S608 - our own SQL
        {"job_id": job_id},
    )
    return JobRecord(*row) if row is not None else None


_JOB_COLUMNS = ", ".join(JobRecord.__dataclass_fields__)
"""The `jobs` columns of a `JobRecord`, in its field order."""


async def lock_job(session: AsyncSession, job_id: str) -> tuple[str, int] | None:
    """Lock the job's row as `get_job(lock=True)` does; return its status and chunk count, or None."""
    row = await _fetch_one(
        session, "SELECT status, chunks FROM jobs WHERE id = %(job_id)s FOR NO KEY UPDATE", {"job_id": job_id}
    )
    return (str(row[0]), int(row[1])) if row is not None else None


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
    row = await _fetch_one(
        session,
        "WITH started AS ("
        "  UPDATE jobs SET status = CASE status WHEN 'queued' THEN 'running' ELSE status END,"
        "  started_at = now()"
        "  WHERE id = %(job_id)s AND started_at IS NULL AND status IN ('submitting', 'queued')"
        "  RETURNING status)"
        "SELECT coalesce((SELECT status FROM started), j.status),"
        "  EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.chunk_no = %(chunk_no)s) "
        "FROM jobs j WHERE j.id = %(job_id)s",
        {"job_id": job_id, "chunk_no": chunk_no},
    )
    return _skip_reason(row)


async def chunk_skip(session: AsyncSession, job_id: str, chunk_no: int) -> str | None:
    """Return why the chunk's results must not be saved now (as `start_chunk`, changing nothing), or None.

    Read just before the results are saved: the job may have been cancelled, or the
    chunk finished by another delivery of its task, while this one decoded.
    """
    row = await _fetch_one(
        session,
        "SELECT j.status,"
        "  EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.chunk_no = %(chunk_no)s) "
        "FROM jobs j WHERE j.id = %(job_id)s",
        {"job_id": job_id, "chunk_no": chunk_no},
    )
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
    """Return the lines of one chunk in VIN order, in which ultravin decodes them fastest (`plan_items`)."""
    # Through psycopg itself: the ORM's row processing cost more than the query for 2,000 lines.
    driver = await _driver(session)
    async with driver.cursor() as cursor:
        await cursor.execute(
            "SELECT line, input, coalesce(vin, ''), year_hint FROM job_items "
            'WHERE job_id = %s AND chunk_no = %s ORDER BY vin COLLATE "C", line',
            (job_id, chunk_no),
        )
        return [ChunkItem(*row) for row in await cursor.fetchall()]


async def lock_chunk(session: AsyncSession, job_id: str, chunk_no: int) -> None:
    """Hold the chunk's lock until the transaction ends: two deliveries of a chunk write one at a time.

    The second then sees the chunk finished (`chunk_skip`) and writes nothing.
    """
    await _fetch_one(
        session,
        "SELECT pg_advisory_xact_lock(hashtext(%(job_id)s), %(chunk_no)s)",
        {"job_id": job_id, "chunk_no": chunk_no},
    )


_LINE_OF = itemgetter(0)
"""An `ItemResult`'s line."""

_RESULT_COLUMNS = "job_id, line, layout, make, model_year, vehicle_type, error, cells, detail"


async def save_results(session: AsyncSession, job_id: str, results: Sequence[ItemResult]) -> None:
    """Write a chunk's results keyed by job and line, replacing any: a chunk run twice writes each line once.

    One COPY, under a savepoint. It finds these lines' results already there only if
    they were written without their chunk being finished (a job cancelled while the
    chunk ran): the COPY then fails on the key, and those results are deleted and the
    COPY done again. Not a DELETE first: a chunk's lines are spread over the job
    (`plan_items`), and a DELETE by a list of two thousand lines was planned as a scan
    of the job's results (17 ms a chunk, for nothing). Call it under `lock_chunk`.
    """
    if not results:
        return
    null = r"\N"
    data = "".join(
        [
            f"{job_id}\t{r.line}\t{RESULT_LAYOUT_VERSION}\t"
            f"{null if r.make is None else _copy_text(r.make)}\t"
            f"{null if r.model_year is None else r.model_year}\t"
            f"{null if r.vehicle_type is None else _copy_text(r.vehicle_type)}\t"
            f"{null if r.error is None else _copy_text(r.error)}\t{_copy_text(r.cells)}\t"
            f"{null if r.detail is None else _copy_text(r.detail)}\n"
            # In line order: a chunk's lines are spread over the job, and the key's index takes
            # them in order at a fifth less of PostgreSQL's CPU than in the VIN order they decode in.
            for r in sorted(results, key=_LINE_OF)
        ]
    )
    driver = await _driver(session)
    async with driver.cursor() as cursor:
        await cursor.execute("SAVEPOINT save_results")
        try:
            await _copy_results(cursor, data)
        except UniqueViolation:
            await cursor.execute("ROLLBACK TO SAVEPOINT save_results")
            await cursor.execute(
                "DELETE FROM job_results WHERE job_id = %s AND line = ANY(%s)",
                (job_id, [r.line for r in results]),
            )
            await _copy_results(cursor, data)
        await cursor.execute("RELEASE SAVEPOINT save_results")


async def _copy_results(cursor: Any, data: str) -> None:
    async with cursor.copy(f"COPY job_results ({_RESULT_COLUMNS}) FROM STDIN") as copy:
        await copy.write(data)


async def fail_chunk(session: AsyncSession, job_id: str, chunk_no: int, error: dict[str, object]) -> int:
    """Store `error` as the result of every line of the chunk; return how many lines it has.

    Call it under `lock_chunk`.
    """
    result = await session.execute(
        text(
            "INSERT INTO job_results "
            "(job_id, line, layout, make, model_year, vehicle_type, error, cells, detail) "
            "SELECT job_id, line, :layout, NULL, NULL, NULL, :code, :cells, :detail "
            "FROM job_items WHERE job_id = :job_id AND chunk_no = :chunk_no "
            "ON CONFLICT (job_id, line) DO UPDATE SET layout = excluded.layout, make = NULL, "
            "model_year = NULL, vehicle_type = NULL, error = excluded.error, cells = excluded.cells, "
            "detail = excluded.detail"
        ),
        {
            "job_id": job_id,
            "chunk_no": chunk_no,
            "layout": RESULT_LAYOUT_VERSION,
            "code": str(error.get("error")),
            "cells": error_cells(error),
            "detail": json.dumps(error, ensure_ascii=False),
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def finish_chunk(session: AsyncSession, job_id: str, chunk_no: int, *, done: int, failed: int) -> int:
    """Record a finished chunk (once) and return how many of the job's chunks are finished."""
    # One statement: the count's snapshot does not see the row the CTE adds, so add it.
    row = await _fetch_one(
        session,
        "WITH added AS (INSERT INTO job_chunks (job_id, chunk_no, done, failed)"
        "  VALUES (%(job_id)s, %(chunk_no)s, %(done)s, %(failed)s)"
        "  ON CONFLICT (job_id, chunk_no) DO NOTHING RETURNING 1) "
        "SELECT (SELECT count(*) FROM job_chunks WHERE job_id = %(job_id)s) + (SELECT count(*) FROM added)",
        {"job_id": job_id, "chunk_no": chunk_no, "done": done, "failed": failed},
    )
    return int(row[0]) if row is not None else 0


async def count_finished_chunks(session: AsyncSession, job_id: str) -> int:
    """Return how many of the job's chunks are finished."""
    stmt = select(func.count()).select_from(JobChunk).where(JobChunk.job_id == job_id)
    return int((await session.execute(stmt)).scalar_one())


async def progress(session: AsyncSession, job_id: str) -> Progress:
    """Return the job's progress, summed over its finished chunks."""
    row = await _fetch_one(
        session,
        "SELECT coalesce(sum(done), 0), coalesce(sum(failed), 0), count(*) "
        "FROM job_chunks WHERE job_id = %(job_id)s",
        {"job_id": job_id},
    )
    done, failed, chunks = row
    return Progress(int(done), int(failed), int(chunks))


async def unfinished_chunks(
    session: AsyncSession, *, idle: timedelta | None = None
) -> list[tuple[str, list[int]]]:
    """Return every queued or running job with the numbers of its chunks that have not finished.

    Jobs still `submitting` are left out: their submitter enqueues their chunks. With
    `idle`, only when no chunk of these jobs finished for that long (none, when one did),
    and only the jobs submitted longer ago than that.
    """
    result = await session.execute(
        text(
            "SELECT j.id, array(SELECT n FROM generate_series(0, j.chunks - 1) n WHERE NOT EXISTS ("
            "  SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.chunk_no = n) ORDER BY n) "
            "FROM jobs j WHERE j.status = ANY(:statuses) AND (CAST(:idle AS interval) IS NULL OR ("
            "  j.created_at < now() - CAST(:idle AS interval) AND NOT EXISTS ("
            "    SELECT 1 FROM job_chunks c JOIN jobs a ON a.id = c.job_id"
            "    WHERE a.status = ANY(:statuses) AND c.finished_at > now() - CAST(:idle AS interval)))) "
            "ORDER BY j.created_at"
        ),
        {"statuses": [status for status in ACTIVE if status != SUBMITTING], "idle": idle},
    )
    return [(str(job_id), list(chunks)) for job_id, chunks in result.all() if chunks]


# ------------------------------------------------------------------ reading the results

# Every input line with the result of its own line, or of its first line for a duplicate.
_LINES = (
    "FROM job_items i LEFT JOIN job_results r "
    "ON r.job_id = i.job_id AND r.line = coalesce(i.dup_of, i.line) "
    "WHERE i.job_id = %(job_id)s ORDER BY i.line"
)


def _csv_sql(value: str) -> str:
    """SQL quoting the text `value` as a CSV cell, as PostgreSQL's COPY does (NULL gives an empty cell)."""
    return (
        f"CASE WHEN {value} IS NULL THEN '' "
        f"WHEN {value} = '' OR {value} ~ '[,\"\\r\\n]' THEN '\"' || replace({value}, '\"', '\"\"') || '\"' "
        f"ELSE {value} END"
    )


# A stored result of another layout fails the query, naming it; it depends on the row, so
# PostgreSQL evaluates it only for such a row, at run time.
_MISMATCH_SQL = (
    "CAST('stored job result of layout ' || r.layout || ', expected layout "
    f"{RESULT_LAYOUT_VERSION}' AS int)::text"
)

_CSV_LINE = (
    "i.line || ',' || " + _csv_sql("i.input") + " || ',' || CASE"
    f" WHEN r.layout = {RESULT_LAYOUT_VERSION} THEN r.cells"
    f" WHEN r.layout IS NOT NULL THEN {_MISMATCH_SQL}"
    " WHEN i.error IS NOT NULL THEN %(blank)s || ',' || "
    + _csv_sql("(i.error->>'error')")
    + " || ',' || "
    + _csv_sql("(i.error->>'message')")
    + " ELSE %(not_decoded)s END"
)
# The lines of a block of `%(block)s` line numbers joined into one text: a hundred rows to
# fetch for a hundred thousand lines, instead of a message (and a Python step) per line.
_RESULTS_CSV = (
    f"SELECT string_agg({_CSV_LINE}, E'\\n' ORDER BY i.line) || E'\\n' "  # noqa: S608 - our own SQL
    "FROM job_items i LEFT JOIN job_results r ON r.job_id = i.job_id AND r.line = coalesce(i.dup_of, i.line) "
    "WHERE i.job_id = %(job_id)s AND i.line >= %(first)s AND i.line < %(end)s "
    "GROUP BY i.line / %(block)s ORDER BY i.line / %(block)s"
)
CSV_BLOCK_LINES = 2_000
CSV_SEGMENT_LINES = 5 * CSV_BLOCK_LINES
"""Line numbers per `results_csv` call: whole blocks, a few megabytes of text at most."""


async def line_span(session: AsyncSession, job_id: str) -> range:
    """Return the range of the job's line numbers (empty for a job with no lines)."""
    row = await _fetch_one(
        session, "SELECT min(line), max(line) FROM job_items WHERE job_id = %(job_id)s", {"job_id": job_id}
    )
    return range(0) if row is None or row[0] is None else range(int(row[0]), int(row[1]) + 1)


async def results_csv(
    session: AsyncSession, job_id: str, lines: range, *, not_decoded: Mapping[str, Any]
) -> bytes:
    """Return the CSV rows (no header) of the job's lines numbered in `lines`, in line order.

    Columns: `line`, `input`, the `RESULT_FIELDS` columns, `error`, `error_message`. A
    duplicate line shows its first line's result; a line with neither a result nor an
    error shows the error `not_decoded`. PostgreSQL joins the stored lines a block at a
    time; keep `lines` to a segment (`CSV_SEGMENT_LINES`), as the text is held whole.
    """
    params = {
        "job_id": job_id,
        "blank": _BLANK_CELLS,
        "not_decoded": error_cells(not_decoded),
        "block": CSV_BLOCK_LINES,
        "first": lines.start,
        "end": lines.stop,
    }
    found = await rows(await _driver(session), _RESULTS_CSV, params)
    return "".join(row[0] for row in found).encode()


_RESULTS_ROWS = "SELECT i.line, i.input, r.layout, r.cells, r.detail, r.error, i.error::text " + _LINES


async def iter_results_json(
    session: AsyncSession, job_id: str, *, not_decoded: Mapping[str, Any], page: int = 5_000
) -> AsyncIterator[list[str]]:
    """Yield the job's results as JSON objects (`result_json`), one text per line, in line order, in pages.

    Raises:
        ResultLayoutMismatch: a stored result of another layout than `RESULT_LAYOUT_VERSION`.
    """
    missing = json.dumps(dict(not_decoded), ensure_ascii=False)
    driver = await _driver(session)
    # A server-side cursor: the job's rows are read a page at a time, never all at once.
    async with driver.cursor(name=f"job_results_{job_id}") as cursor:
        await cursor.execute(_RESULTS_ROWS, {"job_id": job_id})
        while rows := await cursor.fetchmany(page):
            out: list[str] = []
            for line, raw, layout, cells, detail, failure, rejected in rows:
                if layout is None:
                    # Rejected at submission: as `json.dumps` of the stored object (keys in jsonb's order).
                    error = json.dumps(json.loads(rejected), ensure_ascii=False) if rejected else missing
                    out.append(result_json(line, raw, None, None, error))
                elif layout != RESULT_LAYOUT_VERSION:
                    raise ResultLayoutMismatch(
                        f"stored job result of layout {layout}, expected layout {RESULT_LAYOUT_VERSION}"
                    )
                elif failure is not None:
                    out.append(result_json(line, raw, None, None, detail))
                else:
                    out.append(result_json(line, raw, cells, detail, None))
            yield out


async def invalid_rows(session: AsyncSession, job_id: str, *, limit: int) -> list[InvalidLine]:
    """Return the first `limit` lines rejected at submission."""
    stmt = (
        select(JobItem.line, JobItem.input, JobItem.error)
        .where(JobItem.job_id == job_id, JobItem.state == "invalid")
        .order_by(JobItem.line)
        .limit(limit)
    )
    return [InvalidLine(line, raw, error) for line, raw, error in await session.execute(stmt)]


# GROUPING(make, model_year, vehicle_type) of each grouping set: a bit set per column grouped out.
_GROUPING_OF = {"make": 0b011, "model_year": 0b101, "vehicle_type": 0b110}
_SUMMARY_SQL = text(
    "WITH lines AS ("
    "  SELECT r.make, r.model_year, r.vehicle_type FROM job_results r WHERE r.job_id = :job_id"
    "  UNION ALL"
    "  SELECT r.make, r.model_year, r.vehicle_type FROM job_items i"
    "  JOIN job_results r ON r.job_id = i.job_id AND r.line = i.dup_of"
    "  WHERE i.job_id = :job_id AND i.dup_of IS NOT NULL"
    "), counted AS ("
    "  SELECT GROUPING(make, model_year, vehicle_type) AS grouped, make, model_year, vehicle_type,"
    "  count(*) AS total FROM lines GROUP BY GROUPING SETS ((make), (model_year), (vehicle_type))"
    "), ranked AS ("
    "  SELECT grouped, coalesce(make, model_year::text, vehicle_type) AS value, total,"
    # Within a set the other two columns are NULL: this orders by the set's own column, typed.
    "  row_number() OVER (PARTITION BY grouped ORDER BY total DESC, make, model_year, vehicle_type) AS rank"
    "  FROM counted WHERE coalesce(make, model_year::text, vehicle_type) IS NOT NULL"
    ") SELECT grouped, value, total FROM ranked WHERE rank <= :limit ORDER BY grouped, rank"
)


async def summary_counts(
    session: AsyncSession, job_id: str, *, limit: int
) -> dict[str, list[tuple[str, int]]]:
    """Count decoded input lines (duplicates included) by make, by model year and by vehicle type.

    Each of `SUMMARY_FIELDS` maps to its `limit` largest groups, largest first (ties by
    value). Lines that were decoded have a result; a duplicate line counts with its first
    line (`dup_of`). Joining only the duplicates keeps the plan off a nested loop over the
    whole job (one was seen taking 20 s on a 20,000-line job); one statement with grouping
    sets reads the job's results once, where a statement per field read them three times
    (a third of a second for a hundred thousand lines, at the end of every job).
    """
    found = await session.execute(_SUMMARY_SQL, {"job_id": job_id, "limit": limit})
    by_grouping: dict[int, list[tuple[str, int]]] = {grouping: [] for grouping in _GROUPING_OF.values()}
    for grouping, value, total in found:
        by_grouping[grouping].append((str(value), int(total)))
    return {field: by_grouping[grouping] for field, grouping in _GROUPING_OF.items()}
