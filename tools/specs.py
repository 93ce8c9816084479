"""Vehicle specs: exact look-ups by year, make and model, and hybrid search over every document.

Plain async functions with typed results; the agent binds them as tools, and the
comparison and recall capabilities build on `resolve_vehicle`.

* `get_specs` answers from structured rows: every EPA configuration of the vehicle,
  each with its facts, its rated horsepower from the EPA test-car list when one
  matches, and where each value came from. Several configurations are all returned.
* `search_specs` ranks documents for a free-text question: PostgreSQL full text
  (`tsv`, `ts_rank`) and pgvector cosine distance (HNSW, or an exact scan when a make,
  model or narrow fuel/class/year filter leaves few rows), each under the filters parsed
  from the question, fused by reciprocal rank fusion. The query is embedded (or taken
  from the process's recent query vectors) while the full-text ranking runs. It also
  says which asked-about fields no dataset holds, so the answer can say so instead of
  guessing.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import hashlib
import json
import logging
import re
import time
from array import array
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.domain.facts import DATASET_TITLES, FACTS_BY_KEY, UNAVAILABLE
from tools.domain.names import display_make
from tools.domain.spec_query import (
    DESCRIPTIVE,
    ModelEntry,
    SpecQuery,
    VehicleMention,
    Vocabulary,
    configuration_words,
    fold,
    parse_question,
    words,
)
from tools.domain.vehicle import DecodedVehicle
from tools.errors import InvalidInput, ProviderError, VehicleNotFound
from tools.providers.base import Cache
from tools.settings import KnowledgeSettings
from tools.storage import knowledge_repo as repo
from tools.storage.knowledge_repo import DocumentFilter, DocumentRow
from tools.storage.session import autocommit_session

logger = logging.getLogger(__name__)

SEARCH_KEY_VERSION: Final = "v1"  # bump when SearchResult's shape changes
MAX_NAME_CHARS: Final = 80
MIN_YEAR, MAX_YEAR = 1900, 2100
EPA: Final = "epa"
TEST_CARS: Final = "epa-test-cars"
RECALLS: Final = "nhtsa-recalls"

# Values the publishers write as 0 (or -1) when they do not know them.
_ZERO_IS_UNKNOWN: Final = frozenset(
    {
        "city_mpg",
        "highway_mpg",
        "combined_mpg",
        "city_mpg_alt",
        "highway_mpg_alt",
        "combined_mpg_alt",
        "range_mi",
        "range_city_mi",
        "range_highway_mi",
        "phev_electric_range_mi",
        "kwh_per_100mi",
        "charge_hours_240v",
        "passenger_volume_cuft",
        "luggage_volume_cuft",
        "horsepower",
        "test_weight_lbs",
        "axle_ratio",
        "gears",
        "annual_fuel_cost_usd",
    }
)
_SCORES: Final = frozenset({"fe_score", "ghg_score"})


class QueryEmbedder(Protocol):
    """What search needs of `tools.providers.embeddings.Embedder`: a name and query vectors."""

    @property
    def model(self) -> str:
        """The model name stored with every vector."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed one search query."""
        ...


class VocabularyCache:
    """The makes and models in the database, loaded once and refreshed after `ttl`.

    Each load also reads the documents' data version (`knowledge_repo.data_version`),
    refreshed with the vocabulary: search results are cached under it.
    """

    def __init__(self, ttl: timedelta = timedelta(minutes=10)) -> None:
        self._ttl = ttl.total_seconds()
        self._lock = asyncio.Lock()
        self._loaded: dict[str, tuple[float, Vocabulary, str]] = {}

    async def get(self, sessions: async_sessionmaker[AsyncSession], dataset: str) -> Vocabulary:
        """Return the vocabulary of `dataset`, loading it when missing or stale."""
        vocabulary, _ = await self.get_versioned(sessions, dataset)
        return vocabulary

    async def get_versioned(
        self, sessions: async_sessionmaker[AsyncSession], dataset: str
    ) -> tuple[Vocabulary, str]:
        """Return the vocabulary of `dataset` and the data version read with it."""
        held = self._loaded.get(dataset)
        if held is not None and time.monotonic() - held[0] < self._ttl:
            return held[1], held[2]
        async with self._lock:
            held = self._loaded.get(dataset)
            if held is not None and time.monotonic() - held[0] < self._ttl:
                return held[1], held[2]
            async with sessions() as session:
                rows = await repo.vocabulary_rows(session, dataset)
                version = await repo.data_version(session)
            vocabulary = Vocabulary.build(
                (mk, display_make(mk), mdk, base or mdk, year)
                for mk, _, mdk, base, years in rows
                for year in years
            )
            self._loaded[dataset] = (time.monotonic(), vocabulary, version)
            return vocabulary, version

    def clear(self) -> None:
        """Forget what was loaded (after an ingestion run)."""
        self._loaded.clear()


class QueryVectorCache:
    """The latest query embeddings of this process, by model and text (least recently used out).

    The text is the question's canonical English rendering (`_embedding_text`), so the same
    question asked again, or in another of the four languages, skips the model. Vectors are
    held as doubles (3 kB each), exactly as the model returned them (OpenAI's are not float32).
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._max = max_entries
        self._vectors: OrderedDict[tuple[str, str], array[float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, model: str, text: str) -> list[float] | None:
        """Return the cached vector of `text` under `model`, or None."""
        held = self._vectors.get((model, text))
        if held is None:
            self.misses += 1
            return None
        self._vectors.move_to_end((model, text))
        self.hits += 1
        return list(held)

    def put(self, model: str, text: str, vector: Sequence[float]) -> None:
        """Keep `vector`, forgetting the least recently used one beyond `max_entries`."""
        if self._max <= 0:
            return
        self._vectors[(model, text)] = array("d", vector)
        self._vectors.move_to_end((model, text))
        while len(self._vectors) > self._max:
            self._vectors.popitem(last=False)


class FilterCounts:
    """How many documents pass each filter (counted up to a cap), per data version (least recently used out).

    Search counts the documents a fuel, class, drive or year filter passes to choose an exact
    vector scan or HNSW; the same few filters recur, and their counts change only when the
    documents do (`knowledge_repo.data_version`, read with the vocabulary).
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._version = ""
        self._counts: OrderedDict[DocumentFilter, int] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, version: str, flt: DocumentFilter) -> int | None:
        """Return the count kept for `flt` under data `version`, or None."""
        key = _replace(flt, embedding_model=None)
        held = self._counts.get(key) if version == self._version else None
        if held is None:
            self.misses += 1
            return None
        self._counts.move_to_end(key)
        self.hits += 1
        return held

    def put(self, version: str, flt: DocumentFilter, count: int) -> None:
        """Keep `count` for `flt` under `version`, forgetting every count of another version."""
        if self._max <= 0:
            return
        if version != self._version:
            self._counts.clear()
            self._version = version
        key = _replace(flt, embedding_model=None)
        self._counts[key] = count
        self._counts.move_to_end(key)
        while len(self._counts) > self._max:
            self._counts.popitem(last=False)


