"""The offline planner's vehicle-knowledge intents: specs, comparisons, recalls, follow-ups, refusals.

The planner reads the makes and models of the data from a `Vocabulary` (built here
from a few real EPA rows; in production the knowledge capability loads it from the
database). Tool results are the JSON the toolkit writes (`agent.toolkit.spec_summary`
and friends), with values from ../shared/data.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fakes import offline_toolkit
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage

from agent.bootstrap import confidently_routed
from agent.context import RunContext
from agent.graph import build_graph
from agent.planner_offline import OfflinePlanner, route, with_aliases
from agent.toolkit import vehicle_named
from evals.scorers import invented_numbers, numbers_in, refusal_marker
from tools.domain.names import make_key, model_key
from tools.domain.spec_query import Vocabulary

ROWS = [
    ("Toyota", "RAV4", range(1996, 2026)),
    ("Honda", "Civic", range(1984, 2026)),
    ("Honda", "CR-V", range(1997, 2026)),
    ("Tesla", "Model 3", range(2017, 2026)),
    ("Volkswagen", "Golf", range(1985, 2022)),
    ("Ford", "F150", range(1984, 2026)),
    ("Ford", "Mustang", range(1984, 2026)),
    ("Ford", "Explorer", range(1991, 2026)),
    ("Mazda", "CX-5", range(2013, 2026)),
    ("Subaru", "Forester", range(1998, 2026)),
]
VOCABULARY = Vocabulary.build(
    (make_key(make), make, model_key(model), model, year) for make, model, years in ROWS for year in years
)
EXPLORER_VIN = "1FM5K7D88DGA93688"
EXPLORER_DECODE: dict[str, Any] = {
    "vin": EXPLORER_VIN,
    "valid": True,
    "title": "2013 FORD Explorer",
    "make": "FORD",
    "model": "Explorer",
    "model_year": 2013,
    "body_class": "Sport Utility Vehicle (SUV)/Multi-Purpose Vehicle (MPV)",
    "engine": {"cylinders": 6, "displacement_l": 3.5, "fuel_type_primary": "Gasoline"},
    "source": {"provider": "offline", "data_version": "vPIC 2026-10"},
}
FOCUS_VIN = "1FADP3F21EL321063"
FOCUS_DECODE: dict[str, Any] = {
    "vin": FOCUS_VIN,
    "valid": True,
    "title": "2014 FORD Focus SE",
    "make": "FORD",
    "model": "Focus",
    "model_year": 2014,
    "trim": "SE",
    "source": {"provider": "offline", "data_version": "vPIC 2026-10"},
}
ACCORD_VIN = "1HGCM82633A004352"
ACCORD_DECODE: dict[str, Any] = {
    "vin": ACCORD_VIN,
    "valid": True,
    "title": "2003 HONDA Accord EX-V6",
    "make": "HONDA",
    "model": "Accord",
    "model_year": 2003,
    "source": {"provider": "offline", "data_version": "vPIC 2026-10"},
}
EPA_SOURCE = [{"dataset": "EPA/DOE fuel economy (fueleconomy.gov vehicles.csv)", "data_date": "2025-10-28"}]
RAV4_SPECS: dict[str, Any] = {
    "vehicle": "2019 Toyota RAV4",
    "year": 2019,
    "make": "Toyota",
    "model": "RAV4",
    "total": 4,
    "configurations": [
        {
            "id": "epa:41122",
            "model": "RAV4",
            "configuration": "2.5 L 4 cyl, Automatic (S8), Front-Wheel Drive",
            "fuel": "Regular Gasoline",
            "facts": {"city_mpg": 26, "highway_mpg": 35, "combined_mpg": 30, "annual_fuel_cost_usd": 1500},
        },
        {
            "id": "epa:41126",
            "model": "RAV4 AWD",
            "configuration": "2.5 L 4 cyl, Automatic (S8), All-Wheel Drive",
            "fuel": "Regular Gasoline",
            "facts": {"city_mpg": 25, "highway_mpg": 33, "combined_mpg": 28, "horsepower": 203},
        },
        {
            "id": "epa:41127",
            "model": "RAV4 AWD",
            "configuration": "2.5 L 4 cyl, Automatic (S8), All-Wheel Drive",
            "fuel": "Regular Gasoline",
            "facts": {"city_mpg": 27, "highway_mpg": 34, "combined_mpg": 30},
        },
        {
            "id": "epa:41307",
            "model": "RAV4 Hybrid AWD",
            "configuration": "2.5 L 4 cyl, Automatic (AV-S6), All-Wheel Drive",
            "fuel": "Regular Gasoline",
            "facts": {"city_mpg": 41, "highway_mpg": 38, "combined_mpg": 40, "atv_type": "Hybrid"},
        },
    ],
    "unavailable": [],
    "sources": EPA_SOURCE,
}
MODEL3_SPECS: dict[str, Any] = {
    "vehicle": "2024 Tesla Model 3",
    "total": 2,
    "configurations": [
        {
            "id": "epa:47909",
            "model": "Model 3 RWD",
            "fuel": "Electricity",
            "facts": {"range_mi": 272, "combined_mpg": 132},
        },
        {
            "id": "epa:47908",
            "model": "Model 3 Long Range AWD",
            "fuel": "Electricity",
            "facts": {"range_mi": 342, "combined_mpg": 130},
        },
    ],
    "sources": EPA_SOURCE,
}
RAV4_RECALLS: dict[str, Any] = {
    "vehicle": "2019 Toyota RAV4",
    "count": 2,
    "campaigns": [
        {
            "campaign": "20V682000",
            "year_filed": 2020,
            "component": "fuel system",
            "summary": "The subject vehicles are equipped with a low-pressure fuel pump which may stop "
            "operating. If this were to occur, the engine may stall.",
        },
        {
            "campaign": "20V286000",
            "year_filed": 2020,
            "component": "suspension",
            "summary": "The front lower suspension arms may have been manufactured with improperly "
            "produced material.",
        },
    ],
    "sources": [{"dataset": "NHTSA recalls (campaigns filed 2020 and later)", "data_date": "2026-02-23"}],
}


def ask(*turns: str) -> list[BaseMessage]:
    """A conversation of user turns only (no tool was called yet)."""
    return [HumanMessage(t) for t in turns]


def calls_of(messages: list[BaseMessage]) -> list[tuple[str, dict[str, Any]]]:
    decision = route(messages, vocabulary=VOCABULARY)
    assert decision is not None
    return [(c["name"], c["args"]) for c in decision.tool_calls]


def looked_up(
    question: str, name: str, args: dict[str, Any], result: dict[str, Any], n: int = 1
) -> list[BaseMessage]:
    """A finished turn: the question, the planner's call and the tool's result."""
    call_id = f"call_{n}"
    return [
        HumanMessage(question),
        AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}]),
        ToolMessage(json.dumps(result), tool_call_id=call_id, name=name),
    ]


async def answer(messages: list[BaseMessage]) -> AIMessage:
    async def load() -> Vocabulary:
        return VOCABULARY

    planner = OfflinePlanner(vocabulary_loader=load)
    reply = await planner.ainvoke(messages)
    assert isinstance(reply, AIMessage)
    return reply


# ---------------------------------------------------------------- planning


@pytest.mark.parametrize(
    ("text", "args", "fact"),
    [
        (
            "combined MPG of a 2019 RAV4 hybrid?",
            {"year": 2019, "make": "Toyota", "model": "RAV4"},
            "combined_mpg",
        ),
        (
            "¿cuántos caballos tiene un Civic 2018?",
            {"year": 2018, "make": "Honda", "model": "Civic"},
            "horsepower",
        ),
        (
            "autonomie d'une Tesla Model 3 2024",
            {"year": 2024, "make": "Tesla", "model": "Model 3"},
            "range_mi",
        ),
        ("Verbrauch Golf 2016", {"year": 2016, "make": "Volkswagen", "model": "Golf"}, "combined_mpg"),
    ],
)
def test_get_specs_is_called_for_the_named_vehicle_when_a_spec_question_names_one(text, args, fact) -> None:
    decision = route(ask(text), vocabulary=VOCABULARY)
    assert decision is not None
    [call] = decision.tool_calls
    assert call["name"] == "get_specs"
    assert {k: call["args"][k] for k in args} == args
    assert fact in decision.focus


def test_the_configuration_words_narrow_the_look_up_when_the_user_names_them() -> None:
    [(name, args)] = calls_of(ask("combined MPG of a 2019 RAV4 hybrid?"))
    assert name == "get_specs"
    assert "hybrid" in (args.get("configuration") or "").lower()


@pytest.mark.parametrize(
    "text",
    [
        "2019 Toyota RAV4 vs 2019 Honda CR-V",
        "compare the 2018 Mazda CX-5 and the 2018 Subaru Forester",
        "compara el Toyota RAV4 2019 con el Honda CR-V 2019",
        "Mazda CX-5 2018 oder Subaru Forester 2018?",
    ],
)
def test_compare_vehicles_gets_both_vehicles_when_the_user_compares_two(text) -> None:
    [(name, args)] = calls_of(ask(text))
    assert name == "compare_vehicles"
    assert len(args["vehicles"]) == 2
    assert all(v["year"] in (2018, 2019) for v in args["vehicles"])


@pytest.mark.parametrize(
    "text",
    ["Are there any recalls on the 2019 Toyota RAV4?", "¿Hay llamadas a revisión para el Toyota RAV4 2019?"],
)
def test_find_recalls_is_called_for_the_named_vehicle_when_the_user_asks_for_recalls(text) -> None:
    [(name, args)] = calls_of(ask(text))
    assert (name, args["year"], args["make"], args["model"]) == ("find_recalls", 2019, "Toyota", "RAV4")


@pytest.mark.parametrize(
    "text",
    ["any recalls on my car?", "y a-t-il des rappels sur ma voiture ?", "gibt es Rückrufe für mein Auto?"],
)
def test_recalls_on_my_car_use_the_decoded_vehicle_when_a_vin_was_decoded(text) -> None:
    history = looked_up(f"decode {EXPLORER_VIN}", "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    [(name, args)] = calls_of([*history, HumanMessage(text)])
    assert (name, args["year"], args["make"], args["model"]) == ("find_recalls", 2013, "FORD", "Explorer")


def test_a_spec_follow_up_looks_up_the_decoded_vehicle_when_the_decode_does_not_cover_it() -> None:
    history = looked_up(f"decode {EXPLORER_VIN}", "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    [(name, args)] = calls_of([*history, HumanMessage("what's its combined mpg?")])
    assert (name, args["year"], args["model"]) == ("get_specs", 2013, "Explorer")


def test_an_engine_follow_up_after_a_decode_is_answered_from_the_decode_without_a_tool() -> None:
    history = looked_up(f"decode {EXPLORER_VIN}", "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    assert calls_of([*history, HumanMessage("and its engine?")]) == []


@pytest.mark.parametrize(
    ("follow_up", "fact"),
    [("and its range?", "range_mi"), ("its highway mpg?", "highway_mpg"), ("¿y su autonomía?", "range_mi")],
)
def test_a_follow_up_looks_up_the_vehicle_named_before_when_it_asks_another_fact(follow_up, fact) -> None:
    args = {"year": 2024, "make": "Tesla", "model": "Model 3"}
    history = looked_up("combined mpg of the 2024 Tesla Model 3?", "get_specs", args, MODEL3_SPECS)
    decision = route([*history, HumanMessage(follow_up)], vocabulary=VOCABULARY)
    assert decision is not None
    [call] = decision.tool_calls
    assert (call["name"], call["args"]) == ("get_specs", args)
    assert fact in decision.focus


@pytest.mark.parametrize(
    "text",
    [
        "What's the towing capacity of a 2020 Ford F-150?",
        "¿Cuánto puede remolcar una Ford F-150 2020?",
        "Quelle est la capacité de remorquage d'un Ford F-150 2020 ?",
        "Wie hoch ist die Anhängelast eines Ford F-150 2020?",
        "What is the curb weight of the 2019 Toyota RAV4?",
    ],
)
def test_unavailable_fields_are_declined_without_a_number_when_no_dataset_has_them(text) -> None:
    decision = route(ask(text), vocabulary=VOCABULARY)
    assert decision is not None
    assert not decision.tool_calls
    assert decision.reply is not None
    assert refusal_marker(decision.reply) is not None
    assert invented_numbers(decision.reply, text) == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("What's the combined mpg?", "specs"),
        ("What's the combined mpg of a 1975 Ford Mustang?", "spec_not_found"),
        ("How much horsepower does a 2019 Zorblax Quantum have?", "specs"),
        ("any recalls on my car?", "recalls"),
        ("Wie viel PS?", "specs"),
    ],
)
def test_bad_input_gets_a_clear_answer_without_a_tool_call_or_a_number(text, intent) -> None:
    decision = route(ask(text), vocabulary=VOCABULARY)
    assert decision is not None
    assert not decision.tool_calls
    assert decision.intent == intent
    assert decision.reply is not None
    assert refusal_marker(decision.reply) is not None
    assert invented_numbers(decision.reply, text) == []


def test_spec_questions_are_declined_as_before_when_no_vehicle_data_is_loaded() -> None:
    decision = route(ask("What's the combined MPG of a 2019 Toyota RAV4?"))
    assert decision is not None
    assert not decision.tool_calls
    assert decision.intent == "unsupported"


def test_a_five_kilobyte_spec_question_is_planned_as_a_spec_look_up() -> None:
    text = ("What's the combined MPG of a 2019 Toyota RAV4? " + "blah " * 2000)[:5000]
    [(name, _)] = calls_of(ask(text))
    assert name == "get_specs"


# ---------------------------------------------------------------- answers


async def test_every_configuration_is_listed_with_its_value_when_several_match() -> None:
    args = {"year": 2019, "make": "Toyota", "model": "RAV4"}
    reply = await answer(
        looked_up("What's the combined MPG of a 2019 Toyota RAV4?", "get_specs", args, RAV4_SPECS)
    )
    text = str(reply.content)
    assert {30.0, 28.0, 40.0} <= set(numbers_in(text))
    assert text.count("\n- ") == 4
    assert "RAV4 Hybrid AWD" in text
    assert "Source: EPA/DOE fuel economy" in text
    assert "2025-10-28" in text


async def test_numbers_are_written_in_the_answers_language_when_it_is_not_english() -> None:
    args = {"year": 2019, "make": "Toyota", "model": "RAV4"}
    reply = await answer(
        looked_up("¿Cuánto cuesta al año el combustible del Toyota RAV4 2019?", "get_specs", args, RAV4_SPECS)
    )
    text = str(reply.content)
    assert "1.500 USD" in text
    assert reply.response_metadata["language"] == "es"


async def test_an_absent_fact_is_said_plainly_when_no_configuration_has_it() -> None:
    args = {"year": 2019, "make": "Toyota", "model": "RAV4"}
    question = "What's the range of the 2019 Toyota RAV4?"
    reply = await answer(looked_up(question, "get_specs", args, RAV4_SPECS))
    text = str(reply.content)
    assert "no electric range" in text
    assert not re.search(r"\d+ mi\b", text)


async def test_recall_campaigns_are_listed_with_their_component_and_source() -> None:
    args = {"year": 2019, "make": "Toyota", "model": "RAV4"}
    reply = await answer(looked_up("recalls for a 2019 Toyota RAV4", "find_recalls", args, RAV4_RECALLS))
    text = str(reply.content)
    assert "20V682000 (fuel system)" in text
    assert "20V286000 (suspension)" in text
    assert "NHTSA recalls" in text


async def test_a_decoded_vin_flows_into_recalls_when_one_message_asks_for_both() -> None:
    question = f"any recalls for {EXPLORER_VIN}?"
    decode = looked_up(question, "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    reply = await answer(decode)
    [call] = reply.tool_calls
    assert (call["name"], call["args"]["year"], call["args"]["model"]) == ("find_recalls", 2013, "Explorer")


async def test_a_comparison_lists_each_vehicle_and_mentions_the_chart() -> None:
    result = {
        "vehicles": ["2019 Toyota RAV4", "2019 Honda CR-V (CR-V FWD)"],
        "rows": [
            {"fact": "combined_mpg", "unit": "mpg", "values": [30, 30]},
            {"fact": "horsepower", "unit": "hp", "values": [203, 190]},
        ],
        "differences": [{"fact": "horsepower", "better": "2019 Toyota RAV4", "delta": 13}],
        "chart": True,
        "sources": EPA_SOURCE,
    }
    args = {
        "vehicles": [
            {"year": 2019, "make": "Toyota", "model": "RAV4"},
            {"year": 2019, "make": "Honda", "model": "CR-V"},
        ]
    }
    reply = await answer(looked_up("2019 Toyota RAV4 vs 2019 Honda CR-V", "compare_vehicles", args, result))
    text = str(reply.content)
    assert "2019 Toyota RAV4 203 hp" in text
    assert "190 hp" in text
    assert "bar chart" in text


async def test_a_vehicle_the_data_lacks_is_answered_honestly_when_the_tool_finds_nothing() -> None:
    args = {"year": 2019, "make": "Toyota", "model": "RAV4"}
    error = {"error": "vehicle_not_found", "message": "The data has no 2019 Toyota RAV4 configurations."}
    reply = await answer(looked_up("combined mpg 2019 Toyota RAV4", "get_specs", args, error))
    assert refusal_marker(str(reply.content)) is not None


# ---------------------------------------------------------------- grounding (toolkit)


class ScriptedModel(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


async def test_a_vehicle_the_user_never_named_is_refused_when_the_model_invents_it() -> None:
    invented = {"year": 2019, "make": "Honda", "model": "CR-V"}
    model = ScriptedModel(
        messages=iter(
            [
                AIMessage(
                    "", tool_calls=[{"name": "get_specs", "args": invented, "id": "c1", "type": "tool_call"}]
                ),
                AIMessage("I need to know which vehicle."),
            ]
        )
    )
    graph = build_graph(model, offline_toolkit(), system_prompt="test", planner_name="llm:test")
    context = RunContext(user_id=1, conversation_id="api:test")
    result = await graph.ainvoke(
        {"messages": [HumanMessage("What's the mpg of a 2019 Toyota RAV4?")], "planner": None},
        context=context,
    )
    tool_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert json.loads(tool_message.content)["error"] == "vehicle_not_in_conversation"
    assert tool_message.artifact["ok"] is False


def test_a_part_of_a_combined_epa_model_name_names_the_model_when_aliases_are_added() -> None:
    epa = Vocabulary.build([("volkswagen", "Volkswagen", "golfgti", "Golf/GTI", 2016)])
    decision = route(ask("Verbrauch Golf 2016"), vocabulary=with_aliases(epa))
    assert decision is not None
    [call] = decision.tool_calls
    assert call["args"] == {"year": 2016, "make": "Volkswagen", "model": "Golf/GTI"}


def test_a_decoded_vin_is_compared_with_a_named_vehicle_when_the_user_asks_to_compare_them() -> None:
    history = looked_up(f"decode {EXPLORER_VIN}", "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    [(name, args)] = calls_of([*history, HumanMessage("compare my car with a 2013 Ford Mustang")])
    assert name == "compare_vehicles"
    assert [(v["year"], v["model"]) for v in args["vehicles"]] == [(2013, "Explorer"), (2013, "Mustang")]


def test_a_question_about_a_kind_of_vehicle_is_searched_when_it_names_no_vehicle() -> None:
    text = "which 2020 hybrid SUVs get the best mpg?"
    [(name, args)] = calls_of(ask(text))
    assert (name, args) == ("search_specs", {"question": text})


async def test_search_hits_are_listed_with_the_asked_fact_and_the_source() -> None:
    hits = {
        "hits": [
            {"id": "epa:42001", "title": "2020 Toyota RAV4 Hybrid AWD", "facts": {"combined_mpg": 40}},
            {"id": "epa:42002", "title": "2020 Ford Escape FWD HEV", "facts": {"combined_mpg": 41}},
        ],
        "sources": EPA_SOURCE,
    }
    question = "which 2020 hybrid SUVs get the best mpg?"
    reply = await answer(looked_up(question, "search_specs", {"question": question}, hits))
    text = str(reply.content)
    assert "2020 Ford Escape FWD HEV: combined 41 mpg" in text
    assert "Source: EPA/DOE fuel economy" in text


async def test_the_offline_planner_takes_a_recognised_spec_turn_before_the_llm_when_planner_first() -> None:
    async def load() -> Vocabulary:
        return VOCABULARY

    offline = OfflinePlanner(vocabulary_loader=load)
    llm = ScriptedModel(messages=iter([AIMessage("the LLM should not answer this")]))
    graph = build_graph(
        llm,
        offline_toolkit(),
        system_prompt="test",
        planner_name="llm:test",
        offline=offline,
        route=lambda messages: confidently_routed(messages, offline),
        prepare_route=offline.load_vocabulary,
    )
    question = "What's the towing capacity of a 2020 Ford F-150?"
    result = await graph.ainvoke(
        {"messages": [HumanMessage(question)], "planner": None},
        context=RunContext(user_id=1, conversation_id="t"),
    )
    assert result["planner"] == "offline"
    assert "towing capacity" in str(result["messages"][-1].content)


# ---------------------------------------------------------------- a VIN, then the look-up it asked for

FOCUS = (2014, "FORD", "Focus")
CIVIC_2014 = (2014, "Honda", "Civic")


def vehicles_of(args: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(v["year"], v["make"], v["model"]) for v in args["vehicles"]]


async def after_decode(question: str) -> AIMessage:
    """The planner's step once the VINs of `question` are decoded (as it planned them)."""
    [call] = route(ask(question), vocabulary=VOCABULARY).tool_calls  # type: ignore[union-attr]
    decodes = {FOCUS_VIN: FOCUS_DECODE, ACCORD_VIN: ACCORD_DECODE, EXPLORER_VIN: EXPLORER_DECODE}
    if call["name"] == "decode_vin":
        result: dict[str, Any] = decodes[call["args"]["vin"]]
    else:
        result = {"results": [decodes[vin] for vin in call["args"]["vins"]]}
    return await answer(looked_up(question, call["name"], call["args"], result))


