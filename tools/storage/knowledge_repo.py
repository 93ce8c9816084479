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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """One document as the capabilities read it (no vector, no tsvector)."""

    id: int
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


_D = VehicleDocument
_N = aliased(VehicleDocument, name="n")  # the HNSW walk's rows, joined back to `_D` for the filters
_COLUMNS = (
    _D.id,
    _D.dataset,
    _D.record_id,
    _D.kind,
    _D.year,
    _D.make,
    _D.make_key,
    _D.model,
    _D.base_model,
    _D.model_key,
    _D.configuration,
    _D.engine,
    _D.cylinders,
    _D.displacement_l,
    _D.transmission,
    _D.drive,
    _D.fuel,
    _D.vehicle_class,
    _D.facts,
    _D.content,
    _D.data_date,
)


def _row(r: Any) -> DocumentRow:
    return DocumentRow(*r)


def _conditions(f: DocumentFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if f.kind is not None and f.datasets:
        # Checked row by row, not through `ix_vehicle_documents_lookup` (kind, make, ...): with both
        # a kind and a dataset condition the planner ANDed that index with every row of the dataset
        # (`uq_vehicle_documents_dataset_record`: 50k EPA rows) instead of using
        # `ix_vehicle_documents_dataset_lookup` alone, 10-50x slower on a make-wide search.
        where.append(_D.kind.concat("") == f.kind)
    elif f.kind is not None:
        where.append(_D.kind == f.kind)
    if f.datasets:
        where.append(_D.dataset.in_(f.datasets))
    if f.year is not None:
        where.append(_D.year == f.year)
    if f.make_key is not None:
        where.append(_D.make_key == f.make_key)
    if f.model_key is not None:
        where.append(_D.model_key == f.model_key)
    # the kinds are indexed columns PostgreSQL computes from the labels (models.FUEL_KIND_SQL, ...)
    if f.fuel is not None:
        where.append(_D.fuel_kind == f.fuel)
    if f.vehicle_class is not None:
        where.append(_D.class_kind == f.vehicle_class)
    if f.drive is not None:
        where.append(_D.drive_kind == f.drive)
    return where


async def first_match(session: AsyncSession, filters: Sequence[DocumentFilter]) -> int | None:
    """Return the position of the first filter at least one document passes (one round trip).

    The filters are tested in order and the test stops at the first that matches
    (`CASE WHEN EXISTS ... THEN 0 WHEN EXISTS ... THEN 1 ... END`); None when none matches.
    """
    if not filters:
        return None
    first = case(
        *((select(_D.id).where(*_conditions(f)).exists(), i) for i, f in enumerate(filters)),
        else_=None,
    )
    found = await session.scalar(select(first))
    return None if found is None else int(found)


async def documents(session: AsyncSession, ids: Sequence[int]) -> dict[int, DocumentRow]:
    """Load documents by id."""
    if not ids:
        return {}
    rows = await session.execute(select(*_COLUMNS).where(_D.id.in_(list(ids))))
    return {r.id: _row(r) for r in rows}


async def find(
    session: AsyncSession, f: DocumentFilter, *, limit: int = 500, descending: bool = False
) -> list[DocumentRow]:
    """Return the documents that pass the filters, in record order (reversed when `descending`)."""
    order = _D.record_id.desc() if descending else _D.record_id
    stmt = select(*_COLUMNS).where(*_conditions(f)).order_by(_D.dataset, order).limit(limit)
    return [_row(r) for r in await session.execute(stmt)]


def campaign_key(record_id: str) -> str:
    """Return the campaign a recall document names: `20V286:TOYOTA:RAV4:2019` -> `20V286`."""
    return record_id.split(":")[0].upper()[:6]


async def count_campaigns(session: AsyncSession, f: DocumentFilter) -> int:
    """Return how many distinct recall campaigns (see `campaign_key`) the documents passing `f` name."""
    key = func.left(func.upper(func.split_part(_D.record_id, ":", 1)), 6)
    return int(await session.scalar(select(func.count(func.distinct(key))).where(*_conditions(f))) or 0)


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
    clean = [t for t in terms if t.isalnum()]
    if not clean:
        return []
    query = func.to_tsquery(text("'simple'::regconfig"), (" & " if match == "all" else " | ").join(clean))
    if cap is None:
        rank = func.ts_rank(_D.tsv, query)
        stmt = select(_D.id).where(_D.tsv.op("@@")(query), *_conditions(f)).order_by(rank.desc(), _D.id)
    else:
        matches = select(_D.id, _D.tsv).where(_D.tsv.op("@@")(query), *_conditions(f)).limit(cap).subquery()
        rank = func.ts_rank(matches.c.tsv, query)
        stmt = select(matches.c.id).order_by(rank.desc(), matches.c.id)
    return list((await session.scalars(stmt.limit(limit))).all())


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
    if not exact:
        await set_ef_search(session, ef_search)
    stmt = vector_statement(vector, f, limit=limit, exact=exact)
    return [int(doc_id) for doc_id, _ in await session.execute(stmt)]


def vector_statement(
    vector: Sequence[float], f: DocumentFilter, *, limit: int, exact: bool, walk: int = 1000
) -> Select[int, float]:
    """Return the vector ranking query (see `vector_ranked`): ids and distances, nearest first.

    Ties (rows sharing an embedding text share a vector) break by id, so that the ranking
    is the same however it is read (`vector_ranked`, `fused_documents`).

    The HNSW query takes the `walk` nearest vectors of any document from the index (the
    walk itself stops at `hnsw.ef_search` candidates) and filters them afterwards, in an
    outer query: with the filters beside the `ORDER BY`, the planner picked a bitmap scan
    of every row the filters pass, sorted by distance, whenever it misjudged their count
    (200 ms for "a compact car").
    """
    query = _vector(vector)
    model = [] if f.embedding_model is None else [_D.embedding_model == f.embedding_model]
    if exact:
        distance = _D.embedding.cosine_distance(query)
        where = [_D.embedding.is_not(None), *model, *_conditions(f)]
        ranked = (distance + 0).label("distance")
        return select(_D.id, ranked).where(*where).order_by(ranked, _D.id).limit(limit)
    # the index serves `ORDER BY distance LIMIT n` only: a second sort key turns it into a scan,
    # so ties break by id in the outer query (over `walk` rows at most)
    distance = _N.embedding.cosine_distance(query)
    nearest = (
        select(_N.id, distance.label("distance"))
        .where(_N.embedding.is_not(None), *([_N.embedding_model == f.embedding_model] if model else []))
        .order_by(distance)
        .limit(walk)
        .subquery("nearest")
    )
    conditions = _conditions(f)
    if not conditions:
        return (
            select(nearest.c.id, nearest.c.distance).order_by(nearest.c.distance, nearest.c.id).limit(limit)
        )
    return (
        select(_D.id, nearest.c.distance)
        .join(nearest, nearest.c.id == _D.id)
        .where(*conditions)
        .order_by(nearest.c.distance, _D.id)
        .limit(limit)
    )


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
    vector: Select[int, float] | None,
    *,
    k: int,
    limit: int,
) -> list[FusedHit]:
    """Fuse a full-text ranking with a vector ranking and load the best documents, in one statement.

    Reciprocal rank fusion as `tools.specs.rrf` computes it (score = sum of 1 / (k + rank)
    in double precision, best first, ties by id), done by PostgreSQL, so the vector ranking,
    the fusion and the loading of the rows cost one round trip.

    Args:
        session: The session (inside the transaction that set `hnsw.ef_search`, for HNSW).
        text_ids: The full-text ranking, best first.
        vector: The vector ranking query (`vector_statement`), or None for full text alone.
        k: The fusion constant.
        limit: How many documents to return.
    """
    text_ranked = (
        func.unnest(bindparam("text_ids", list(text_ids), type_=ARRAY(BigInteger)))
        .table_valued("id", with_ordinality="rank")
        .render_derived(name="t")
    )
    one: ColumnElement[float] = literal(1.0, type_=Double())
    text_score = func.coalesce(one / (k + text_ranked.c.rank), 0.0)
    if vector is None:
        fused = select(
            text_ranked.c.id.label("id"),
            text_ranked.c.rank.label("text_rank"),
            null().label("vector_rank"),
            text_score.label("score"),
        )
    else:
        ranked = vector.subquery("v_ids")
        # ranked in the ranking query's own order (by distance, ties by id)
        rank = func.row_number().over(order_by=(ranked.c.distance, ranked.c.id)).label("rank")
        vector_ranked = select(ranked.c.id, rank).subquery("v")
        fused = select(
            func.coalesce(text_ranked.c.id, vector_ranked.c.id).label("id"),
            text_ranked.c.rank.label("text_rank"),
            vector_ranked.c.rank.label("vector_rank"),
            (text_score + func.coalesce(one / (k + vector_ranked.c.rank), 0.0)).label("score"),
        ).select_from(text_ranked.join(vector_ranked, text_ranked.c.id == vector_ranked.c.id, full=True))
    best = fused.order_by(text("score DESC"), text("id")).limit(limit).subquery("f")
    stmt = (
        select(*_COLUMNS, best.c.text_rank, best.c.vector_rank, best.c.score)
        .join(best, best.c.id == _D.id)
        .order_by(best.c.score.desc(), best.c.id)
    )
    return [
        FusedHit(
            row=_row(r[: len(_COLUMNS)]),
            text_rank=None if r.text_rank is None else int(r.text_rank),
            vector_rank=None if r.vector_rank is None else int(r.vector_rank),
            score=float(r.score),
        )
        for r in await session.execute(stmt)
    ]


async def count_upto(session: AsyncSession, f: DocumentFilter, cap: int) -> int:
    """Return how many documents pass the filters, counting no further than `cap`."""
    passing = select(_D.id).where(*_conditions(f)).limit(cap).subquery()
    return int(await session.scalar(select(func.count()).select_from(passing)) or 0)


async def set_ef_search(session: AsyncSession, ef_search: int) -> None:
    """Set `hnsw.ef_search` for the current transaction (read at run time, so prepared plans obey it)."""
    await session.execute(select(func.set_config("hnsw.ef_search", str(int(ef_search)), True)))


def _vector(values: Sequence[float]) -> Any:
    return literal(list(values), type_=Vector(EMBEDDING_DIM))