@dataclass(frozen=True)
class KnowledgeDeps:
    """What the spec, comparison and recall capabilities need, built once per process."""

    sessions: async_sessionmaker[AsyncSession]
    embedder: QueryEmbedder | None = None  # None: full-text ranking only
    cache: Cache | None = None  # search results; None: no caching
    settings: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    vocabulary: VocabularyCache = field(default_factory=VocabularyCache)
    query_vectors: QueryVectorCache = field(default_factory=QueryVectorCache)
    filter_counts: FilterCounts = field(default_factory=FilterCounts)


class SpecNotFound(VehicleNotFound):
    """No spec data for the vehicle asked about, with what the data does have.

    `reason` is `unknown_make`, `unknown_model`, `year_out_of_range` or
    `no_configuration`; `suggestions` are names the user may have meant; `years`
    are the model years the data holds for the model.
    """

    def __init__(
        self,
        public_message: str,
        *,
        reason: str,
        suggestions: Sequence[str] = (),
        years: Sequence[int] = (),
    ) -> None:
        super().__init__(public_message)
        self.reason = reason
        self.suggestions = list(suggestions)
        self.years = list(years)

    def to_dict(self) -> dict[str, object]:
        """Return the error with its reason, suggestions and years."""
        data: dict[str, object] = {**super().to_dict(), "reason": self.reason}
        if self.suggestions:
            data["suggestions"] = self.suggestions
        if self.years:
            data["years"] = year_ranges(self.years)
        return data


# ---------------------------------------------------------------- result models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


FactValue = float | int | str | bool


class HorsepowerMatch(_Model):
    """Rated horsepower for one EPA configuration, from the EPA test-car list, and how it was matched."""

    horsepower: int | None = Field(None, description="Rated horsepower; None when not matched.")
    status: Literal["matched", "ambiguous", "not_matched", "not_covered"] = Field(
        description="matched: one rating fits; ambiguous: several ratings fit (values lists them); "
        "not_matched: no test car fits; not_covered: the test-car list has no such model year (2015-2024)."
    )
    basis: str = Field(description="What the match rests on, or why there is none.")
    values: list[int] = Field(
        default_factory=list, description="Every rating among the best-matching test cars."
    )
    record_id: str | None = Field(None, description="The test-car record the rating comes from.")
    source: dict[str, Any] | None = None


class SpecRecord(_Model):
    """One document: an EPA configuration, an EPA test car, or a recall campaign for one vehicle."""

    id: int
    dataset: str
    record_id: str
    kind: str
    year: int | None
    make: str
    model: str = Field(description="The model as the publisher wrote it: 'RAV4 Hybrid AWD'.")
    base_model: str
    make_key: str
    model_key: str
    configuration: str | None = None
    engine: str | None = None
    cylinders: int | None = None
    displacement_l: float | None = None
    transmission: str | None = None
    drive: str | None = None
    fuel: str | None = None
    vehicle_class: str | None = None
    facts: dict[str, FactValue] = Field(default_factory=dict, description="Keys of tools.domain.facts.FACTS.")
    data_date: date | None = None
    horsepower: HorsepowerMatch | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ref(self) -> str:
        """The citation id: `<dataset>:<record id>`."""
        return f"{self.dataset}:{self.record_id}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title(self) -> str:
        """A human label: `2019 Toyota RAV4 AWD (2.5 L 4 cyl, Automatic (S8), All-Wheel Drive)`."""
        head = " ".join(str(p) for p in (self.year, self.make, self.model) if p)
        return f"{head} ({self.configuration})" if self.configuration else head

    def source(self) -> dict[str, Any]:
        """Return the citation of this record (an `Answer.sources` entry)."""
        return {
            "provider": "knowledge",
            "dataset": DATASET_TITLES.get(self.dataset, self.dataset),
            "record_id": self.ref,
            "data_date": self.data_date.isoformat() if self.data_date else None,
            "title": self.title,
        }

    def value(self, key: str) -> FactValue | None:
        """Return a fact or descriptive column by key, or None."""
        if key == "horsepower" and self.horsepower is not None and self.horsepower.horsepower is not None:
            return self.horsepower.horsepower
        if key in DESCRIPTIVE:
            return getattr(self, key)  # type: ignore[no-any-return]
        return self.facts.get(key)

    @classmethod
    def from_row(cls, row: DocumentRow) -> SpecRecord:
        """Build from a stored document, dropping values the publisher marks unknown."""
        return cls(
            id=row.id,
            dataset=row.dataset,
            record_id=row.record_id,
            kind=row.kind,
            year=row.year,
            make=display_make(row.make_key) if row.make.isupper() and row.make_key else row.make,
            model=row.model,
            base_model=row.base_model,
            make_key=row.make_key,
            model_key=row.model_key,
            configuration=row.configuration,
            engine=row.engine,
            cylinders=row.cylinders,
            displacement_l=row.displacement_l,
            transmission=row.transmission,
            drive=row.drive,
            fuel=row.fuel,
            vehicle_class=row.vehicle_class,
            facts=_known_facts(row.facts),
            data_date=row.data_date,
        )


class UnavailableField(_Model):
    """A field asked about that no dataset holds."""

    key: str
    label: str
    message: str


class SpecResult(_Model):
    """Every configuration of one vehicle the data holds, with facts and provenance."""

    vehicle: str = Field(description="'2019 Toyota RAV4'.")
    year: int
    make: str
    model: str
    make_key: str
    model_key: str
    configuration: str | None = Field(None, description="The narrowing asked for, if any.")
    configurations: list[SpecRecord] = Field(description="Every matching configuration, ordered.")
    total_configurations: int = Field(description="Configurations of the vehicle before narrowing.")
    note: str = Field(description="How many configurations match and what to do with them.")
    sources: list[dict[str, Any]]


class SearchFilters(_Model):
    """The structured filters a search ran under (parsed from the question or passed in)."""

    kind: str | None = None
    year: int | None = None
    make: str | None = None
    model: str | None = None
    make_key: str | None = None
    model_key: str | None = None
    fuel: str | None = None
    vehicle_class: str | None = None
    drive: str | None = None


