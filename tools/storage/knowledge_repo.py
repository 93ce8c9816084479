"""Vehicle knowledge reads: exact look-ups, full-text and vector rankings over `vehicle_documents`.

Rankings return document ids only; `documents` loads them. Repositories never commit.

Two vector rankings exist on purpose. `vector_ranked(..., exact=False)` walks the HNSW
index (approximate, fast on the whole corpus; `hnsw.ef_search` is set per transaction).
`exact=True` orders by `(embedding <=> q) + 0`, an expression no index can serve, so
PostgreSQL computes every distance among the filtered rows: exact, and cheap when a
make or model filter, or a narrow fuel, class or year filter, leaves a few hundred rows
(every filter has an index: the fuel, class and drive kinds are generated columns, see
migration 0007). That also keeps HNSW's post-filtering (pgvector 0.6 has no iterative
scans) from returning fewer rows than asked.

The filtered reads (`find`, `count_campaigns`, the rankings, `fused_documents`,
`count_upto`, `first_match`, `documents`) write their SQL by hand (`_where` renders the
filters) and run it on the session's own psycopg connection, inside whatever the session
is in (a transaction, or autocommit under `session.autocommit_session`): building, caching and executing a
SQLAlchemy statement cost ~1.3 ms of CPU per statement against ~0.2 ms for the same SQL
sent raw, several times per search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.document_repo import DocumentFields
from tools.storage.models import EMBEDDING_DIM, VehicleDocument


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    """Structured filters on documents; None means "any"."""

    kind: str | None = None  # spec | recall
    datasets: tuple[str, ...] = ()
    year: int | None = None
    make_key: str | None = None
    model_key: str | None = None
    fuel: str | None = None
    vehicle_class: str | None = None
    drive: str | None = None
    embedding_model: str | None = None  # vector rankings compare only vectors of this model

    @property
    def selective(self) -> bool:
        """True when a make or model filter leaves few enough rows for an exact scan."""
        return self.make_key is not None or self.model_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRow(DocumentFields):
    """One document as the capabilities read it (no vector, no tsvector)."""

    id: int


# The columns a read selects, by name: `_row` builds a `DocumentRow` from them.
_NAMES = ("id", *(f.name for f in fields(DocumentFields)))
_D = VehicleDocument
_COLUMNS = tuple(getattr(_D, name) for name in _NAMES)
_COLUMNS_SQL = ", ".join(f"d.{name}" for name in _NAMES)  # the same columns, for hand-written SQL


def _row(r: Sequence[Any]) -> DocumentRow:
    return DocumentRow(**dict(zip(_NAMES, r, strict=True)))


@dataclass(frozen=True, slots=True)
class Statement:
    """Hand-written SQL with psycopg `%(name)s` placeholders, and its parameters."""

    sql: str
    params: dict[str, Any]


async def _fetch(session: AsyncSession, *statements: Statement) -> list[tuple[Any, ...]]:
    """Run statements on the session's psycopg connection (in its transaction); return the last's rows.

    Several statements are sent in one psycopg pipeline: one round trip for all of them.
    """
    connection = await session.connection()
    raw: Any = (await connection.get_raw_connection()).driver_connection
    if len(statements) == 1:
        cursor = await raw.execute(statements[0].sql, statements[0].params)
        return list(await cursor.fetchall())
    async with raw.pipeline():
        for st in statements[:-1]:
            await raw.execute(st.sql, st.params)
        cursor = await raw.execute(statements[-1].sql, statements[-1].params)
        return list(await cursor.fetchall())


def _where(f: DocumentFilter, params: dict[str, Any], tag: str = "", alias: str = "d") -> list[str]:
    """The SQL conditions of `f` on `alias`, adding their parameters (named `<tag>...`) to `params`.

    Every filter has an index: the fuel, class and drive kinds are generated columns
    PostgreSQL computes from the labels (`models.FUEL_KIND_SQL`, ...).
    """

    def bind(name: str, value: Any) -> str:
        params[tag + name] = value
        return f"%({tag}{name})s"

    where: list[str] = []
    if f.kind is not None and f.datasets:
        # Checked row by row, not through `ix_vehicle_documents_lookup` (kind, make, ...): with both
        # a kind and a dataset condition the planner ANDed that index with every row of the dataset
        # (`uq_vehicle_documents_dataset_record`: 50k EPA rows) instead of using
        # `ix_vehicle_documents_dataset_lookup` alone, 10-50x slower on a make-wide search.
        where.append(f"({alias}.kind || '') = {bind('kind', f.kind)}")
    elif f.kind is not None:
        where.append(f"{alias}.kind = {bind('kind', f.kind)}")
    if f.datasets:
        listed = ", ".join(bind(f"dataset{i}", d) for i, d in enumerate(f.datasets))
        # Without a make or model, a dataset is a large share of the table (EPA: 60%), and the
        # planner ANDed the 50k entries of `ix_vehicle_documents_dataset_lookup` with the full-text
        # bitmap: 6.6 of the 8.8 ms of "a fuel efficient compact car". Checked row by row there;
        # with a make or model, that index (dataset, make_key, model_key, year) is the one to use.
        column = f"{alias}.dataset" if f.selective else f"({alias}.dataset || '')"
        where.append(f"{column} IN ({listed})")
    if f.year is not None:
        where.append(f"{alias}.year = {bind('year', f.year)}::smallint")
    for column, value in (
        ("make_key", f.make_key),
        ("model_key", f.model_key),
        ("fuel_kind", f.fuel),
        ("class_kind", f.vehicle_class),
        ("drive_kind", f.drive),
    ):
        if value is not None:
            where.append(f"{alias}.{column} = {bind(column, value)}")
    return where


def _and(conditions: Sequence[str]) -> str:
    return " AND ".join(conditions) if conditions else "TRUE"


async def first_match(session: AsyncSession, filters: Sequence[DocumentFilter]) -> int | None:
    """Return the position of the first filter at least one document passes (one round trip).

    The filters are tested in order and the test stops at the first that matches
    (`CASE WHEN EXISTS ... THEN 0 WHEN EXISTS ... THEN 1 ... END`); None when none matches.
    """
    if not filters:
        return None
    params: dict[str, Any] = {}
    tests = " ".join(
        f"WHEN EXISTS (SELECT 1 FROM vehicle_documents d WHERE {_and(_where(f, params, f'f{i}_'))}) THEN {i}"  # noqa: S608 - constant SQL; values are parameters
        for i, f in enumerate(filters)
    )
    (found,) = (await _fetch(session, Statement(f"SELECT CASE {tests} END", params)))[0]
    return None if found is None else int(found)


async def documents(session: AsyncSession, ids: Sequence[int]) -> dict[int, DocumentRow]:
    """Load documents by id."""
    if not ids:
        return {}
    sql = f"SELECT {_COLUMNS_SQL} FROM vehicle_documents d WHERE d.id = ANY(%(ids)s::bigint[])"  # noqa: S608 - constant SQL; values are parameters
    rows = [_row(r) for r in await _fetch(session, Statement(sql, {"ids": list(ids)}))]
    return {row.id: row for row in rows}


async def find(
    session: AsyncSession, f: DocumentFilter, *, limit: int = 500, descending: bool = False
) -> list[DocumentRow]:
    """Return the documents that pass the filters, in record order (reversed when `descending`)."""
    params: dict[str, Any] = {"limit": limit}
    sql = (
        f"SELECT {_COLUMNS_SQL} FROM vehicle_documents d WHERE {_and(_where(f, params))} "  # noqa: S608 - constant SQL; values are parameters
        f"ORDER BY d.dataset, d.record_id{' DESC' if descending else ''} LIMIT %(limit)s"
    )
    return [_row(r) for r in await _fetch(session, Statement(sql, params))]


def campaign_key(record_id: str) -> str:
    """Return the campaign a recall document names: `20V286:TOYOTA:RAV4:2019` -> `20V286`."""
    return record_id.split(":")[0].upper()[:6]


async def count_campaigns(session: AsyncSession, f: DocumentFilter) -> int:
    """Return how many distinct recall campaigns (see `campaign_key`) the documents passing `f` name."""
    params: dict[str, Any] = {}
    sql = (
        "SELECT count(DISTINCT left(upper(split_part(d.record_id, ':', 1)), 6)) "  # noqa: S608 - constant SQL; values are parameters
        f"FROM vehicle_documents d WHERE {_and(_where(f, params))}"
    )
    return int((await _fetch(session, Statement(sql, params)))[0][0] or 0)


async def find_models_like(
    session: AsyncSession, dataset: str, make_key: str, model_key: str, year: int
) -> list[DocumentRow]:
    """Return a dataset's documents of a make and year whose model key starts with `model_key`."""
    stmt = (
        select(*_COLUMNS)
        .where(
            _D.dataset == dataset,
            _D.make_key == make_key,
            _D.year == year,
            _D.model_key.startswith(model_key, autoescape=True),
        )
        .order_by(_D.record_id)
        .limit(2000)
    )
    return [_row(r) for r in await session.execute(stmt)]