@pytest.mark.parametrize(
    "question",
    [
        f"Compare {FOCUS_VIN} with 2014 Honda Civic",
        f"compara el {FOCUS_VIN} con el Honda Civic 2014",
        f"Compare le {FOCUS_VIN} avec la Honda Civic 2014",
        f"Vergleiche {FOCUS_VIN} mit dem Honda Civic 2014",
        f"{FOCUS_VIN} vs 2014 Honda Civic",
        f"What's the difference between {FOCUS_VIN} and a 2014 Honda Civic?",
        f"Is {FOCUS_VIN} better than a 2014 Honda Civic?",
    ],
)
async def test_the_decoded_vin_is_compared_with_the_named_vehicle_when_one_message_asks_for_both(
    question,
) -> None:
    [decode] = route(ask(question), vocabulary=VOCABULARY).tool_calls  # type: ignore[union-attr]
    reply = await after_decode(question)

    assert (decode["name"], decode["args"]) == ("decode_vin", {"vin": FOCUS_VIN})
    [call] = reply.tool_calls
    assert call["name"] == "compare_vehicles"
    assert vehicles_of(call["args"]) == [FOCUS, CIVIC_2014]


async def test_the_decoded_vins_are_compared_when_the_message_sets_two_vins_against_each_other() -> None:
    reply = await after_decode(f"{FOCUS_VIN} vs {ACCORD_VIN}")

    [call] = reply.tool_calls
    assert call["name"] == "compare_vehicles"
    assert vehicles_of(call["args"]) == [FOCUS, (2003, "HONDA", "Accord")]