class SearchHit(_Model):
    """One ranked document with both of its ranks and the fused score."""

    record: SpecRecord
    text_rank: int | None = Field(None, description="1-based rank by full text; None when not ranked.")
    vector_rank: int | None = Field(None, description="1-based rank by embedding; None when not ranked.")
    score: float = Field(description="Reciprocal rank fusion score (k=60).")


class SearchResult(_Model):
    """The documents ranked for a question, and what the question asked that the data cannot answer."""

    question: str
    filters: SearchFilters
    relaxed: list[str] = Field(
        default_factory=list, description="Filters dropped because nothing matched them (year, model, ...)."
    )
    asked: list[str] = Field(default_factory=list, description="Fact keys the question asks about.")
    unavailable: list[UnavailableField] = Field(default_factory=list)
    hits: list[SearchHit]
    record_ids: list[str] = Field(description="`<dataset>:<record id>` of the hits, best first.")
    vector_search: Literal["hnsw", "exact", "off"] = "off"
    searched_vehicles: list[str] = Field(
        default_factory=list,
        description="For comparisons: the vehicles ranked one by one; the hits take turns between them.",
    )
    note: str = ""
    sources: list[dict[str, Any]] = Field(default_factory=list)


# ---------------------------------------------------------------- resolving a vehicle


@dataclass(frozen=True, slots=True)
class ResolvedVehicle:
    """A year, make and model as the data names them, plus words that narrow the configuration."""

    year: int
    make_key: str
    make: str
    model: ModelEntry
    configuration: str | None

    @property
    def label(self) -> str:
        """'2019 Toyota RAV4'."""
        return f"{self.year} {self.make} {self.model.name}"


async def resolve_vehicle(
    year: int | None,
    make: str,
    model: str,
    *,
    deps: KnowledgeDeps,
    dataset: str = EPA,
    check_year: bool = True,
) -> ResolvedVehicle:
    """Resolve a make and model as written to the data's keys, and check the year.

    Args:
        year: The model year; None only when `check_year` is False.
        make: The make as written (aliases such as `Chevy`, `VW` are folded).
        model: The model as written; trailing words that are not part of the model
            name (`Hybrid AWD`) become the configuration.
        deps: The knowledge dependencies.
        dataset: Whose vocabulary to use (`epa` for specs, `nhtsa-recalls` for recalls).
        check_year: Raise when the data has no such model year.

    Raises:
        InvalidInput: a blank make or model, or an impossible year.
        SpecNotFound: unknown make or model (with suggestions), or a year outside the data.
    """
    make = _clean_name(make, "make")
    model = _clean_name(model, "model")
    if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"{year} is not a model year.")
    vocabulary = await deps.vocabulary.get(deps.sessions, dataset)
    make_key = vocabulary.resolve_make(make)
    if make_key is None:
        # a model written with its make in front ("Toyota RAV4") or a make the data spells differently
        raise SpecNotFound(
            f"There is no make called '{make}' in the data.",
            reason="unknown_make",
            suggestions=_suggest(make, {k: v for k, v in vocabulary.makes.items()}),
        )
    display = vocabulary.makes[make_key]
    entry, rest = vocabulary.resolve_model(make_key, model)
    if entry is None:
        words = model.split()
        if len(words) > 1 and vocabulary.resolve_make(words[0]) == make_key:
            entry, rest = vocabulary.resolve_model(make_key, " ".join(words[1:]))
    if entry is None:
        options = {e.model_key: e.name for e in vocabulary.models.get(make_key, {}).values()}
        elsewhere = [f"{vocabulary.makes[e.make_key]} {e.name}" for e in vocabulary.entries_for(_key(model))]
        raise SpecNotFound(
            f"The data has no {display} model called '{model}'.",
            reason="unknown_model",
            suggestions=[*(f"{display} {s}" for s in _suggest(model, options)), *elsewhere][:6],
        )
    if check_year:
        if year is None:
            raise InvalidInput("Give the model year.")
        if year not in entry.years:
            raise SpecNotFound(
                f"The data has the {display} {entry.name} for model years {year_ranges(entry.years)}, "
                f"not {year}.",
                reason="year_out_of_range",
                years=entry.years,
            )
    return ResolvedVehicle(year or 0, make_key, display, entry, rest.strip() or None)


# ---------------------------------------------------------------- get_specs


async def get_specs(
    year: int, make: str, model: str, configuration: str | None = None, *, deps: KnowledgeDeps
) -> SpecResult:
    """Return every EPA configuration of a vehicle, with facts, rated horsepower and sources.

    Args:
        year: The model year.
        make: The make as written (`Toyota`, `chevy`, `VW`).
        model: The model as written (`RAV4`, `CR-V AWD`); words after the model name
            narrow the configuration like `configuration` does.
        configuration: Optional narrowing: fuel (`hybrid`, `electric`), drive (`AWD`),
            displacement (`2.5L`), `manual`, or words of the EPA model name (`4Dr`, `Si`).
        deps: The knowledge dependencies.

    Raises:
        InvalidInput: a blank make or model, or an impossible year.
        SpecNotFound: unknown make or model, a year outside the data, or no
            configuration matching `configuration` (the message lists those there are).
    """
    vehicle = await resolve_vehicle(year, make, model, deps=deps)
    narrowing = " ".join(p for p in (vehicle.configuration, _clip(configuration)) if p) or None
    async with deps.sessions() as session:
        rows = await repo.find(
            session,
            DocumentFilter(
                kind="spec",
                datasets=(EPA,),
                year=vehicle.year,
                make_key=vehicle.make_key,
                model_key=vehicle.model.model_key,
            ),
        )
        test_cars = await repo.find_models_like(
            session, TEST_CARS, vehicle.make_key, vehicle.model.model_key, vehicle.year
        )
    records = sorted((SpecRecord.from_row(r) for r in rows), key=configuration_order)
    if not records:
        raise SpecNotFound(
            f"The data has no {vehicle.label} configurations.",
            reason="year_out_of_range",
            years=vehicle.model.years,
        )
    total = len(records)
    if narrowing:
        narrowed = narrow(records, narrowing)
        if not narrowed:
            listed = "; ".join(r.title for r in records[:8])
            raise SpecNotFound(
                f"No {vehicle.label} configuration matches '{narrowing}'. The data has: {listed}.",
                reason="no_configuration",
                suggestions=[r.title for r in records[:8]],
            )
        records = narrowed
    records = [r.model_copy(update={"horsepower": match_horsepower(r, test_cars)}) for r in records]
    sources = [r.source() for r in records]
    sources += [r.horsepower.source for r in records if r.horsepower and r.horsepower.source]
    return SpecResult(
        vehicle=vehicle.label,
        year=vehicle.year,
        make=vehicle.make,
        model=vehicle.model.name,
        make_key=vehicle.make_key,
        model_key=vehicle.model.model_key,
        configuration=narrowing,
        configurations=records,
        total_configurations=total,
        note=_configurations_note(vehicle.label, len(records), total, narrowing),
        sources=_unique_sources(sources),
    )


