"""The spec suite's scorers: locale-aware numbers, retrieval ranks, refusals without invented numbers."""

from __future__ import annotations

import pytest

from evals.scorers import (
    ExpectedFact,
    RankedCall,
    SpecExpected,
    SpecVehicle,
    invented_numbers,
    numbers_in,
    score_retrieval,
    score_spec_facts,
    score_spec_refusal,
    score_spec_tool,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("combined 28 mpg", 28),
        ("combinado 28,0 mpg", 28),
        ("mixte 28.5 mpg", 28.5),
        ("kombiniert 28,5 mpg", 28.5),
        ("$1,500 a year", 1500),
        ("1.500 USD", 1500),
        ("1\u202f500 USD", 1500),
    ],
)
def test_a_number_is_read_as_the_answers_locale_writes_it(text, value) -> None:
    assert float(value) in numbers_in(text)


def test_numbers_inside_words_and_dates_are_not_values() -> None:
    assert numbers_in("CO2 of the RAV4, campaign 20V286, data of 2025-10-28") == []


def test_every_value_counts_when_all_are_needed_and_one_suffices_when_any_is() -> None:
    answer = "- RAV4: combined 30 mpg\n- RAV4 AWD: combined 28 mpg"
    all_needed = ExpectedFact(field="combined_mpg", values=(28, 30, 40), need="all")
    any_needed = ExpectedFact(field="combined_mpg", values=(28, 30, 40), need="any")
    assert score_spec_facts(answer, [all_needed]).value == pytest.approx(2 / 3, abs=1e-3)
    assert score_spec_facts(answer, [any_needed]).value == 1.0


def test_recall_at_5_and_mrr_use_the_best_rank_of_each_group() -> None:
    calls = [RankedCall("compare_vehicles", {}, ("epa:1", "epa:9", "epa:2", "epa:3", "epa:4", "epa:5"))]
    recall, mrr = score_retrieval([["epa:1"], ["epa:2"], ["epa:7"]], calls)
    assert recall.value == pytest.approx(2 / 3, abs=1e-3)
    assert mrr.value == pytest.approx((1 + 1 / 3 + 0) / 3, abs=1e-3)


def test_a_refusal_fails_when_it_shows_a_number_the_question_did_not_have() -> None:
    question = "What's the towing capacity of a 2020 Ford F-150?"
    honest = "I don't have towing capacity for the 2020 Ford F-150, and I won't guess."
    invented = "I don't have it exactly, but it tows about 11,000 lb."
    assert invented_numbers(honest, question) == []
    assert score_spec_refusal(True, honest, question, []).value == 1.0
    assert score_spec_refusal(True, invented, question, []).value == 0.0


def test_the_tool_must_be_called_about_the_expected_vehicle() -> None:
    expected = SpecExpected(tool="get_specs", vehicles=(SpecVehicle(year=2019, make="Toyota", model="RAV4"),))
    right = RankedCall("get_specs", {"year": 2019, "make": "TOYOTA", "model": "RAV4 Hybrid"})
    wrong = RankedCall("get_specs", {"year": 2019, "make": "Honda", "model": "CR-V"})
    assert score_spec_tool(expected, [right]).value == 1.0
    assert score_spec_tool(expected, [wrong]).value == 0.0


def test_a_call_without_a_year_passes_only_a_case_that_names_no_year() -> None:
    year_less = RankedCall("find_recalls", {"make": "Toyota", "model": "RAV4"})
    dated = SpecExpected(tool="find_recalls", vehicles=(SpecVehicle(year=2019, make="Toyota", model="RAV4"),))
    undated = SpecExpected(
        tool="find_recalls", vehicles=(SpecVehicle(year=None, make="Toyota", model="RAV4"),)
    )
    assert score_spec_tool(dated, [year_less]).value == 0.0
    assert score_spec_tool(undated, [year_less]).value == 1.0
