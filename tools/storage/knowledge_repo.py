"""Vehicle knowledge reads: exact look-ups, full-text and vector rankings over `vehicle_documents`.

Rankings return document ids only; `documents` loads them. Repositories never commit.

Two vector rankings exist on purpose. `vector_ranked(..., exact=False)` walks the HNSW
index (approximate, fast on the whole corpus; `hnsw.ef_search` is set per transaction).
`exact=True` orders by `(embedding <=> q) + 0`, an expression no index can serve, so
PostgreSQL computes every distance among the filtered rows: exact, and cheap when a
make or model filter leaves a few hundred rows. That also keeps HNSW's post-filtering
(pgvector 0.6 has no iterative scans) from returning fewer rows than asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pgvector.sqlalchemy import Vector
from sqlalchemy import ColumnElement, Select, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tools.storage.models import EMBEDDING_DIM, VehicleDocument

# How a fuel kind of `tools.domain.spec_query` shows in a document: EPA's `atvType`
# (the `atv_type` fact) or the fuel column.
_FUEL_ATV: Final[dict[str, tuple[str, ...]]] = {
    "electric": ("EV",),
    "plug-in hybrid": ("Plug-in Hybrid",),
    "hybrid": ("Hybrid",),
    "diesel": ("Diesel",),
    "flex-fuel": ("FFV",),
    "cng": ("CNG", "Bifuel (CNG)"),
    "hydrogen": ("FCV",),
}
_FUEL_TEXT: Final[dict[str, tuple[str, ...]]] = {
    "electric": ("Electricity",),
    "plug-in hybrid": (),
    "hybrid": (),
    "diesel": ("%Diesel%",),
    "flex-fuel": ("%E85%",),
    "cng": ("%natural gas%", "CNG"),
    "hydrogen": ("%Hydrogen%",),
}
# EPA size classes (`VClass`) per class kind.
_CLASS_PATTERNS: Final[dict[str, tuple[str, ...]]] = {
    "suv": ("%Sport Utility%",),
    "pickup": ("%Pickup%",),
    "car": ("%Cars",),
    "minivan": ("Minivan%",),
    "van": ("Vans%",),
    "wagon": ("%Station Wagon%",),
    "two-seater": ("Two Seaters%",),
}
_DRIVE_PATTERNS: Final[dict[str, tuple[str, ...]]] = {
    "awd": ("%All-Wheel%", "%4-Wheel%", "%All Wheel%", "4WD", "AWD"),
    "fwd": ("Front%", "%Front", "FWD", "2-Wheel Drive, Front"),
    "rwd": ("Rear%", "%Rear", "RWD", "2-Wheel Drive, Rear"),
}


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
    if f.kind is not None:
        where.append(_D.kind == f.kind)
    if f.datasets:
        where.append(_D.dataset.in_(f.datasets))
    if f.year is not None:
        where.append(_D.year == f.year)
    if f.make_key is not None:
        where.append(_D.make_key == f.make_key)
    if f.model_key is not None:
        where.append(_D.model_key == f.model_key)
    if f.fuel is not None:
        atv = _FUEL_ATV.get(f.fuel, ())
        fuel_text = _FUEL_TEXT.get(f.fuel, ())
        where.append(
            or_(
                _D.facts["atv_type"].astext.in_(atv) if atv else literal(False),
                *(_D.fuel.ilike(p) for p in fuel_text),
            )
        )
    if f.vehicle_class is not None:
        where.append(or_(*(_D.vehicle_class.ilike(p) for p in _CLASS_PATTERNS.get(f.vehicle_class, ("",)))))
    if f.drive is not None:
        where.append(or_(*(_D.drive.ilike(p) for p in _DRIVE_PATTERNS.get(f.drive, ("",)))))
    return where


async def any_match(session: AsyncSession, f: DocumentFilter) -> bool:
    """Tell whether at least one document passes the filters."""
    return bool(await session.scalar(select(select(_D.id).where(*_conditions(f)).exists())))


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
    return list((await session.scalars(stmt)).all())


def vector_statement(vector: Sequence[float], f: DocumentFilter, *, limit: int, exact: bool) -> Select[int]:
    """Return the vector ranking query (see `vector_ranked`)."""
    distance = _D.embedding.cosine_distance(_vector(vector))
    where = [_D.embedding.is_not(None), *_conditions(f)]
    if f.embedding_model is not None:
        where.append(_D.embedding_model == f.embedding_model)
    if exact:
        # ties (rows sharing an embedding text share a vector) break by id, for stable results
        return select(_D.id).where(*where).order_by(distance + 0, _D.id).limit(limit)
    # the index serves `ORDER BY distance LIMIT n` only: a second sort key turns it into a scan
    return select(_D.id).where(*where).order_by(distance).limit(limit)


async def set_ef_search(session: AsyncSession, ef_search: int) -> None:
    """Set `hnsw.ef_search` for the current transaction (read at run time, so prepared plans obey it)."""
    await session.execute(select(func.set_config("hnsw.ef_search", str(int(ef_search)), True)))


def _vector(values: Sequence[float]) -> Any:
    return literal(list(values), type_=Vector(EMBEDDING_DIM))