async def get_specs_for_vehicle(vehicle: DecodedVehicle, *, deps: KnowledgeDeps) -> SpecResult:
    """Return the EPA configurations of a decoded VIN's vehicle, narrowed by what the decode says.

    The decode's drive, displacement and electrification narrow the list when they
    match a configuration; when they match none (vPIC and EPA describe some vehicles
    differently), every configuration of the year, make and model is returned.

    Raises:
        InvalidInput: the decode has no model year, make or model.
        SpecNotFound: the data does not have the vehicle.
    """
    if not vehicle.make or not vehicle.model or not vehicle.model_year:
        raise InvalidInput(
            "The VIN did not decode to a model year, make and model, so specs cannot be looked up."
        )
    hint = decoded_configuration(vehicle)
    if hint:
        try:
            return await get_specs(vehicle.model_year, vehicle.make, vehicle.model, hint, deps=deps)
        except SpecNotFound as e:
            if e.reason != "no_configuration":
                raise
    return await get_specs(vehicle.model_year, vehicle.make, vehicle.model, deps=deps)


def decoded_configuration(vehicle: DecodedVehicle) -> str | None:
    """Return the configuration words a decode implies: 'hybrid AWD 2.5L', or None."""
    parts: list[str] = []
    electrification = fold(vehicle.engine.electrification or "")
    fuel = fold(f"{vehicle.engine.fuel_type_primary or ''} {vehicle.engine.fuel_type_secondary or ''}")
    if "plug" in electrification or "phev" in electrification:
        parts.append("plug-in hybrid")
    elif "hybrid" in electrification or "hev" in electrification:
        parts.append("hybrid")
    elif "bev" in electrification or fuel.strip() == "electric":
        parts.append("electric")
    drive = fold(vehicle.drive_type or "")
    if re.search(r"awd|all[- ]wheel|4wd|4x4|4-wheel", drive):
        parts.append("AWD")
    elif re.search(r"fwd|front", drive):
        parts.append("FWD")
    elif re.search(r"rwd|rear", drive):
        parts.append("RWD")
    if vehicle.engine.displacement_l and "electric" not in parts:
        parts.append(f"{vehicle.engine.displacement_l:.1f}L")
    return " ".join(parts) or None


def configuration_order(record: SpecRecord) -> tuple[Any, ...]:
    """Sort key for configurations: conventional first, then hybrid, plug-in, electric; 2WD before AWD."""
    atv = str(record.facts.get("atv_type") or "")
    powertrain = {"": 0, "Diesel": 1, "FFV": 1, "Hybrid": 2, "Plug-in Hybrid": 3, "EV": 4}.get(atv, 5)
    drive = fold(record.drive or "")
    drive_rank = 0 if ("front" in drive or "2-wheel" in drive or "rear" in drive) else 1
    manual = 1 if "manual" in fold(record.transmission or "") else 0
    return (powertrain, drive_rank, record.displacement_l or 0.0, manual, record.model, record.record_id)


def narrow(records: Sequence[SpecRecord], configuration: str) -> list[SpecRecord]:
    """Return the records that match every word of a configuration narrowing.

    Fuel, drive, displacement and `manual`/`automatic` words are matched against the
    typed columns; other words must occur in the record's model name, configuration,
    engine or transmission (`4Dr`, `Si`, `Long Range`).
    """
    structured = configuration_words(configuration) or ""
    folded = fold(configuration)
    leftovers = [
        w
        for w in re.findall(r"[a-z0-9.]+", folded)
        if w not in _CONFIGURATION_WORDS and not re.fullmatch(r"\d{1,2}\.\d(l)?", w)
    ]
    out = []
    for record in records:
        if structured and not _matches_structured(record, structured):
            continue
        haystack = fold(
            " ".join(
                str(p)
                for p in (
                    record.model,
                    record.configuration,
                    record.engine,
                    record.transmission,
                    record.drive,
                    record.fuel,
                    record.vehicle_class,
                    record.facts.get("atv_type"),
                )
                if p
            )
        )
        if all(re.search(rf"(?<![a-z0-9]){re.escape(w)}", haystack) for w in leftovers):
            out.append(record)
    return out


_CONFIGURATION_WORDS: Final = words(
    """
    hybrid hybride hibrido plug plug-in in phev electric ev bev diesel e85 flex ffv cng awd 4wd 4x4
    fwd rwd 2wd all front rear wheel drive manual automatic auto l liter litre the with and a
    """
)


def _matches_structured(record: SpecRecord, structured: str) -> bool:
    atv = str(record.facts.get("atv_type") or "")
    drive = fold(record.drive or "")
    parts = structured.split()
    checks = {
        "hybrid": atv == "Hybrid",
        "plug-in": atv == "Plug-in Hybrid",
        "electric": atv == "EV",
        "diesel": atv == "Diesel" or "diesel" in fold(record.fuel or ""),
        "flex-fuel": atv == "FFV",
        "cng": "cng" in fold(atv) or "natural gas" in fold(record.fuel or ""),
        "hydrogen": atv == "FCV",
        "AWD": "all" in drive or "4-wheel" in drive or "4wd" in drive or "awd" in drive,
        "FWD": "front" in drive,
        "RWD": "rear" in drive,
        "manual": "manual" in fold(record.transmission or ""),
    }
    i = 0
    while i < len(parts):
        word = parts[i]
        if word == "plug-in" and i + 1 < len(parts) and parts[i + 1] == "hybrid":
            word, i = "plug-in", i + 1
        if word.endswith("L") and word[:-1].replace(".", "", 1).isdigit():
            if record.displacement_l is None or abs(record.displacement_l - float(word[:-1])) > 0.06:
                return False
        elif not checks.get(word, True):
            return False
        i += 1
    return True