async def vocabulary_rows(session: AsyncSession, dataset: str) -> list[tuple[str, str, str, str, list[int]]]:
    """Return `(make_key, make, model_key, base_model, years)` for every model of a dataset."""
    stmt = (
        select(
            _D.make_key,
            func.mode().within_group(_D.make),
            _D.model_key,
            func.mode().within_group(_D.base_model),
            func.array_agg(func.distinct(_D.year)),
        )
        .where(_D.dataset == dataset)
        .group_by(_D.make_key, _D.model_key)
    )
    return [
        (mk, make, mdk, base, [y for y in years if y is not None])
        for mk, make, mdk, base, years in (await session.execute(stmt))
    ]


async def data_version(session: AsyncSession) -> str:
    """Return a token that changes whenever documents are inserted, updated or deleted.

    The row count and the latest `updated_at` (an upsert stamps it on every change):
    search results cached under one token are not served after a re-ingest.
    """
    count, latest = (await session.execute(select(func.count(), func.max(_D.updated_at)))).one()
    return f"{count}:{latest.isoformat() if latest is not None else '-'}"


def _tsquery(terms: Sequence[str], match: str) -> str | None:
    clean = [t for t in terms if t.isalnum()]
    return (" & " if match == "all" else " | ").join(clean) if clean else None


