"""Specs, search, comparison and recalls on the real embedded PostgreSQL with real data and embeddings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tools import recalls
from tools.compare import Comparison, VehicleRef, compare_vehicles
from tools.domain.vehicle import DecodedVehicle, DecodeSource, Engine
from tools.errors import InvalidInput, ProviderUnavailable, UnsupportedComparison
from tools.providers.cache import KvCache
from tools.providers.embeddings import LocalMiniLmEmbedder
from tools.providers.kv import RedisKvStore
from tools.recalls import find_recalls, find_recalls_for_vehicle
from tools.settings import KnowledgeSettings
from tools.specs import KnowledgeDeps, SpecNotFound, get_specs, get_specs_for_vehicle, rrf, search_specs
from tools.storage import knowledge_repo as repo
from tools.storage.knowledge_repo import DocumentFilter, vector_statement
from tools.storage.session import autocommit_session, create_engine, session_factory

pytestmark = pytest.mark.integration

RAV4_2019 = ["epa:41122", "epa:41126", "epa:41127", "epa:41307"]


@pytest.fixture(scope="module")
async def knowledge_engine(knowledge_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(knowledge_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLmEmbedder:
    return LocalMiniLmEmbedder()


@pytest.fixture
def deps(knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder) -> KnowledgeDeps:
    return KnowledgeDeps(sessions=session_factory(knowledge_engine), embedder=embedder)


# ---------------------------------------------------------------- get_specs


async def test_all_configurations_are_listed_when_a_2019_rav4_has_several(deps: KnowledgeDeps) -> None:
    result = await get_specs(2019, "Toyota", "RAV4", deps=deps)

    assert [r.ref for r in result.configurations] == RAV4_2019  # FWD, AWD, AWD stop-start, hybrid AWD
    assert result.total_configurations == 4
    assert "4" in result.note
    assert "rather than picking one" in result.note
    fwd, hybrid = result.configurations[0], result.configurations[-1]
    assert fwd.drive == "Front-Wheel Drive"
    assert fwd.facts["combined_mpg"] == 30
    assert hybrid.facts["atv_type"] == "Hybrid"
    assert hybrid.facts["combined_mpg"] == 40
    assert fwd.horsepower is not None
    assert fwd.horsepower.horsepower == 203
    assert hybrid.horsepower is not None
    assert hybrid.horsepower.horsepower == 176
    assert hybrid.horsepower.status == "matched"
    assert {s["record_id"] for s in result.sources} >= set(RAV4_2019)
    assert all(s["provider"] == "knowledge" and s["data_date"] for s in result.sources)
    json.dumps(result.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ("hybrid", ["epa:41307"]),
        ("AWD", ["epa:41126", "epa:41127", "epa:41307"]),
        ("FWD 2.5L", ["epa:41122"]),
        ("Hybrid AWD", ["epa:41307"]),
    ],
)
async def test_configuration_narrows_the_list_when_given(
    deps: KnowledgeDeps, configuration: str, expected: list[str]
) -> None:
    result = await get_specs(2019, "toyota", "rav4", configuration, deps=deps)

    assert [r.ref for r in result.configurations] == expected
    assert result.total_configurations == 4


async def test_model_suffix_words_narrow_like_a_configuration_when_written_in_the_model(
    deps: KnowledgeDeps,
) -> None:
    result = await get_specs(2019, "Toyota", "RAV4 Hybrid AWD", deps=deps)

    assert [r.ref for r in result.configurations] == ["epa:41307"]


async def test_configurations_are_named_when_the_narrowing_matches_none(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await get_specs(2019, "Toyota", "RAV4", "diesel", deps=deps)

    assert caught.value.reason == "no_configuration"
    assert "RAV4 Hybrid AWD" in caught.value.public_message


async def test_suggestions_are_given_when_the_make_does_not_exist(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await get_specs(2019, "Toyoda", "RAV4", deps=deps)

    assert caught.value.reason == "unknown_make"
    assert "Toyota" in caught.value.suggestions
    assert caught.value.to_dict()["error"] == "vehicle_not_found"


async def test_the_years_we_have_are_named_when_the_year_is_outside_the_data(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await get_specs(1975, "Toyota", "RAV4", deps=deps)

    assert caught.value.reason == "year_out_of_range"
    assert 2019 in caught.value.years
    assert "for model years 1996-2025" in caught.value.public_message
    assert "not 1975" in caught.value.public_message


async def test_similar_models_are_suggested_when_the_model_does_not_exist(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await get_specs(2019, "Toyota", "RAV5", deps=deps)

    assert caught.value.reason == "unknown_model"
    assert "Toyota RAV4" in caught.value.suggestions


@pytest.mark.parametrize(
    ("year", "make", "model"), [(2019, "", "RAV4"), (2019, "Toyota", "  "), (20190, "a", "b")]
)
async def test_bad_arguments_are_rejected_clearly(
    deps: KnowledgeDeps, year: int, make: str, model: str
) -> None:
    with pytest.raises(InvalidInput):
        await get_specs(year, make, model, deps=deps)


async def test_a_5kb_model_name_is_an_error_not_a_crash(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await get_specs(2019, "Toyota", "x" * 5000, deps=deps)

    assert caught.value.reason == "unknown_model"
    assert len(caught.value.public_message) < 200


# ---------------------------------------------------------------- search_specs


@pytest.mark.parametrize(
    "question",
    [
        "What's the combined MPG of a 2019 Toyota RAV4?",
        "¿Cuántas millas por galón hace el 2019 Toyota RAV4?",
        "Quelle est la consommation mixte en MPG de la Toyota RAV4 2019 ?",
        "Verbrauch 2019 Toyota RAV4",
    ],
)
async def test_rav4_configurations_rank_first_when_asked_in_any_language(
    deps: KnowledgeDeps, question: str
) -> None:
    result = await search_specs(question, deps=deps)

    assert result.filters.year == 2019
    assert result.filters.model_key == "rav4"
    assert result.record_ids[0] in RAV4_2019
    assert set(RAV4_2019) <= set(result.record_ids)
    assert result.hits[0].text_rank is not None or result.hits[0].vector_rank is not None
    assert result.vector_search == "exact"
    assert result.hits == sorted(result.hits, key=lambda h: -h.score)


@pytest.mark.parametrize(
    "question",
    [
        "compare the 2019 Toyota RAV4 and the 2019 Honda CR-V",
        "2019 RAV4 oder 2019 CR-V: welcher verbraucht weniger?",
    ],
)
async def test_hits_take_turns_between_vehicles_when_a_question_compares_them(
    deps: KnowledgeDeps, question: str
) -> None:
    result = await search_specs(question, deps=deps)

    assert result.searched_vehicles == ["2019 Toyota RAV4", "2019 Honda CR-V"]
    assert [h.record.model_key for h in result.hits[:4]] == ["rav4", "crv", "rav4", "crv"]


async def test_test_cars_rank_first_when_horsepower_is_asked(deps: KnowledgeDeps) -> None:
    result = await search_specs("How much horsepower does the 2019 Toyota RAV4 have?", deps=deps)

    assert result.asked == ["horsepower"]
    assert any(r.startswith("epa-test-cars:") for r in result.record_ids)
    assert all(h.record.model_key.startswith("rav4") for h in result.hits)


async def test_unavailable_fields_are_reported_when_asked(deps: KnowledgeDeps) -> None:
    result = await search_specs("What's the towing capacity and curb weight of a 2019 Ford F-150?", deps=deps)

    assert [u.key for u in result.unavailable] == ["towing_capacity", "curb_weight"]
    assert "towing capacity" in result.note


async def test_recall_documents_are_searched_when_the_question_is_about_recalls(deps: KnowledgeDeps) -> None:
    result = await search_specs("recalls on my 2019 rav4", deps=deps)

    assert result.filters.kind == "recall"
    assert all(r.startswith("nhtsa-recalls:") for r in result.record_ids)


async def test_filters_are_relaxed_when_the_year_is_outside_the_data(deps: KnowledgeDeps) -> None:
    result = await search_specs("mpg of the 1985 Toyota RAV4", deps=deps)

    assert "year" in result.relaxed
    assert result.hits
    assert all(h.record.model_key == "rav4" for h in result.hits)


@pytest.mark.parametrize(
    "question",
    [
        "hello there",
        "x" * 5000,
        "2019 " * 1000 + "RAV4 mpg",
        "Trabant 601 mpg",
        "'; DROP TABLE vehicle_documents; --",
    ],
)
async def test_odd_questions_get_a_result_when_they_name_no_known_vehicle(
    deps: KnowledgeDeps, question: str
) -> None:
    result = await search_specs(question, deps=deps)

    assert len(result.question) <= 300
    assert len(result.hits) <= 5


async def test_search_is_ranked_by_full_text_alone_when_there_is_no_embedder(
    knowledge_engine: AsyncEngine,
) -> None:
    deps = KnowledgeDeps(sessions=session_factory(knowledge_engine), embedder=None)

    result = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)

    assert result.vector_search == "off"
    assert result.record_ids[0] in RAV4_2019
    assert all(h.vector_rank is None for h in result.hits)


async def test_search_falls_back_to_full_text_when_the_embedder_is_down(
    knowledge_engine: AsyncEngine,
) -> None:
    class DownEmbedder:
        model = "text-embedding-3-small"

        async def embed_query(self, text: str) -> list[float]:
            raise ProviderUnavailable("openai-embeddings")

    deps = KnowledgeDeps(sessions=session_factory(knowledge_engine), embedder=DownEmbedder())

    result = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)

    assert result.vector_search == "off"
    assert result.record_ids[0] in RAV4_2019


async def test_a_full_text_fallback_is_not_cached_so_the_embedder_is_used_once_it_recovers(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder, kv: RedisKvStore
) -> None:
    calls: list[str] = []
    down = [True]

    class FlakyEmbedder:
        model = embedder.model

        async def embed_query(self, text: str) -> list[float]:
            calls.append(text)
            if down[0]:
                raise ProviderUnavailable("openai-embeddings")
            return await embedder.embed_query(text)

    deps = KnowledgeDeps(
        sessions=session_factory(knowledge_engine),
        embedder=FlakyEmbedder(),
        cache=KvCache(kv),
        settings=KnowledgeSettings(cache_ttl_s=60),
    )
    degraded = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)
    down[0] = False
    recovered = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)
    cached = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)

    assert degraded.vector_search == "off"
    assert recovered.vector_search != "off"
    assert any(h.vector_rank is not None for h in recovered.hits)
    assert cached == recovered
    assert len(calls) == 2  # the degraded result was not cached; the recovered one was


async def test_an_unknown_make_filter_is_an_error_not_dropped(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as e:
        await search_specs("best mpg suv", deps=deps, make="Toyotta")

    assert e.value.reason == "unknown_make"
    assert "Toyota" in e.value.suggestions


async def test_hnsw_is_used_when_no_make_or_model_narrows_the_search(deps: KnowledgeDeps) -> None:
    result = await search_specs("a fuel efficient compact car", deps=deps)

    assert result.vector_search in ("hnsw", "exact")
    assert result.hits


@pytest.mark.parametrize(
    ("exact", "plan"), [(False, "Index Scan using ix_vehicle_documents_embedding"), (True, "Sort")]
)
async def test_the_hnsw_query_walks_the_index_and_the_exact_one_does_not(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder, exact: bool, plan: str
) -> None:
    vector = await embedder.embed_query("a fuel efficient compact car")
    stmt = vector_statement(
        vector, DocumentFilter(kind="spec", embedding_model=embedder.model), limit=5, exact=exact
    )

    async with knowledge_engine.connect() as conn:
        lines = (await conn.exec_driver_sql("EXPLAIN " + stmt.sql, stmt.params)).scalars().all()

    assert any(plan in line for line in lines)
    assert exact == (not any("ix_vehicle_documents_embedding" in line for line in lines))


async def test_a_filtered_hnsw_query_still_walks_the_index_and_filters_its_candidates(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder
) -> None:
    vector = await embedder.embed_query("a fuel efficient compact car")
    flt = DocumentFilter(kind="spec", datasets=("epa",), vehicle_class="car", embedding_model=embedder.model)
    stmt = vector_statement(vector, flt, limit=5, exact=False)

    async with knowledge_engine.connect() as conn:
        lines = (await conn.exec_driver_sql("EXPLAIN " + stmt.sql, stmt.params)).scalars().all()
        await conn.execute(text("SET hnsw.ef_search = 400"))
        ids = (await conn.exec_driver_sql(stmt.sql, stmt.params)).scalars().all()
        classes = (
            await conn.execute(
                text("SELECT DISTINCT vehicle_class FROM vehicle_documents WHERE id = ANY(:ids)"),
                {"ids": ids},
            )
        ).scalars()

    assert any("Index Scan using ix_vehicle_documents_embedding" in line for line in lines)
    assert len(ids) == 5
    assert all(c.endswith("Cars") for c in classes)


# The labels each kind stood for before migration 0007 turned them into indexed columns
# (fuel: EPA's atvType or the fuel label; class: EPA's VClass; drive: the drive label).
_FUEL_BEFORE = {
    "electric": "facts->>'atv_type' = 'EV' OR fuel ILIKE 'Electricity'",
    "plug-in hybrid": "facts->>'atv_type' = 'Plug-in Hybrid'",
    "hybrid": "facts->>'atv_type' = 'Hybrid'",
    "diesel": "facts->>'atv_type' = 'Diesel' OR fuel ILIKE '%Diesel%'",
    "flex-fuel": "facts->>'atv_type' = 'FFV' OR fuel ILIKE '%E85%'",
    "cng": "facts->>'atv_type' IN ('CNG', 'Bifuel (CNG)') OR fuel ILIKE '%natural gas%' OR fuel ILIKE 'CNG'",
    "hydrogen": "facts->>'atv_type' = 'FCV' OR fuel ILIKE '%Hydrogen%'",
}
_CLASS_BEFORE = {
    "suv": "vehicle_class ILIKE '%Sport Utility%'",
    "pickup": "vehicle_class ILIKE '%Pickup%'",
    "car": "vehicle_class ILIKE '%Cars'",
    "minivan": "vehicle_class ILIKE 'Minivan%'",
    "van": "vehicle_class ILIKE 'Vans%'",
    "wagon": "vehicle_class ILIKE '%Station Wagon%'",
    "two-seater": "vehicle_class ILIKE 'Two Seaters%'",
}
_DRIVE_BEFORE = {
    "awd": "drive ILIKE ANY (ARRAY['%All-Wheel%', '%4-Wheel%', '%All Wheel%', '4WD', 'AWD'])",
    "fwd": "drive ILIKE ANY (ARRAY['Front%', '%Front', 'FWD', '2-Wheel Drive, Front'])",
    "rwd": "drive ILIKE ANY (ARRAY['Rear%', '%Rear', 'RWD', '2-Wheel Drive, Rear'])",
}


@pytest.mark.parametrize(
    ("column", "kind", "before"),
    [("fuel_kind", k, v) for k, v in _FUEL_BEFORE.items()]
    + [("class_kind", k, v) for k, v in _CLASS_BEFORE.items()]
    + [("drive_kind", k, v) for k, v in _DRIVE_BEFORE.items()],
)
async def test_each_kind_column_holds_exactly_the_documents_its_label_patterns_matched(
    knowledge_engine: AsyncEngine, column: str, kind: str, before: str
) -> None:
    differs = f"coalesce({column} = :kind, false) <> coalesce(({before}), false)"
    async with knowledge_engine.connect() as conn:
        differ, matched = (
            await conn.execute(
                text(
                    f"SELECT count(*) FILTER (WHERE {differs}), count(*) FILTER (WHERE {column} = :kind)"  # noqa: S608
                    " FROM vehicle_documents"
                ),
                {"kind": kind},
            )
        ).one()

    assert differ == 0
    assert matched > 0


async def test_a_narrow_filter_ranks_its_few_documents_exactly(deps: KnowledgeDeps) -> None:
    result = await search_specs("diesel wagon", deps=deps)

    assert result.filters.fuel == "diesel"
    assert result.filters.vehicle_class == "wagon"
    assert result.vector_search == "exact"
    assert len(result.hits) == 5
    assert all("Station Wagon" in (h.record.vehicle_class or "") for h in result.hits)
    assert all(h.vector_rank is not None or h.text_rank is not None for h in result.hits)


async def test_first_match_names_the_first_filter_some_document_passes(
    knowledge_engine: AsyncEngine,
) -> None:
    nothing = DocumentFilter(kind="spec", make_key="toyota", model_key="rav4", year=1985)
    rav4 = DocumentFilter(kind="spec", make_key="toyota", model_key="rav4")
    async with session_factory(knowledge_engine)() as session:
        assert await repo.first_match(session, [nothing, rav4, DocumentFilter()]) == 1
        assert await repo.first_match(session, [rav4, nothing]) == 0
        assert await repo.first_match(session, [nothing, nothing]) is None
        assert await repo.first_match(session, []) is None
        assert await repo.count_upto(session, rav4, 10) == 10
        assert await repo.count_upto(session, nothing, 10) == 0


@pytest.mark.parametrize(
    ("terms", "enough"),
    [
        (["toyota", "hybrid"], 5),  # every word matches many rows: no second ranking
        (["rav4", "prius", "hybrid"], 5),  # no row has all three: the any-word ranking alone
        (["rav4", "prius", "hybrid"], 0),  # told the first ranking is enough: nothing added
        (["rav4"], 5),  # one word: all and any are the same ranking
        (["zzzzqqqq", "yyyyxxxx"], 5),  # nothing matches at all
    ],
)
async def test_all_then_any_ranking_equals_the_two_rankings_run_one_after_the_other(
    knowledge_engine: AsyncEngine, terms: list[str], enough: int
) -> None:
    flt = DocumentFilter(kind="spec", datasets=("epa",))
    async with session_factory(knowledge_engine)() as session:
        expected = await repo.text_ranked(session, terms, flt, limit=50, match="all")
        if len(expected) < enough and len(terms) > 1:
            more = await repo.text_ranked(session, terms, flt, limit=50, cap=500)
            expected += [i for i in more if i not in set(expected)]
        got = await repo.text_ranked_all_then_any(session, terms, flt, limit=50, enough=enough, cap=500)

    assert got == expected


async def test_fusion_over_hnsw_sets_ef_search_in_the_same_round_trip(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder
) -> None:
    vector = await embedder.embed_query("a fuel efficient compact car")
    flt = DocumentFilter(kind="spec", datasets=("epa",), vehicle_class="car", embedding_model=embedder.model)
    async with session_factory(knowledge_engine)() as session, session.begin():
        vector_ids = await repo.vector_ranked(session, vector, flt, limit=50, exact=False, ef_search=400)
        statement = vector_statement(vector, flt, limit=50, exact=False)
        hits = await repo.fused_documents(session, [], statement, k=60, limit=8, ef_search=400)
        setting = (await session.execute(text("SELECT current_setting('hnsw.ef_search')"))).scalar_one()

    assert setting == "400"
    assert [h.row.id for h in hits] == vector_ids[:8]
    assert [h.vector_rank for h in hits] == list(range(1, 9))


async def test_search_statements_autocommit_and_the_connection_goes_back_to_the_pool_transactional(
    knowledge_url: str,
) -> None:
    engine = create_engine(knowledge_url, pool_size=1)
    try:
        sessions = session_factory(engine)
        async with autocommit_session(sessions) as session:
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            assert raw.autocommit
            assert await repo.count_upto(session, DocumentFilter(kind="spec"), 3) == 3
            assert raw.info.transaction_status == 0  # IDLE: nothing left open between statements

        async def fail_midway() -> None:
            async with autocommit_session(sessions) as failing:
                await repo.count_upto(failing, DocumentFilter(kind="spec"), 3)
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await fail_midway()
        async with engine.connect() as conn:
            again = (await conn.get_raw_connection()).driver_connection
            assert again is raw
            assert not again.autocommit
    finally:
        await engine.dispose()


async def test_a_filter_is_counted_once_per_data_version(deps: KnowledgeDeps) -> None:
    first = await search_specs("diesel wagon", deps=deps)
    version = await deps.vocabulary.get_versioned(deps.sessions, "epa")
    flt = DocumentFilter(kind="spec", datasets=("epa",), fuel="diesel", vehicle_class="wagon")
    counted = deps.filter_counts.get(version[1], flt)
    again = await search_specs("diesel wagon", deps=deps)

    assert counted is not None
    assert 0 < counted <= 1500
    assert deps.filter_counts.get("another version", flt) is None
    assert again == first


@pytest.mark.parametrize("with_vector", [True, False])
async def test_fusion_in_the_database_equals_rrf_of_the_two_rankings(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder, with_vector: bool
) -> None:
    vector = await embedder.embed_query("Toyota RAV4 hybrid combined MPG")
    flt = DocumentFilter(kind="spec", datasets=("epa",), make_key="toyota", embedding_model=embedder.model)
    async with session_factory(knowledge_engine)() as session:
        text_ids = await repo.text_ranked(session, ["rav4", "hybrid"], flt, limit=50)
        vector_ids = (
            await repo.vector_ranked(session, vector, flt, limit=50, exact=True) if with_vector else []
        )
        statement = vector_statement(vector, flt, limit=50, exact=True) if with_vector else None
        hits = await repo.fused_documents(session, text_ids, statement, k=60, limit=8)
        expected = rrf([text_ids, vector_ids], k=60)[:8]
        rows = await repo.documents(session, [i for i, _ in expected])

    assert len(expected) == 8
    assert [(h.row.id, h.score) for h in hits] == expected
    assert [h.row for h in hits] == [rows[i] for i, _ in expected]
    for h in hits:
        assert h.text_rank == (text_ids.index(h.row.id) + 1 if h.row.id in text_ids else None)
        assert h.vector_rank == (vector_ids.index(h.row.id) + 1 if h.row.id in vector_ids else None)


async def test_a_question_asked_again_reuses_its_query_vector(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder
) -> None:
    calls: list[str] = []

    class CountingEmbedder:
        model = embedder.model

        async def embed_query(self, text: str) -> list[float]:
            calls.append(text)
            return await embedder.embed_query(text)

    deps = KnowledgeDeps(sessions=session_factory(knowledge_engine), embedder=CountingEmbedder())
    first = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)
    again = await search_specs("2019 Toyota RAV4 combined mpg", deps=deps)

    assert len(calls) == 1
    assert again == first
    assert deps.query_vectors.hits == 1


async def test_repeat_search_is_served_from_cache_when_a_cache_is_configured(
    knowledge_engine: AsyncEngine, embedder: LocalMiniLmEmbedder, kv: RedisKvStore
) -> None:
    calls: list[str] = []

    class CountingEmbedder:
        model = embedder.model

        async def embed_query(self, text: str) -> list[float]:
            calls.append(text)
            return await embedder.embed_query(text)

    deps = KnowledgeDeps(
        sessions=session_factory(knowledge_engine),
        embedder=CountingEmbedder(),
        cache=KvCache(kv),
        settings=KnowledgeSettings(cache_ttl_s=60),
    )
    first = await search_specs("2019 Toyota RAV4 mpg", deps=deps)
    second = await search_specs("2019 Toyota RAV4 mpg", deps=deps)

    assert first == second
    assert len(calls) == 1


# ---------------------------------------------------------------- compare_vehicles


async def test_civic_and_corolla_are_compared_with_a_chart(deps: KnowledgeDeps) -> None:
    refs = [
        VehicleRef(year=2020, make="Honda", model="Civic"),
        VehicleRef(year=2020, make="Toyota", model="Corolla"),
    ]

    result = await compare_vehicles(refs, deps=deps)

    assert [v.vehicle for v in result.vehicles] == ["2020 Honda Civic", "2020 Toyota Corolla"]
    assert all(
        v.configurations > 1 and v.others and "base configuration" in v.choice for v in result.vehicles
    )
    rows = {r.key: r for r in result.rows}
    assert {"combined_mpg", "city_mpg", "highway_mpg", "annual_fuel_cost_usd", "co2_gpm"} <= rows.keys()
    assert all(v is not None for v in rows["combined_mpg"].values)
    assert rows["combined_mpg"].better == "higher"
    assert {d.key for d in result.differences} <= {
        "combined_mpg", "city_mpg", "highway_mpg", "range_mi", "horsepower",
        "annual_fuel_cost_usd", "co2_gpm", "passenger_volume_cuft", "luggage_volume_cuft",
    }  # fmt: skip
    assert result.chart_png is not None
    assert result.chart_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(result.chart_png) > 5_000
    assert {s["record_id"] for s in result.sources} >= {v.record.ref for v in result.vehicles}
    # JSON round trip (the chart as base64), and the compact form for the model
    assert Comparison.model_validate_json(result.model_dump_json()) == result
    json.dumps(result.model_dump(mode="json", exclude={"chart_png"}))


async def test_a_configuration_is_compared_when_one_is_asked_for(deps: KnowledgeDeps) -> None:
    refs = [
        VehicleRef(year=2019, make="Toyota", model="RAV4", configuration="hybrid"),
        VehicleRef(year=2019, make="Honda", model="CR-V"),
    ]

    result = await compare_vehicles(refs, deps=deps, chart=False)

    assert result.vehicles[0].record.ref == "epa:41307"
    assert result.chart_png is None
    mpg = next(d for d in result.differences if d.key == "combined_mpg")
    assert mpg.leader_index == 0
    assert mpg.leader == "2019 Toyota RAV4"


@pytest.mark.parametrize("count", [0, 1, 5])
async def test_comparisons_of_the_wrong_size_are_refused(deps: KnowledgeDeps, count: int) -> None:
    refs = [VehicleRef(year=2020, make="Honda", model="Civic")] * count

    with pytest.raises(UnsupportedComparison):
        await compare_vehicles(refs, deps=deps)


async def test_the_vehicle_not_found_is_named_when_a_comparison_has_one(deps: KnowledgeDeps) -> None:
    refs = [
        VehicleRef(year=2020, make="Honda", model="Civic"),
        VehicleRef(year=2020, make="Hnoda", model="Fit"),
    ]

    with pytest.raises(SpecNotFound) as caught:
        await compare_vehicles(refs, deps=deps)

    assert caught.value.public_message.startswith("Vehicle 2")
    assert "Honda" in caught.value.suggestions


# ---------------------------------------------------------------- find_recalls


async def test_recalls_of_a_2019_rav4_include_the_suspension_arm_campaign(deps: KnowledgeDeps) -> None:
    result = await find_recalls(2019, "Toyota", "RAV4", deps=deps)

    campaigns = {c.campaign: c for c in result.campaigns}
    assert {"20V064000", "20V286000", "20V373000", "20V682000"} <= campaigns.keys()
    arm = campaigns["20V286000"]
    assert arm.nhtsa_id == "20V286"
    assert arm.campaign_year == 2020
    assert arm.component == "SUSPENSION"
    assert arm.component_inferred
    assert arm.models == ["RAV4", "RAV4 HYBRID"]
    assert "suspension" in arm.summary.lower()
    assert arm.document
    assert arm.document.startswith("RC")
    assert "2020" in result.coverage
    assert "February 2026" in result.coverage
    assert {s["record_id"] for s in result.sources} >= set(arm.record_ids)
    json.dumps(result.model_dump(mode="json"))


async def test_no_recalls_is_said_with_the_window_when_a_known_vehicle_has_none(deps: KnowledgeDeps) -> None:
    result = await find_recalls(2024, "Tesla", "Model 3", deps=deps)

    assert result.count == 0 or all(c.campaign.endswith("000") for c in result.campaigns)
    assert "February 2026" in result.coverage


async def test_recalls_are_listed_newest_first_within_a_filing_year(deps: KnowledgeDeps) -> None:
    result = await find_recalls(None, "Toyota", "RAV4", deps=deps)

    order = [(c.campaign_year or 0, c.campaign) for c in result.campaigns]
    assert len(order) > 1
    assert order == sorted(order, reverse=True)
    assert not result.truncated
    assert result.count == len(result.campaigns)


async def test_a_cut_recall_list_keeps_whole_newest_campaigns_and_counts_them_all(
    deps: KnowledgeDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = await find_recalls(None, "Toyota", "RAV4", deps=deps)
    monkeypatch.setattr(recalls, "MAX_RECALL_DOCUMENTS", 30)

    cut = await find_recalls(None, "Toyota", "RAV4", deps=deps)

    assert cut.truncated
    assert cut.count == full.count
    assert 0 < len(cut.campaigns) < full.count
    assert str(len(cut.campaigns)) in cut.note
    whole = {c.nhtsa_id: c for c in full.campaigns}
    assert all(c.record_ids == whole[c.nhtsa_id].record_ids for c in cut.campaigns)
    listed = {c.nhtsa_id for c in cut.campaigns}
    assert min(listed) > max(set(whole) - listed)


async def test_recalls_for_an_unknown_make_are_an_error_with_suggestions(deps: KnowledgeDeps) -> None:
    with pytest.raises(SpecNotFound) as caught:
        await find_recalls(2019, "Toyotaa", "RAV4", deps=deps)

    assert "Toyota" in caught.value.suggestions


# ---------------------------------------------------------------- a decoded VIN flows into all of them


def decoded_rav4(
    drive: str | None = "AWD/All-Wheel Drive", displacement: float | None = 2.5
) -> DecodedVehicle:
    return DecodedVehicle(
        vin="2T3W1RFV0KW000000",
        valid=True,
        check_digit_valid=True,
        make="TOYOTA",
        model="RAV4",
        model_year=2019,
        drive_type=drive,
        engine=Engine(displacement_l=displacement, cylinders=4),
        source=DecodeSource(provider="offline"),
    )


async def test_specs_are_narrowed_by_the_decode_when_a_vin_is_given(deps: KnowledgeDeps) -> None:
    result = await get_specs_for_vehicle(decoded_rav4(), deps=deps)

    assert [r.ref for r in result.configurations] == ["epa:41126", "epa:41127", "epa:41307"]
    assert result.configuration == "AWD 2.5L"


async def test_every_configuration_is_listed_when_the_decode_matches_none(deps: KnowledgeDeps) -> None:
    result = await get_specs_for_vehicle(decoded_rav4(displacement=3.5), deps=deps)

    assert [r.ref for r in result.configurations] == RAV4_2019


async def test_recalls_and_comparison_take_a_decoded_vehicle(deps: KnowledgeDeps) -> None:
    recalls = await find_recalls_for_vehicle(decoded_rav4(), deps=deps)
    comparison = await compare_vehicles(
        [VehicleRef.from_decoded(decoded_rav4()), VehicleRef(year=2019, make="Honda", model="CR-V")],
        deps=deps,
        chart=False,
    )

    assert "20V286000" in {c.campaign for c in recalls.campaigns}
    assert comparison.vehicles[0].record.ref == "epa:41126"
    assert comparison.vehicles[0].configurations == 3