def _configurations_note(label: str, shown: int, total: int, narrowing: str | None) -> str:
    if shown == 1 and total == 1:
        return f"The data has one {label} configuration."
    if narrowing and shown < total:
        if shown == 1:
            return f"One of the {total} {label} configurations matches '{narrowing}'."
        return (
            f"{shown} of the {total} {label} configurations match '{narrowing}'; "
            "list them all or narrow further."
        )
    if shown == 1:
        return f"One {label} configuration matches."
    return (
        f"The data has {shown} {label} configurations with different figures; list each of them "
        "(or ask which one is meant) rather than picking one."
    )


# ---------------------------------------------------------------- horsepower


def match_horsepower(record: SpecRecord, test_cars: Sequence[DocumentRow]) -> HorsepowerMatch | None:
    """Find the rated horsepower of an EPA configuration among the EPA test cars of its year, make and model.

    A test car fits when its displacement matches (within 0.06 L), its powertrain
    (hybrid, plug-in, electric or not) agrees, and its model name shares the EPA
    model's first word; among those, the ones that share more of the model's words,
    its transmission kind and its drive rank first.
    """
    if record.dataset != EPA:
        return None
    if record.year is not None and not 2015 <= record.year <= 2024:
        return HorsepowerMatch(
            status="not_covered", basis="The EPA test-car list covers model years 2015-2024."
        )
    epa_words = _model_words(record.model)
    powertrain = _epa_powertrain(record)
    scored: list[tuple[int, DocumentRow, int]] = []
    for car in test_cars:
        hp = _int(car.facts.get("horsepower"))
        if hp is None or hp <= 0:
            continue
        if record.displacement_l is not None:
            if car.displacement_l is None or abs(car.displacement_l - record.displacement_l) > 0.06:
                continue
        elif car.displacement_l:
            continue
        if _test_car_powertrain(car) != powertrain:
            continue
        car_words = _model_words(car.model)
        if not car_words or not epa_words or car_words[0] != epa_words[0]:
            continue
        score = 2 * len(set(car_words) & set(epa_words)) - len(set(car_words) - set(epa_words) - _BODY_WORDS)
        if _is_manual(car.transmission) == _is_manual(record.transmission):
            score += 1
        if _awd(car.model) == _awd(record.model):
            score += 1
        scored.append((score, car, hp))
    if not scored:
        return HorsepowerMatch(
            status="not_matched",
            basis="No test car of this year, make and model has the same displacement and powertrain.",
        )
    best = max(s for s, _, _ in scored)
    top = [(car, hp) for s, car, hp in scored if s == best]
    counts = Counter(hp for _, hp in top)
    hp, _ = counts.most_common(1)[0]
    car = next(c for c, h in top if h == hp)
    disp = f"{record.displacement_l:g} L" if record.displacement_l is not None else "electric"
    basis = f"test car '{car.model}' ({car.year}, {disp}"
    basis += (
        ", same transmission kind)"
        if _is_manual(car.transmission) == _is_manual(record.transmission)
        else ")"
    )
    source = SpecRecord.from_row(car).source()
    if len(counts) == 1:
        return HorsepowerMatch(
            horsepower=hp,
            status="matched",
            basis=f"Matched {basis}.",
            values=[hp],
            record_id=source["record_id"],
            source=source,
        )
    values = sorted(counts)
    return HorsepowerMatch(
        horsepower=hp,
        status="ambiguous",
        basis=(
            f"Several test cars fit, rated {', '.join(map(str, values))} hp; the most common is from {basis}."
        ),
        values=values,
        record_id=source["record_id"],
        source=source,
    )


_BODY_WORDS: Final = words(
    "2dr 4dr 5dr 2door 4door 5door sedan coupe hatchback hatch wagon convertible awd fwd rwd 4wd 2wd 4x4 "
    "all wheel drive pickup cab"
)