def _text_sql(f: DocumentFilter, params: dict[str, Any], tag: str, *, capped: bool) -> str:
    """Ids and ranks of the documents matching `%(<tag>q)s`, best first, `%(<tag>n)s` at most.

    Capped, only the first `%(<tag>cap)s` matches are ranked.
    """
    query = f"to_tsquery('simple'::regconfig, %({tag}q)s)"
    where = _and([f"d.tsv @@ {query}", *_where(f, params, tag)])
    if not capped:
        return (
            f"SELECT d.id, ts_rank(d.tsv, {query}) AS rank FROM vehicle_documents d WHERE {where} "  # noqa: S608 - constant SQL; values are parameters
            f"ORDER BY rank DESC, d.id LIMIT %({tag}n)s"
        )
    return (
        f"SELECT m.id, ts_rank(m.tsv, {query}) AS rank "  # noqa: S608 - constant SQL; values are parameters
        f"FROM (SELECT d.id, d.tsv FROM vehicle_documents d WHERE {where} LIMIT %({tag}cap)s) m "
        f"ORDER BY rank DESC, m.id LIMIT %({tag}n)s"
    )


async def text_ranked(
    session: AsyncSession,
    terms: Sequence[str],
    f: DocumentFilter,
    *,
    limit: int,
    match: str = "any",
    cap: int | None = None,
) -> list[int]:
    """Rank documents by full text (`ts_rank` on `tsv`) for `terms` (letters and digits only).

    Args:
        session: The session.
        terms: The words; anything but letters and digits is dropped.
        f: Filters.
        limit: How many ids to return.
        match: `any` (OR: documents with more of the words rank higher) or `all` (AND).
        cap: Rank only the first `cap` matching documents (bounds the cost of a common word
            over the whole corpus); None ranks every match.
    """
    query = _tsquery(terms, match)
    if query is None:
        return []
    params: dict[str, Any] = {"q": query, "n": limit, "cap": cap}
    sql = _text_sql(f, params, "", capped=cap is not None)
    return [int(r[0]) for r in await _fetch(session, Statement(sql, params))]


async def text_ranked_all_then_any(
    session: AsyncSession, terms: Sequence[str], f: DocumentFilter, *, limit: int, enough: int, cap: int
) -> list[int]:
    """Rank by all of `terms` (AND); when fewer than `enough` match, add the first `cap` matches of any.

    The same ids, in the same order, as `text_ranked(..., match="all")` followed, when it
    returns fewer than `enough` ids and there are several terms, by the ids of
    `text_ranked(..., cap=cap)` it did not return; in one statement (the second ranking
    runs only when the first is short: a one-time filter).
    """
    every, some = _tsquery(terms, "all"), _tsquery(terms, "any")
    if every is None or some is None:
        return []
    params: dict[str, Any] = {
        "aq": every,
        "an": limit,
        "bq": some,
        "bn": limit,
        "bcap": cap,
        "enough": enough,
    }
    first = _text_sql(f, params, "a", capped=False)
    if len([t for t in terms if t.isalnum()]) < 2:
        sql = f"SELECT 0, id FROM ({first}) a"  # noqa: S608 - constant SQL; values are parameters
    else:
        second = _text_sql(f, params, "b", capped=True)
        sql = (
            f"WITH a AS MATERIALIZED ({first}) "  # noqa: S608 - constant SQL; values are parameters
            "SELECT 0 AS part, a.id, a.rank FROM a "
            f"UNION ALL SELECT 1, b.id, b.rank FROM ({second}) b "
            "WHERE (SELECT count(*) FROM a) < %(enough)s "
            "ORDER BY part, rank DESC, id"
        )
    ids: list[int] = []
    seen: set[int] = set()
    for _, doc_id, *_ in await _fetch(session, Statement(sql, params)):
        if doc_id not in seen:
            seen.add(doc_id)
            ids.append(int(doc_id))
    return ids


