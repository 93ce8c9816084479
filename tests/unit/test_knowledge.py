"""The pure parts of the spec, comparison and recall capabilities."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest
from pgvector.utils import Vector as PgVector

import tools.recalls as recalls
from tools.compare import choose_configuration, differences_that_matter, draw_chart, table_rows
from tools.domain.recall_components import UNKNOWN, infer_component
from tools.domain.spec_query import ModelEntry
from tools.recalls import find_recalls, full_campaign_number, group_campaigns
from tools.specs import (
    FilterCounts,
    KnowledgeDeps,
    QueryVectorCache,
    ResolvedVehicle,
    SpecNotFound,
    SpecRecord,
    _relaxations,
    match_horsepower,
    narrow,
    rrf,
    unavailable_fields,
    year_ranges,
)
from tools.storage.knowledge_repo import DocumentFilter, DocumentRow, vector_statement


def record(rid: str, model: str, **kw: Any) -> SpecRecord:
    base: dict[str, Any] = {
        "id": int(rid),
        "dataset": "epa",
        "record_id": rid,
        "kind": "spec",
        "year": 2019,
        "make": "Toyota",
        "model": model,
        "base_model": "RAV4",
        "make_key": "toyota",
        "model_key": "rav4",
        "displacement_l": 2.5,
        "transmission": "Automatic (S8)",
        "drive": "Front-Wheel Drive",
        "fuel": "Regular",
        "data_date": date(2025, 10, 28),
    }
    base.update(kw)
    return SpecRecord(**base)


RAV4 = [
    record("41307", "RAV4 Hybrid AWD", drive="All-Wheel Drive", transmission="Automatic (AV-S6)",
           facts={"atv_type": "Hybrid", "combined_mpg": 40}),
    record("41126", "RAV4 AWD", drive="All-Wheel Drive", facts={"combined_mpg": 28}),
    record("41122", "RAV4", facts={"combined_mpg": 30}),
]  # fmt: skip


def test_relaxations_drop_one_filter_at_a_time_in_order() -> None:
    flt = DocumentFilter(
        kind="spec", datasets=("epa",), year=1985, make_key="toyota", model_key="rav4", fuel="hybrid"
    )

    chain = _relaxations(flt)

    assert chain[0] == (flt, [])
    assert [dropped for _, dropped in chain] == [
        [],
        [],  # the test-car list joins first; nothing is dropped yet
        ["fuel"],
        ["fuel", "year"],
        ["fuel", "year", "model"],
        ["fuel", "year", "model", "make"],
    ]
    assert chain[1][0].datasets == ("epa", "epa-test-cars")
    loosest = chain[-1][0]
    assert (loosest.year, loosest.make_key, loosest.model_key, loosest.fuel) == (None, None, None, None)
    assert loosest.kind == "spec"


def test_query_vectors_are_kept_by_model_and_text_and_the_least_recent_goes_first() -> None:
    cache = QueryVectorCache(max_entries=2)
    cache.put("m", "a", [0.5, 0.25])
    cache.put("m", "b", [1.0, 0.0])
    assert cache.get("m", "a") == [0.5, 0.25]  # "a" is now the most recent
    cache.put("m", "c", [0.0, 1.0])

    assert cache.get("m", "b") is None
    assert cache.get("other-model", "a") is None
    assert cache.get("m", "a") == [0.5, 0.25]
    assert cache.get("m", "c") == [0.0, 1.0]
    assert (cache.hits, cache.misses) == (3, 2)


def test_filter_counts_are_kept_per_data_version_whatever_the_embedding_model() -> None:
    counts = FilterCounts(max_entries=2)
    wagon = DocumentFilter(kind="spec", fuel="diesel", vehicle_class="wagon", embedding_model="m1")
    suv = DocumentFilter(kind="spec", vehicle_class="suv")
    counts.put("v1", wagon, 100)
    counts.put("v1", suv, 1501)

    assert counts.get("v1", DocumentFilter(kind="spec", fuel="diesel", vehicle_class="wagon")) == 100
    assert counts.get("v1", suv) == 1501
    assert counts.get("v2", suv) is None  # the documents changed: counted again
    counts.put("v2", suv, 1400)
    assert counts.get("v1", suv) is None
    assert counts.get("v2", wagon) is None
    assert counts.get("v2", suv) == 1400
    counts.put("v2", wagon, 90)
    counts.put("v2", DocumentFilter(kind="spec", drive="awd"), 1501)  # two at most: the oldest goes
    assert counts.get("v2", suv) is None
    assert (counts.hits, counts.misses) == (3, 4)


def test_a_query_vector_is_sent_as_the_float32_numbers_pgvector_would_send() -> None:
    rng = np.random.default_rng(7)
    for vector in [rng.normal(0, 0.05, 384).tolist(), [0.0, 1e-45, -3.4e38, 1 / 3] * 96]:
        sent = vector_statement(vector, DocumentFilter(), limit=5, exact=True).params["vq"]
        assert np.array_equal(PgVector.from_text(sent).to_numpy(), PgVector(vector).to_numpy())


def test_rrf_adds_reciprocal_ranks_and_orders_best_first() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)

    assert [doc for doc, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_year_ranges_are_compact() -> None:
    assert year_ranges([2019, 2015, 2016, 2017, 2021]) == "2015-2017, 2019, 2021"
    assert year_ranges([]) == "none"


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ("hybrid", ["41307"]),
        ("AWD", ["41307", "41126"]),
        ("FWD", ["41122"]),
        ("2.5L", ["41307", "41126", "41122"]),
        ("2.0L", []),
        ("hybrid FWD", []),
        ("manual", []),
        ("AWD S8", ["41126"]),
    ],
)
def test_narrowing_matches_structured_words_and_name_words(configuration: str, expected: list[str]) -> None:
    assert [r.record_id for r in narrow(RAV4, configuration)] == expected


def test_base_configuration_is_conventional_two_wheel_drive_when_there_are_several() -> None:
    chosen, reason = choose_configuration(RAV4)

    assert chosen.record_id == "41122"
    assert "base configuration of 3" in reason


def car(
    test_number: str, model: str, hp: int, displacement: float | None, transmission: str = "Automatic"
) -> DocumentRow:
    return DocumentRow(
        id=len(test_number), dataset="epa-test-cars", record_id=test_number, kind="spec", year=2019,
        make="Toyota", make_key="toyota", model=model, base_model="RAV4", model_key="rav4",
        configuration=None, engine=None, cylinders=4, displacement_l=displacement,
        transmission=transmission, drive=None, fuel=None, vehicle_class=None,
        facts={"horsepower": hp}, data_date=date(2020, 10, 2),
    )  # fmt: skip


TEST_CARS = [
    car("T1", "RAV4", 203, 2.487),
    car("T2", "RAV4 AWD", 203, 2.487),
    car("T3", "RAV4 HYBRID AWD", 176, 2.487),
]


def test_horsepower_matches_on_displacement_and_powertrain() -> None:
    hybrid = match_horsepower(RAV4[0], TEST_CARS)
    gas = match_horsepower(RAV4[2], TEST_CARS)

    assert hybrid is not None
    assert (hybrid.horsepower, hybrid.status, hybrid.record_id) == (176, "matched", "epa-test-cars:T3")
    assert gas is not None
    assert (gas.horsepower, gas.status) == (203, "matched")
    assert gas.source is not None
    assert gas.source["dataset"].startswith("EPA Test Car List")


def test_horsepower_is_ambiguous_when_equally_good_test_cars_disagree() -> None:
    cars = [car("A", "RAV4", 203, 2.5), car("B", "RAV4", 190, 2.5)]

    match = match_horsepower(RAV4[2], cars)

    assert match is not None
    assert match.status == "ambiguous"
    assert match.values == [190, 203]


def test_horsepower_is_not_matched_when_no_test_car_fits() -> None:
    match = match_horsepower(RAV4[2], [car("X", "RAV4", 150, 2.0)])

    assert match is not None
    assert (match.status, match.horsepower) == ("not_matched", None)


def test_horsepower_is_not_covered_outside_the_test_car_years() -> None:
    match = match_horsepower(record("1", "RAV4", year=2010), TEST_CARS)

    assert match is not None
    assert match.status == "not_covered"


def test_differences_name_the_leader_and_the_delta() -> None:
    civic = record("1", "Civic 4Dr", make="Honda", facts={"combined_mpg": 36, "annual_fuel_cost_usd": 1250})
    corolla = record("2", "Corolla", facts={"combined_mpg": 34, "annual_fuel_cost_usd": 1350, "co2_gpm": 260})
    rows = table_rows([civic, corolla])

    found = {d.key: d for d in differences_that_matter(rows, ["Civic", "Corolla"])}

    assert (found["combined_mpg"].leader, found["combined_mpg"].delta) == ("Civic", 2)
    assert (found["annual_fuel_cost_usd"].leader, found["annual_fuel_cost_usd"].delta) == ("Civic", 100)
    assert "co2_gpm" not in found  # one value only
    mpg_row = next(r for r in rows if r.key == "combined_mpg")
    assert (mpg_row.best, mpg_row.unit) == ([0], "mpg")


def test_chart_is_a_png() -> None:
    rows = table_rows([RAV4[0], RAV4[2]])

    png = draw_chart(rows, ["2019 Toyota RAV4 Hybrid AWD", "2019 Toyota RAV4"], ["combined_mpg"])

    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_source_has_the_shape_of_the_vin_sources() -> None:
    source = RAV4[2].source()

    assert source == {
        "provider": "knowledge",
        "dataset": "EPA/DOE fuel economy (fueleconomy.gov vehicles.csv)",
        "record_id": "epa:41122",
        "data_date": "2025-10-28",
        "title": "2019 Toyota RAV4",
    }


def test_not_found_errors_carry_reason_suggestions_and_years() -> None:
    error = SpecNotFound("no", reason="year_out_of_range", years=[2019, 2020, 2022])

    assert error.to_dict() == {
        "error": "vehicle_not_found",
        "message": "no",
        "reason": "year_out_of_range",
        "years": "2019-2020, 2022",
    }


def test_unavailable_fields_say_not_to_estimate() -> None:
    (towing,) = unavailable_fields(["towing_capacity", "not-a-key"])

    assert towing.label == "towing capacity"
    assert "do not estimate" in towing.message


# ---------------------------------------------------------------- recalls


@pytest.mark.parametrize(
    ("summary", "component"),
    [
        ("The front lower suspension arms may have been manufactured with improperly produced material.",
         "SUSPENSION"),
        ("A screw attaching the cover to the electric power steering gear may be loose.", "STEERING"),
        ("The low-pressure fuel pump may stop operating.", "FUEL SYSTEM, GASOLINE"),
        ("The front passenger air bag inflator may rupture.", "AIR BAGS"),
        ("The seat belt buckle may not latch properly.", "SEAT BELTS"),
        ("The rearview camera image may not display.", "BACK OVER PREVENTION"),
        ("Owner letter mailed.", UNKNOWN),
        ("", UNKNOWN),
    ],
)  # fmt: skip
def test_component_is_inferred_from_the_summary(summary: str, component: str) -> None:
    assert infer_component(summary).component == component


def test_campaign_numbers_get_their_trailing_zeros() -> None:
    assert full_campaign_number("20V286") == "20V286000"
    assert full_campaign_number("20v286000") == "20V286000"


def test_recall_rows_of_one_campaign_become_one_campaign() -> None:
    def recall(model: str, campaign: str, year: int) -> SpecRecord:
        return record(
            "9", model, dataset="nhtsa-recalls", kind="recall", record_id=f"{campaign}:TOYOTA:{model}:2019",
            facts={"campaign": campaign, "campaign_year": year, "summary": "Suspension arm may separate.",
                   "summary_document": f"RCONL-{campaign}-0018.pdf", "documents": 6},
        )  # fmt: skip

    campaigns = group_campaigns(
        [
            recall("RAV4", "20V286", 2020),
            recall("RAV4 HYBRID", "20V286", 2020),
            recall("RAV4", "23V001", 2023),
        ]
    )

    assert [c.campaign for c in campaigns] == ["23V001000", "20V286000"]
    arm = campaigns[1]
    assert arm.models == ["RAV4", "RAV4 HYBRID"]
    assert (arm.component, arm.component_inferred, arm.component_keyword) == (
        "SUSPENSION",
        True,
        "suspension",
    )
    assert len(arm.sources) == 2


def _recall(model: str, campaign: str, year: int) -> SpecRecord:
    return record(
        "9", model, dataset="nhtsa-recalls", kind="recall", record_id=f"{campaign}:TOYOTA:{model}:2019",
        facts={"campaign": campaign, "campaign_year": year, "summary": "Brake hose may leak."},
    )  # fmt: skip


def test_campaigns_of_one_year_are_listed_newest_number_first() -> None:
    campaigns = group_campaigns(
        [_recall("RAV4", "23V001", 2023), _recall("RAV4", "23V500", 2023), _recall("RAV4", "21V010", 2021)]
    )

    assert [c.campaign for c in campaigns] == ["23V500000", "23V001000", "21V010000"]


def _row(campaign: str, model_year: int) -> DocumentRow:
    facts = {"campaign": f"{campaign}000", "campaign_year": 2000 + int(campaign[:2]), "summary": "Hose leak."}
    return DocumentRow(
        id=model_year, dataset="nhtsa-recalls", record_id=f"{campaign}:TOYOTA:RAV4:{model_year}",
        kind="recall", year=model_year, make="TOYOTA", make_key="toyota", model="RAV4", base_model="RAV4",
        model_key="rav4", configuration=None, engine=None, cylinders=None, displacement_l=None,
        transmission=None, drive=None, fuel=None, vehicle_class=None, facts=facts,
    )  # fmt: skip


class _Session:
    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_cut_recall_list_says_so_and_counts_every_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    # newest first, as the repository returns them: 25V002 (2 model years), 24V001 (cut after one)
    stored = [_row("25V002", 2024), _row("25V002", 2023), _row("24V001", 2024), _row("24V001", 2023)]

    async def resolve(*_: object, **__: object) -> ResolvedVehicle:
        return ResolvedVehicle(0, "toyota", "Toyota", ModelEntry("toyota", "rav4", "RAV4", (2019,)), None)

    async def find(
        _: object, flt: DocumentFilter, *, limit: int, descending: bool = False
    ) -> list[DocumentRow]:
        assert descending
        return stored[:limit]

    async def count_campaigns(_: object, flt: DocumentFilter) -> int:
        return 7

    monkeypatch.setattr(recalls, "_resolve", resolve)
    monkeypatch.setattr(recalls, "MAX_RECALL_DOCUMENTS", 3)
    monkeypatch.setattr(recalls.repo, "find", find)
    monkeypatch.setattr(recalls.repo, "count_campaigns", count_campaigns)

    result = await find_recalls(None, "Toyota", "RAV4", deps=KnowledgeDeps(sessions=_Session))  # type: ignore[arg-type]

    assert result.truncated
    assert result.count == 7
    assert [c.nhtsa_id for c in result.campaigns] == ["25V002"]
    assert "newest 1" in result.note