def _model_words(model: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", fold(model)) if not re.fullmatch(r"\d\d?l", w)]


def _epa_powertrain(record: SpecRecord) -> str:
    atv = str(record.facts.get("atv_type") or "")
    if atv in ("Hybrid", "Plug-in Hybrid", "EV"):
        return atv
    return "conventional"


def _test_car_powertrain(car: DocumentRow) -> str:
    words = fold(f"{car.model} {car.fuel or ''} {car.facts.get('atv_type') or ''}")
    if re.search(r"plug|phev|prime", words):
        return "Plug-in Hybrid"
    if "hybrid" in words or re.search(r"\bhev\b", words):
        return "Hybrid"
    if car.displacement_l in (None, 0) or "electric" in words:
        return "EV"
    return "conventional"


def _is_manual(transmission: str | None) -> bool:
    return "manual" in fold(transmission or "") and "automated manual" not in fold(transmission or "")


def _awd(model: str) -> bool:
    return bool(re.search(r"\b(awd|4wd|4x4|all wheel|4matic|xdrive|quattro|4motion)\b", fold(model)))


def _int(value: Any) -> int | None:
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- search_specs


async def search_specs(
    question: str,
    *,
    deps: KnowledgeDeps,
    limit: int = 5,
    year: int | None = None,
    make: str | None = None,
    model: str | None = None,
    fuel: str | None = None,
    vehicle_class: str | None = None,
    drive: str | None = None,
    kind: Literal["spec", "recall"] | None = None,
) -> SearchResult:
    """Rank the documents that answer a free-text question (hybrid full-text + vector search).

    Filters are parsed from the question (year, make, model, fuel, class, drive);
    keyword arguments override them. When the filters match nothing they are relaxed
    one at a time (drive, fuel and class first, then year, model and make), and
    `relaxed` says which. A question comparing vehicles is ranked vehicle by vehicle,
    and the hits take turns between them.

    Args:
        question: The question in English, Spanish, French or German (read up to 2,000 characters).
        deps: The knowledge dependencies.
        limit: How many hits to return (1-20).
        year: Model year filter.
        make: Make filter, as written.
        model: Model filter, as written.
        fuel: `electric`, `plug-in hybrid`, `hybrid`, `diesel`, `flex-fuel`, `cng` or `hydrogen`.
        vehicle_class: `suv`, `pickup`, `car`, `minivan`, `van`, `wagon` or `two-seater`.
        drive: `awd`, `fwd` or `rwd`.
        kind: `spec` or `recall` documents; by default recalls when the question asks about recalls.

    Raises:
        InvalidInput: an empty question or a limit out of range.
        SpecNotFound: `make` is given but the data has no such make (with suggestions).
    """
    if not question or not question.strip():
        raise InvalidInput("Ask a question about a vehicle.")
    if not 1 <= limit <= 20:
        raise InvalidInput("limit must be between 1 and 20.")
    settings = deps.settings
    vocabulary, data_version = await deps.vocabulary.get_versioned(deps.sessions, EPA)
    parsed = parse_question(question, vocabulary)
    flt, filters = _filters(parsed, vocabulary, year, make, model, fuel, vehicle_class, drive, kind)
    embedder = deps.embedder
    if embedder is not None:
        flt = _replace(flt, embedding_model=embedder.model)
    cache_key = _cache_key(parsed.text, filters, limit, embedder.model if embedder else None, data_version)
    if deps.cache is not None and settings.cache_ttl_s > 0:
        cached = await deps.cache.get(cache_key)
        if cached is not None:
            try:
                return SearchResult.model_validate_json(cached)
            except ValueError:
                logger.warning("unreadable search cache entry; searching afresh")

    # The query is embedded in a worker thread while the full-text ranking runs in the database.
    vector_task: asyncio.Task[list[float] | None] | None = None
    if embedder is not None:
        vector_task = asyncio.create_task(
            _query_vector(embedder, _embedding_text(parsed), deps.query_vectors)
        )
    searches = _per_vehicle(parsed, flt) if parsed.comparison and not (make or model) else [flt]
    relaxed: list[str] = []
    ranked: list[_Ranked] = []
    try:
        async with autocommit_session(deps.sessions) as session:
            # one search: the vector ranking, the fusion and the rows come back in one statement
            load = limit if len(searches) == 1 else None
            rank = functools.partial(
                _rank,
                session,
                terms=parsed.terms,
                vector_task=vector_task,
                limit=limit,
                settings=settings,
                load=load,
                counts=deps.filter_counts,
                version=data_version,
            )
            for search in searches:
                chain = _relaxations(search)
                outcome = await rank(search, chain=chain)
                if outcome.loosen is not None:
                    # nothing passes the filters (a year the model does not have, ...): loosen them
                    search, dropped = chain[outcome.loosen]
                    relaxed += [d for d in dropped if d not in relaxed]
                    outcome = await rank(search)
                ranked.append(outcome)
            chosen = _interleave([r.fused for r in ranked], limit)
            loaded = ranked[0].rows if load is not None else None
            rows = loaded if loaded is not None else await repo.documents(session, [i for i, _, _ in chosen])
    finally:
        if vector_task is not None and not vector_task.done():
            vector_task.cancel()
    vector = vector_task.result() if vector_task is not None else None

    hits = [
        SearchHit(
            record=SpecRecord.from_row(rows[doc_id]),
            text_rank=ranked[which].text_rank.get(doc_id),
            vector_rank=ranked[which].vector_rank.get(doc_id),
            score=round(score, 6),
        )
        for doc_id, score, which in chosen
        if doc_id in rows
    ]
    modes = {r.mode for r in ranked}
    mode: Literal["hnsw", "exact", "off"] = (
        "hnsw" if "hnsw" in modes else ("exact" if "exact" in modes else "off")
    )
    result = SearchResult(
        question=parsed.text[:300],
        filters=filters.model_copy(update={f: None for k in relaxed for f in _RELAXED_FIELDS.get(k, (k,))}),
        relaxed=relaxed,
        asked=list(parsed.facts),
        unavailable=unavailable_fields(parsed.unavailable),
        hits=hits,
        record_ids=[h.record.ref for h in hits],
        vector_search=mode,
        searched_vehicles=[_mention_label(v) for v in parsed.vehicles] if len(searches) > 1 else [],
        note=_search_note(parsed, hits, relaxed),
        sources=_unique_sources([h.record.source() for h in hits]),
    )
    # A full-text-only ranking because the embedder failed is not cached: once it recovers,
    # the same question must get the hybrid ranking again.
    degraded = embedder is not None and vector is None
    if deps.cache is not None and settings.cache_ttl_s > 0 and not degraded:
        await deps.cache.set(cache_key, result.model_dump_json(), ttl=timedelta(seconds=settings.cache_ttl_s))
    return result


_RELAXED_FIELDS: Final = {"make": ("make", "make_key", "model", "model_key"), "model": ("model", "model_key")}
TEXT_RANK_CAP: Final = 500  # matches ranked by full text when no make or model narrows the search
EXACT_SCAN_ROWS: Final = 1500  # filtered documents ranked by an exact vector scan rather than HNSW
# Words the ingested texts repeat in nearly every document (see `ingestion/*.py` renderings).
_BOILERPLATE: Final = words(
    """
    fuel cost annual combined city highway mpg mpge co2 cyl gasoline regular premium wheel drive
    spd automatic manual passenger luggage volume cu ft cars car vehicle electric range mi kwh
    rated horsepower hp test weight lb equivalent axle ratio recall component front rear all
    """
)


@dataclass(frozen=True, slots=True)
class _Ranked:
    fused: list[tuple[int, float]]
    text_rank: dict[int, int]
    vector_rank: dict[int, int]
    mode: Literal["hnsw", "exact", "off"]
    loosen: int | None = None  # no document passes the filters: rank again under `chain[loosen]`
    rows: dict[int, DocumentRow] | None = None  # the fused documents, when `_rank` loaded them


async def _query_vector(embedder: QueryEmbedder, text: str, cache: QueryVectorCache) -> list[float] | None:
    """Embed a query (or take it from `cache`); None when the embedder fails."""
    vector = cache.get(embedder.model, text)
    if vector is not None:
        return vector
    try:
        vector = await embedder.embed_query(text)
    except ProviderError as e:
        # a remote embedder that is down costs ranking quality, not the answer
        logger.warning("query embedding failed (%s); ranking by full text only", e.code)
        return None
    cache.put(embedder.model, text, vector)
    return vector


async def _rank(
    session: AsyncSession,
    flt: DocumentFilter,
    terms: Sequence[str],
    vector_task: Awaitable[list[float] | None] | None,
    *,
    limit: int,
    settings: KnowledgeSettings,
    chain: Sequence[tuple[DocumentFilter, list[str]]] = (),
    load: int | None = None,
    counts: FilterCounts | None = None,
    version: str = "",
) -> _Ranked:
    """Rank by full text and by vector under one filter, and fuse the two rankings.

    The full-text ranking runs first, while the query is still being embedded (`vector_task`).
    When it finds nothing and `chain` (`_relaxations(flt)`) is given, one query tells whether
    any document passes `flt`; when none does, the vector ranking is skipped and `loosen`
    names the first looser filter some document passes (the loosest when none does).
    With `load`, the vector ranking, the fusion and the loading of the best `load` rows are
    one statement (`knowledge_repo.fused_documents`), and `fused` holds only those rows.
    """
    depth = max(settings.candidates, limit)
    if flt.model_key is not None:  # a few hundred documents at most: rank them all
        text_ids = await repo.text_ranked(session, terms, flt, limit=depth)
    else:
        # Over a make or the whole corpus, words every document repeats ("mpg", "fuel cost") rank nothing
        # and cost a scan: rank by the distinctive words, all of them first, then any (in one statement).
        distinctive = [t for t in terms if t not in _BOILERPLATE and not (t.isdigit() and len(t) < 4)]
        text_ids = await repo.text_ranked_all_then_any(
            session, distinctive, flt, limit=depth, enough=limit, cap=TEXT_RANK_CAP
        )
    passing: int | None = None  # how many documents pass `flt`, when counted (up to a cap)
    if vector_task is not None and not flt.selective and _has_filters(flt):
        # HNSW filters after the walk (pgvector 0.6): a narrow fuel, class or year filter ("diesel
        # wagon": 100 documents) would leave nothing of it, so the few rows it passes are ranked
        # exactly (through the kind indexes); a broad one ("compact car") walks the index, wider.
        # The count is kept per data version: the same few fuel/class/drive filters recur.
        passing = counts.get(version, flt) if counts is not None else None
        if passing is None:
            passing = await repo.count_upto(session, flt, EXACT_SCAN_ROWS + 1)
            if counts is not None:
                counts.put(version, flt, passing)
    if not text_ids and len(chain) > 1 and not passing:
        # the count, when there is one, already says whether anything passes `flt` itself
        start = 0 if passing is None else 1
        first = await repo.first_match(session, [f for f, _ in chain[start:]])
        if first != 0 or start:
            return _Ranked([], {}, {}, "off", loosen=len(chain) - 1 if first is None else start + first)
    vector_ids: list[int] = []
    mode: Literal["hnsw", "exact", "off"] = "off"
    exact = flt.selective or (passing is not None and passing <= EXACT_SCAN_ROWS)
    vector = await vector_task if vector_task is not None else None
    ef_search = settings.ef_search if not _has_filters(flt) else min(1000, 4 * settings.ef_search)
    if load is not None:
        statement = None
        if vector is not None:
            statement = repo.vector_statement(vector, flt, limit=depth, exact=exact)
            mode = "exact" if exact else "hnsw"
        hits = await repo.fused_documents(
            session,
            text_ids,
            statement,
            k=settings.rrf_k,
            limit=load,
            ef_search=ef_search if mode == "hnsw" else None,
        )
        return _Ranked(
            fused=[(h.row.id, h.score) for h in hits],
            text_rank={h.row.id: h.text_rank for h in hits if h.text_rank is not None},
            vector_rank={h.row.id: h.vector_rank for h in hits if h.vector_rank is not None},
            mode=mode,
            rows={h.row.id: h.row for h in hits},
        )
    if vector is not None:
        vector_ids = await repo.vector_ranked(
            session, vector, flt, limit=depth, exact=exact, ef_search=ef_search
        )
        mode = "exact" if exact else "hnsw"
    return _Ranked(
        fused=rrf([text_ids, vector_ids], k=settings.rrf_k),
        text_rank={doc_id: i + 1 for i, doc_id in enumerate(text_ids)},
        vector_rank={doc_id: i + 1 for i, doc_id in enumerate(vector_ids)},
        mode=mode,
    )


def _per_vehicle(parsed: SpecQuery, flt: DocumentFilter) -> list[DocumentFilter]:
    """One filter per vehicle a comparison names (at most four)."""
    return [
        _replace(flt, year=v.year, make_key=v.make_key, model_key=v.model_key)
        for v in parsed.vehicles[:4]
        if v.make_key or v.model_key
    ] or [flt]


def _interleave(rankings: Sequence[Sequence[tuple[int, float]]], limit: int) -> list[tuple[int, float, int]]:
    """Take the rankings' hits in turn (first of each, then second of each, ...) without repeats."""
    out: list[tuple[int, float, int]] = []
    seen: set[int] = set()
    depth = max((len(r) for r in rankings), default=0)
    for position in range(depth):
        for which, ranking in enumerate(rankings):
            if position < len(ranking) and ranking[position][0] not in seen and len(out) < limit:
                seen.add(ranking[position][0])
                out.append((ranking[position][0], ranking[position][1], which))
    return out


def _mention_label(v: VehicleMention) -> str:
    return " ".join(str(p) for p in (v.year, v.make, v.model) if p)


def rrf(rankings: Sequence[Sequence[int]], *, k: int = 60) -> list[tuple[int, float]]:
    """Fuse rankings by reciprocal rank fusion: score = sum of 1 / (k + rank); best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def unavailable_fields(keys: Sequence[str]) -> list[UnavailableField]:
    """Return the "no dataset has this" entries for the given `UNAVAILABLE` keys."""
    return [
        UnavailableField(
            key=key,
            label=UNAVAILABLE[key],
            message=f"None of our datasets has {UNAVAILABLE[key]}; say so and do not estimate it.",
        )
        for key in keys
        if key in UNAVAILABLE
    ]


def _filters(
    parsed: SpecQuery,
    vocabulary: Vocabulary,
    year: int | None,
    make: str | None,
    model: str | None,
    fuel: str | None,
    vehicle_class: str | None,
    drive: str | None,
    kind: str | None,
) -> tuple[DocumentFilter, SearchFilters]:
    make = _clip(make)
    make_key = vocabulary.resolve_make(make) if make else parsed.make_key
    if make and make_key is None:
        # an explicit make filter is never dropped silently: results from every make would pass
        raise SpecNotFound(
            f"There is no make called '{make}' in the data.",
            reason="unknown_make",
            suggestions=_suggest(make, dict(vocabulary.makes)),
        )
    model_key = parsed.model_key if make_key == parsed.make_key else None
    model_name: str | None = None
    if model and make_key:
        entry, _ = vocabulary.resolve_model(make_key, _clip(model) or "")
        model_key = entry.model_key if entry else model_key
    elif model:
        entries = vocabulary.entries_for(_key(model))
        model_key = entries[0].model_key if entries else model_key
    if make_key and model_key:
        found = vocabulary.model_for(make_key, model_key)
        model_name = found.name if found else None
    if parsed.comparison:
        # several vehicles: rank across them rather than filter on the first
        make_key = make_key if make else None
        model_key = model_key if model else None
    year = year if year is not None else (parsed.year if not parsed.comparison else None)
    chosen_kind = kind or ("recall" if parsed.recalls else "spec")
    flt = DocumentFilter(
        kind=chosen_kind,
        datasets=_datasets(chosen_kind, parsed.facts),
        year=year,
        make_key=make_key,
        model_key=model_key,
        fuel=fuel or parsed.fuel,
        vehicle_class=vehicle_class or parsed.vehicle_class,
        drive=drive or parsed.drive,
    )
    if flt.model_key is not None and flt.make_key is None:
        entries = vocabulary.entries_for(flt.model_key)
        flt = _replace(flt, make_key=entries[0].make_key if entries else None)
    filters = SearchFilters(
        kind=chosen_kind,
        year=flt.year,
        make=vocabulary.makes.get(flt.make_key) if flt.make_key else None,
        model=model_name,
        make_key=flt.make_key,
        model_key=flt.model_key,
        fuel=flt.fuel,
        vehicle_class=flt.vehicle_class,
        drive=flt.drive,
    )
    return flt, filters


def _datasets(kind: str, facts: Sequence[str]) -> tuple[str, ...]:
    """Spec questions read EPA's label data; the test cars only when a test-car fact is asked.

    The test-car list's per-test MPG is a laboratory figure, not the label MPG, so it
    must not outrank EPA's records for fuel-economy questions.
    """
    if kind == "recall":
        return (RECALLS,)
    if any(f in FACTS_BY_KEY and FACTS_BY_KEY[f].dataset == TEST_CARS for f in facts):
        return (EPA, TEST_CARS)
    return (EPA,)


_RELAX_ORDER: Final = ("datasets", "drive", "fuel", "vehicle_class", "year", "model_key", "make_key")


def _relaxations(flt: DocumentFilter) -> list[tuple[DocumentFilter, list[str]]]:
    """The filter, then ever looser ones (one filter dropped at a time), each with what it dropped.

    Search takes the first that some document passes (`knowledge_repo.first_match`), or the
    loosest when none does.
    """
    chain: list[tuple[DocumentFilter, list[str]]] = [(flt, [])]
    relaxed: list[str] = []
    for name in _RELAX_ORDER:
        if name == "datasets":
            if flt.kind == "spec" and flt.datasets == (EPA,):
                flt = _replace(flt, datasets=(EPA, TEST_CARS))
                chain.append((flt, list(relaxed)))
            continue
        if getattr(flt, name) is not None:
            flt = _replace(flt, **{name: None})
            relaxed.append({"make_key": "make", "model_key": "model"}.get(name, name))
            chain.append((flt, list(relaxed)))
    return chain


def _has_filters(flt: DocumentFilter) -> bool:
    return any(v is not None for v in (flt.year, flt.fuel, flt.vehicle_class, flt.drive))


def _replace(flt: DocumentFilter, **changes: Any) -> DocumentFilter:
    values = {name: getattr(flt, name) for name in DocumentFilter.__dataclass_fields__}
    values.update(changes)
    return DocumentFilter(**values)


def _embedding_text(parsed: SpecQuery) -> str:
    """The text to embed: the English rendering when the question was understood, else the question."""
    canonical = parsed.canonical_text()
    if parsed.has_vehicle or parsed.facts:
        return canonical
    return parsed.text[:1000]


def _search_note(parsed: SpecQuery, hits: Sequence[SearchHit], relaxed: Sequence[str]) -> str:
    notes: list[str] = []
    if parsed.clipped:
        notes.append("The question was long; only its first 2,000 characters were read.")
    if not parsed.has_vehicle:
        notes.append(
            "The question names no make or model the data knows; the hits are the closest documents."
        )
    if relaxed:
        notes.append(f"Nothing matched every filter; dropped: {', '.join(relaxed)}.")
    if parsed.unavailable:
        names = ", ".join(UNAVAILABLE[k] for k in parsed.unavailable)
        notes.append(f"No dataset has {names}: the answer must say so, not estimate.")
    if not hits:
        notes.append("No document matched.")
    return " ".join(notes)


def _cache_key(
    question: str, filters: SearchFilters, limit: int, model: str | None, data_version: str
) -> str:
    payload = json.dumps(
        [question, filters.model_dump(), limit, model, data_version], sort_keys=True, ensure_ascii=False
    )
    return f"specsearch:{SEARCH_KEY_VERSION}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


# ---------------------------------------------------------------- small helpers


def year_ranges(years: Sequence[int]) -> str:
    """Write years compactly: [2015, 2016, 2017, 2019] -> '2015-2017, 2019'."""
    ordered = sorted(set(years))
    if not ordered:
        return "none"
    parts: list[str] = []
    start = prev = ordered[0]
    for y in [*ordered[1:], None]:
        if y is not None and y == prev + 1:
            prev = y
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if y is not None:
            start = prev = y
    return ", ".join(parts)


def _known_facts(facts: dict[str, Any]) -> dict[str, FactValue]:
    out: dict[str, FactValue] = {}
    for key, value in (facts or {}).items():
        if value is None or value == "":
            continue
        if key in _ZERO_IS_UNKNOWN and isinstance(value, int | float) and value <= 0:
            continue
        if key in _SCORES and isinstance(value, int | float) and value < 0:
            continue
        if isinstance(value, bool | int | float | str):
            out[key] = value
    return out


def _unique_sources(sources: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for s in sources:
        if s is not None:
            seen.setdefault(str(s["record_id"]), s)
    return list(seen.values())


def _clean_name(value: str | None, what: str) -> str:
    cleaned = " ".join((value or "").split())[:MAX_NAME_CHARS]
    if not cleaned:
        raise InvalidInput(f"Name the vehicle's {what}.")
    return cleaned


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = " ".join(value.split())[:MAX_NAME_CHARS]
    return cleaned or None


def _key(raw: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", fold(raw))


def _suggest(raw: str, options: dict[str, str]) -> list[str]:
    """Return up to five display names close to `raw` (by key and by display name)."""
    wanted = _key(raw)
    by_key = difflib.get_close_matches(wanted, list(options), n=5, cutoff=0.6)
    by_name = difflib.get_close_matches(raw.lower(), [v.lower() for v in options.values()], n=5, cutoff=0.6)
    names = [options[k] for k in by_key]
    lower = {v.lower(): v for v in options.values()}
    names += [lower[n] for n in by_name]
    prefix = [
        v for k, v in options.items() if wanted and (k.startswith(wanted) or wanted.startswith(k)) and k
    ]
    return list(dict.fromkeys([*names, *prefix[:3]]))[:5]


FACT_KEYS: Final = tuple(FACTS_BY_KEY)