async def vector_ranked(
    session: AsyncSession,
    vector: Sequence[float],
    f: DocumentFilter,
    *,
    limit: int,
    exact: bool,
    ef_search: int = 100,
) -> list[int]:
    """Rank documents by cosine distance to `vector`: through HNSW, or exactly.

    Args:
        session: A session inside a transaction (`hnsw.ef_search` is set for it alone).
        vector: The query embedding.
        f: Filters; with HNSW they are applied to the index's candidates.
        limit: How many ids to return.
        exact: Compute every distance among the filtered rows instead of walking the index.
        ef_search: The HNSW candidate list size.
    """
    stmt = vector_statement(vector, f, limit=limit, exact=exact)
    setting = [] if exact else [_ef_search_statement(ef_search)]
    return [int(doc_id) for doc_id, _ in await _fetch(session, *setting, stmt)]


def vector_statement(
    vector: Sequence[float], f: DocumentFilter, *, limit: int, exact: bool, walk: int = 1000
) -> Statement:
    """Return the vector ranking query (see `vector_ranked`): ids and distances, nearest first.

    Ties (rows sharing an embedding text share a vector) break by id, so that the ranking
    is the same however it is read (`vector_ranked`, `fused_documents`).

    The HNSW query takes the `walk` nearest vectors of any document from the index (the
    walk itself stops at `hnsw.ef_search` candidates) and filters them afterwards, in an
    outer query: with the filters beside the `ORDER BY`, the planner picked a bitmap scan
    of every row the filters pass, sorted by distance, whenever it misjudged their count
    (200 ms for "a compact car").
    """
    params: dict[str, Any] = {"vq": _vector(vector), "vn": limit}
    model = []
    if f.embedding_model is not None:
        params["vmodel"] = f.embedding_model
        model = ["embedding_model = %(vmodel)s"]
    if exact:
        # `+ 0`: an expression no index can serve, so every distance among the filtered rows is computed
        where = _and(["d.embedding IS NOT NULL", *(f"d.{m}" for m in model), *_where(f, params, "v")])
        sql = (
            "SELECT d.id, (d.embedding <=> %(vq)s) + 0 AS distance FROM vehicle_documents d "  # noqa: S608 - constant SQL; values are parameters
            f"WHERE {where} ORDER BY distance, d.id LIMIT %(vn)s"
        )
        return Statement(sql, params)
    # the index serves `ORDER BY distance LIMIT n` only: a second sort key turns it into a scan,
    # so ties break by id in the outer query (over `walk` rows at most)
    params["vwalk"] = walk
    nearest = (
        "SELECT n.id, n.embedding <=> %(vq)s AS distance FROM vehicle_documents n "  # noqa: S608 - constant SQL; values are parameters
        f"WHERE {_and(['n.embedding IS NOT NULL', *(f'n.{m}' for m in model)])} "
        "ORDER BY n.embedding <=> %(vq)s LIMIT %(vwalk)s"
    )
    conditions = _where(f, params, "v")
    if not conditions:
        sql = (
            f"SELECT nearest.id, nearest.distance FROM ({nearest}) nearest "  # noqa: S608 - constant SQL; values are parameters
            "ORDER BY nearest.distance, nearest.id"
        )
    else:
        sql = (
            f"SELECT d.id, nearest.distance FROM vehicle_documents d JOIN ({nearest}) nearest "  # noqa: S608 - constant SQL; values are parameters
            f"ON nearest.id = d.id WHERE {_and(conditions)} ORDER BY nearest.distance, d.id"
        )
    return Statement(f"{sql} LIMIT %(vn)s", params)


@dataclass(frozen=True, slots=True)
class FusedHit:
    """A document of a fused ranking, with its rank in each ranking (None: not ranked there)."""

    row: DocumentRow
    text_rank: int | None
    vector_rank: int | None
    score: float