@pytest.mark.parametrize(
    ("question", "language"),
    [
        (f"What are the specs of {FOCUS_VIN}?", "en"),
        (f"¿Cuáles son las especificaciones del {FOCUS_VIN}?", "es"),
        (f"Quelle est la fiche technique du {FOCUS_VIN} ?", "fr"),
        (f"Technische Daten von {FOCUS_VIN}", "de"),
        (f"combined mpg of {FOCUS_VIN}?", "en"),
    ],
)
async def test_the_decoded_vehicles_specs_are_looked_up_when_the_message_asks_for_the_specs_of_a_vin(
    question, language
) -> None:
    reply = await after_decode(question)

    [call] = reply.tool_calls
    assert call["name"] == "get_specs"
    assert (call["args"]["year"], call["args"]["make"], call["args"]["model"]) == FOCUS
    assert reply.response_metadata["language"] == language


@pytest.mark.parametrize(
    "question", [f"decode {FOCUS_VIN}", f"what car is {FOCUS_VIN}?", f"decode {FOCUS_VIN} {ACCORD_VIN}"]
)
async def test_the_decode_alone_answers_when_the_message_asks_nothing_more_about_the_vin(question) -> None:
    reply = await after_decode(question)

    assert reply.tool_calls == []
    assert "Focus" in str(reply.content)