async def fused_documents(
    session: AsyncSession,
    text_ids: Sequence[int],
    vector: Statement | None,
    *,
    k: int,
    limit: int,
    ef_search: int | None = None,
) -> list[FusedHit]:
    """Fuse a full-text ranking with a vector ranking and load the best documents, in one statement.

    Reciprocal rank fusion as `tools.specs.rrf` computes it (score = sum of 1 / (k + rank)
    in double precision, best first, ties by id), done by PostgreSQL, so the vector ranking,
    the fusion and the loading of the rows cost one round trip.

    Args:
        session: The session (inside the transaction that sets `hnsw.ef_search`, for HNSW).
        text_ids: The full-text ranking, best first.
        vector: The vector ranking query (`vector_statement`), or None for full text alone.
        k: The fusion constant.
        limit: How many documents to return.
        ef_search: Set `hnsw.ef_search` for the transaction first (same round trip), for HNSW.
    """
    params: dict[str, Any] = {"text_ids": list(text_ids), "k": k, "limit": limit}
    text_ranked = "unnest(%(text_ids)s::bigint[]) WITH ORDINALITY AS t(id, rank)"
    text_score = "coalesce(1.0::float8 / (%(k)s + t.rank), 0.0)"
    if vector is None:
        fused = (
            f"SELECT t.id AS id, t.rank AS text_rank, NULL::bigint AS vector_rank, {text_score} AS score "  # noqa: S608 - constant SQL; values are parameters
            f"FROM {text_ranked}"
        )
    else:
        params.update(vector.params)
        # ranked in the ranking query's own order (by distance, ties by id)
        fused = (
            "SELECT coalesce(t.id, v.id) AS id, t.rank AS text_rank, v.rank AS vector_rank, "  # noqa: S608 - constant SQL; values are parameters
            f"{text_score} + coalesce(1.0::float8 / (%(k)s + v.rank), 0.0) AS score "
            f"FROM {text_ranked} FULL JOIN (SELECT r.id, "
            f"row_number() OVER (ORDER BY r.distance, r.id) AS rank FROM ({vector.sql}) r) v ON v.id = t.id"
        )
    sql = (
        f"SELECT {_COLUMNS_SQL}, f.text_rank, f.vector_rank, f.score FROM vehicle_documents d "  # noqa: S608 - constant SQL; values are parameters
        f"JOIN ({fused} ORDER BY score DESC, id LIMIT %(limit)s) f ON f.id = d.id ORDER BY f.score DESC, f.id"
    )
    setting = [] if ef_search is None else [_ef_search_statement(ef_search)]
    width = len(_COLUMNS)
    return [
        FusedHit(
            row=_row(r[:width]),
            text_rank=None if r[width] is None else int(r[width]),
            vector_rank=None if r[width + 1] is None else int(r[width + 1]),
            score=float(r[width + 2]),
        )
        for r in await _fetch(session, *setting, Statement(sql, params))
    ]


async def count_upto(session: AsyncSession, f: DocumentFilter, cap: int) -> int:
    """Return how many documents pass the filters, counting no further than `cap`."""
    params: dict[str, Any] = {"cap": cap}
    sql = (
        f"SELECT count(*) FROM (SELECT d.id FROM vehicle_documents d WHERE {_and(_where(f, params))} "  # noqa: S608 - constant SQL; values are parameters
        "LIMIT %(cap)s) p"
    )
    return int((await _fetch(session, Statement(sql, params)))[0][0])


def _ef_search_statement(ef_search: int) -> Statement:
    """Set `hnsw.ef_search` for the current transaction (read at run time, so prepared plans obey it)."""
    return Statement("SELECT set_config('hnsw.ef_search', %(ef)s, true)", {"ef": str(int(ef_search))})


def _vector(values: Sequence[float]) -> str:
    """The text form of a query vector: the float32 numbers pgvector's own `Vector.to_text` writes.

    Nine significant digits name every float32 exactly (PostgreSQL reads them back with
    `strtof`), and `{:.9g}` writes them in half the CPU of pgvector's per-number conversion
    from a NumPy scalar (~0.35 ms per search under load).
    """
    if len(values) != EMBEDDING_DIM:
        raise ValueError(f"expected {EMBEDDING_DIM} dimensions, not {len(values)}")
    return "[" + ",".join([f"{x:.9g}" for x in np.asarray(values, dtype=np.float32).tolist()]) + "]"