async def test_the_decode_is_given_and_the_year_asked_when_the_vehicle_to_compare_with_has_none() -> None:
    reply = await after_decode(f"Compare {FOCUS_VIN} with a Honda Civic")

    assert reply.tool_calls == []
    text = str(reply.content)
    assert text.startswith("That VIN belongs to a 2014 Ford Focus")
    assert "Which model year of the Honda Civic?" in text


async def test_the_answer_gives_the_decode_and_the_comparison_when_the_comparison_came_back() -> None:
    question = f"Compare {FOCUS_VIN} with 2014 Honda Civic"
    decoded = looked_up(question, "decode_vin", {"vin": FOCUS_VIN}, FOCUS_DECODE)
    compare = await answer(decoded)
    result = {
        "vehicles": ["2014 Ford Focus", "2014 Honda Civic"],
        "rows": [{"fact": "combined_mpg", "unit": "mpg", "values": [30, 33]}],
        "differences": [{"fact": "combined_mpg", "better": "2014 Honda Civic", "delta": 3}],
        "chart": True,
        "sources": EPA_SOURCE,
    }
    tool_result = ToolMessage(
        json.dumps(result), tool_call_id=compare.tool_calls[0]["id"], name="compare_vehicles"
    )
    reply = await answer([*decoded, compare, tool_result])

    assert reply.tool_calls == []  # one look-up after a decode: the loop ends
    text = str(reply.content)
    assert text.startswith("That VIN belongs to a 2014 Ford Focus")
    assert "2014 Ford Focus 30 mpg; 2014 Honda Civic 33 mpg" in text


async def test_no_earlier_vehicle_is_looked_up_when_the_vin_of_this_message_could_not_be_decoded() -> None:
    earlier = looked_up(f"decode {EXPLORER_VIN}", "decode_vin", {"vin": EXPLORER_VIN}, EXPLORER_DECODE)
    question = f"any recalls for {FOCUS_VIN}?"
    failed = {"error": "vehicle_not_found", "message": "No vehicle is known for this VIN."}
    turn = looked_up(question, "decode_vin", {"vin": FOCUS_VIN}, failed, n=2)

    reply = await answer([*earlier, AIMessage("(the earlier answer)"), *turn])

    assert reply.tool_calls == []


def test_the_knowledge_tools_accept_a_vehicle_that_only_a_decode_in_the_conversation_named() -> None:
    question = HumanMessage(f"Compare {FOCUS_VIN} with 2014 Honda Civic")
    decode = ToolMessage(json.dumps(FOCUS_DECODE), tool_call_id="call_1", name="decode_vin")
    decoded: list[AnyMessage] = [question, decode]

    assert vehicle_named(decoded, 2014, "FORD", "Focus")
    assert vehicle_named(decoded, 2014, "Honda", "Civic")
    assert not vehicle_named(decoded[:1], 2014, "FORD", "Focus")  # before the decode: not named
    assert not vehicle_named(decoded, 2015, "FORD", "Focus")


async def test_the_other_vehicles_year_is_no_year_hint_for_the_vin_when_the_message_compares_them() -> None:
    question = f"Compare {FOCUS_VIN} with a 2019 Honda Civic"
    [decode] = route(ask(question), vocabulary=VOCABULARY).tool_calls  # type: ignore[union-attr]
    reply = await after_decode(question)

    assert decode["args"] == {"vin": FOCUS_VIN}
    [call] = reply.tool_calls
    assert vehicles_of(call["args"]) == [FOCUS, (2019, "Honda", "Civic")]
