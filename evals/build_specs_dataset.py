"""Build `evals/datasets/specs_v1.jsonl`: spec, comparison and recall questions answered from the data.

    python -m evals.build_specs_dataset [--data-dir DIR] [--out PATH]

Deterministic: the same data files always give the same file, byte for byte. It reads
the shared files directly (gzip CSV, no database), so the expected answers do not
depend on the code under test:

* `epa_fueleconomy_vehicles.csv.gz`: MPG (city, highway, combined), electric range,
  CO2 and annual fuel cost per configuration, and the configurations' record ids;
* `epa_test_car_list_MY2015_2024.csv.gz`: rated horsepower;
* `nhtsa_recalls_by_vehicle_2020_2026.csv.gz`: campaign numbers per make, model and year.

A vehicle matches a record the way the assistant is meant to match it: by model year,
`make_key` and `model_key` (EPA's `baseModel`), so `RAV4 AWD` and `RAV4 Hybrid AWD` are
both configurations of the 2019 RAV4. Each case lists every acceptable record id for
retrieval (an answer may rest on any configuration of the vehicle), and the fact values
the answer must show: all of them when the vehicle has a few configurations (the answer
must list them, not pick one), any one of them when it has many.

The case format is described in `evals/README.md` ("Spec suite").
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tools.domain.names import make_key, model_key

EVALS_DIR: Final = Path(__file__).resolve().parent
DEFAULT_DATA_DIR: Final = EVALS_DIR.parent.parent / "shared" / "data"
DEFAULT_OUT: Final = EVALS_DIR / "datasets" / "specs_v1.jsonl"

EPA_FILE: Final = "epa_fueleconomy_vehicles.csv.gz"
TEST_CAR_FILE: Final = "epa_test_car_list_MY2015_2024.csv.gz"
RECALL_FILE: Final = "nhtsa_recalls_by_vehicle_2020_2026.csv.gz"

# Record ids as the tools report them: "<dataset>:<record id>".
EPA: Final = "epa"
RECALLS: Final = "nhtsa-recalls"

# "all" values must appear when there are at most this many distinct ones (and the
# vehicle has at most MAX_LISTED configurations, all of which the answer lists).
MAX_ALL_VALUES: Final = 5
MAX_LISTED: Final = 8
MAX_ALL_CAMPAIGNS: Final = 8


def record(dataset: str, record_id: str) -> str:
    """Return the id the tools report for one record."""
    return f"{dataset}:{record_id}"


def recall_record_id(row: Mapping[str, str]) -> str:
    """Return the record id of one recall row: campaign, make, model and model year."""
    make, model = row["make"].strip().upper(), row["model"].strip().upper()
    return f"{row['nhtsa_campaign'].strip()}:{make}:{model}:{row['model_year'].strip()}"


# ---------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Config:
    """One EPA configuration."""

    record_id: str
    model: str
    facts: Mapping[str, float]


@dataclass
class Data:
    """The three files, indexed by (year, make key, model key)."""

    epa: dict[tuple[int, str, str], list[Config]] = field(default_factory=lambda: defaultdict(list))
    horsepower: dict[tuple[int, str, str], list[tuple[str, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    recalls: dict[tuple[int, str, str], dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    makes: set[str] = field(default_factory=set)
    years: set[int] = field(default_factory=set)


_EPA_FACTS: Final = {
    "city_mpg": "city08",
    "highway_mpg": "highway08",
    "combined_mpg": "comb08",
    "range_mi": "range",
    "co2_gpm": "co2TailpipeGpm",
    "annual_fuel_cost_usd": "fuelCost08",
}


def _positive(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def load(data_dir: Path) -> Data:
    """Read the three files."""
    data = Data()
    for row in _rows(data_dir / EPA_FILE):
        year = int(row["year"])
        facts = {key: v for key, column in _EPA_FACTS.items() if (v := _positive(row[column])) is not None}
        key = (year, make_key(row["make"]), model_key(row["baseModel"] or row["model"]))
        data.epa[key].append(Config(row["id"], row["model"], facts))
        data.makes.add(key[1])
        data.years.add(year)
    epa_models: dict[tuple[int, str], set[str]] = defaultdict(set)
    for year, make, model in data.epa:
        epa_models[(year, make)].add(model)
    for row in _rows(data_dir / TEST_CAR_FILE):
        hp = _positive(row["Rated Horsepower"])
        if hp is None:
            continue
        year, make = int(row["Model Year"]), make_key(row["Represented Test Veh Make"])
        tested = model_key(row["Represented Test Veh Model"])
        # "CIVIC 5DR" belongs to the Civic, unless EPA has a longer model that fits ("RAV4 Prime").
        fits = sorted((m for m in epa_models[(year, make)] if m and tested.startswith(m)), key=len)
        if fits:
            data.horsepower[(year, make, fits[-1])].append((row["Test Number"].strip(), hp))
    for row in _rows(data_dir / RECALL_FILE):
        try:
            year = int(row["model_year"])
        except ValueError:
            continue
        key = (year, make_key(row["make"]), model_key(row["model"]))
        data.recalls[key][row["nhtsa_campaign"]].append(recall_record_id(row))
    return data


# ---------------------------------------------------------------- cases


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle as a question names it, and its key in the data."""

    year: int
    make: str  # as people write it
    model: str  # as people write it
    qualifier: str = ""  # "hybrid": only the hybrid configurations

    @property
    def key(self) -> tuple[int, str, str]:
        """The (year, make key, model key) the data is indexed by."""
        return (self.year, make_key(self.make), model_key(self.model))

    def args(self) -> dict[str, Any]:
        """The arguments a tool call for this vehicle carries (compared by key)."""
        return {"year": self.year, "make": self.make, "model": self.model}


def _configs(data: Data, vehicle: Vehicle) -> list[Config]:
    configs = data.epa.get(vehicle.key, [])
    if vehicle.qualifier:
        configs = [c for c in configs if vehicle.qualifier.lower() in c.model.lower()]
    return configs


def _need(values: Sequence[object], configs: int) -> str:
    return "all" if len(values) <= MAX_ALL_VALUES and configs <= MAX_LISTED else "any"


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value


def spec_fact(data: Data, vehicle: Vehicle, fact: str) -> dict[str, Any] | None:
    """Return the expected values of one fact of a vehicle, or None when the data has none."""
    if fact == "horsepower":
        values = sorted({_number(hp) for _, hp in data.horsepower.get(vehicle.key, [])})
        return {"field": fact, "values": values, "need": "any"} if values else None
    configs = _configs(data, vehicle)
    found = sorted({_number(c.facts[fact]) for c in configs if fact in c.facts})
    if not found:
        return None
    return {"field": fact, "values": found, "need": _need(found, len(configs))}


def spec_records(data: Data, vehicle: Vehicle) -> list[str]:
    """Return every record id an answer about this vehicle may rest on: its EPA configurations.

    A horsepower answer rests on them too: the assistant attaches a test car's rating to
    each EPA configuration (the test-car record is cited as the rating's source, under an
    id the ingestion derives from its grouping of the tests, which is not recomputed here).
    """
    return sorted({record(EPA, c.record_id) for c in _configs(data, vehicle)})


def recall_expectation(data: Data, vehicle: Vehicle) -> tuple[dict[str, Any], list[str]] | None:
    """Return the expected campaigns of a vehicle and the acceptable record ids."""
    campaigns = data.recalls.get(vehicle.key)
    if not campaigns:
        return None
    values = sorted(campaigns)
    need = "all" if len(values) <= MAX_ALL_CAMPAIGNS else "any"
    ids = sorted(record(RECALLS, rid) for rids in campaigns.values() for rid in rids)
    return {"field": "campaign", "values": values, "need": need}, ids


# Questions per fact and language; {v} is the vehicle as the language writes it.
SPEC_QUESTIONS: Final[Mapping[str, Mapping[str, Sequence[str]]]] = {
    "combined_mpg": {
        "en": (
            "What's the combined MPG of a {v}?",
            "combined mpg {v}",
            "How many miles per gallon does the {v} get?",
        ),
        "es": ("¿Cuál es el consumo combinado en MPG del {v}?", "¿Cuántas millas por galón hace el {v}?"),
        "fr": (
            "Quelle est la consommation mixte en MPG de la {v} ?",
            "Combien de miles par gallon fait la {v} ?",
        ),
        "de": ("Wie hoch ist der kombinierte Verbrauch in MPG des {v}?", "Verbrauch {v}"),
    },
    "city_mpg": {
        "en": ("What's the city mpg of the {v}?",),
        "es": ("¿Cuántas MPG hace el {v} en ciudad?",),
        "fr": ("Quelle est la consommation en ville (MPG) de la {v} ?",),
        "de": ("Wie viel MPG schafft der {v} in der Stadt?",),
    },
    "highway_mpg": {
        "en": ("highway mpg for the {v}?",),
        "es": ("¿Cuántas MPG hace el {v} en carretera?",),
        "fr": ("Quelle est la consommation sur autoroute (MPG) de la {v} ?",),
        "de": ("Wie viel MPG schafft der {v} auf der Autobahn?",),
    },
    "range_mi": {
        "en": ("What's the range of the {v}?", "How far can a {v} go on a charge?"),
        "es": ("¿Qué autonomía tiene el {v}?",),
        "fr": ("Quelle est l'autonomie de la {v} ?", "autonomie d'une {v}"),
        "de": ("Welche Reichweite hat der {v}?",),
    },
    "horsepower": {
        "en": ("How much horsepower does the {v} have?",),
        "es": ("¿Cuántos caballos tiene el {v}?",),
        "fr": ("Combien de chevaux a la {v} ?",),
        "de": ("Wie viel PS hat der {v}?",),
    },
    "annual_fuel_cost_usd": {
        "en": ("What's the annual fuel cost of a {v}?",),
        "es": ("¿Cuánto cuesta al año el combustible del {v}?",),
        "fr": ("Quel est le coût annuel en carburant de la {v} ?",),
        "de": ("Wie hoch sind die jährlichen Kraftstoffkosten des {v}?",),
    },
    "co2_gpm": {
        "en": ("How much CO2 does the {v} emit per mile?",),
        "es": ("¿Cuánto CO2 emite el {v}?",),
        "fr": ("Combien de CO2 émet la {v} ?",),
        "de": ("Wie viel CO2 stößt der {v} aus?",),
    },
}


def name(vehicle: Vehicle, lang: str, order: int = 0) -> str:
    """Write the vehicle as a person would: year first in English, often last elsewhere."""
    model = f"{vehicle.model} {vehicle.qualifier}".strip()
    if lang == "en" or order % 2 == 1:
        return f"{vehicle.year} {vehicle.make} {model}"
    return f"{vehicle.make} {model} {vehicle.year}"


# (vehicle, facts asked) for the spec questions; every language asks each in turn.
SPEC_VEHICLES: Final[Sequence[tuple[Vehicle, Sequence[str]]]] = (
    (Vehicle(2019, "Toyota", "RAV4"), ("combined_mpg", "city_mpg", "highway_mpg", "horsepower")),
    (Vehicle(2019, "Toyota", "RAV4", "Hybrid"), ("combined_mpg", "highway_mpg")),
    (Vehicle(2024, "Tesla", "Model 3"), ("range_mi", "combined_mpg")),
    (Vehicle(2019, "Honda", "CR-V"), ("combined_mpg", "highway_mpg", "horsepower")),
    (Vehicle(2018, "Mazda", "CX-5"), ("combined_mpg", "city_mpg", "horsepower")),
    (Vehicle(2018, "Subaru", "Forester"), ("combined_mpg", "annual_fuel_cost_usd")),
    (Vehicle(2022, "Kia", "Telluride"), ("combined_mpg", "horsepower", "co2_gpm")),
    (Vehicle(2022, "Hyundai", "Palisade"), ("highway_mpg", "combined_mpg")),
    (Vehicle(2017, "Jeep", "Wrangler"), ("combined_mpg", "horsepower")),
    (Vehicle(2022, "Hyundai", "Ioniq 5"), ("range_mi", "horsepower")),
    (Vehicle(2023, "Tesla", "Model Y"), ("range_mi",)),
    (Vehicle(2019, "Nissan", "Leaf"), ("range_mi", "combined_mpg")),
    (Vehicle(2021, "Toyota", "Prius"), ("combined_mpg", "city_mpg")),
    (Vehicle(2020, "Subaru", "Outback"), ("combined_mpg", "co2_gpm")),
    (Vehicle(2021, "Honda", "Accord"), ("combined_mpg", "horsepower")),
    (Vehicle(2018, "Honda", "Civic"), ("horsepower", "combined_mpg")),
    (Vehicle(2020, "Ford", "F-150"), ("combined_mpg",)),
    (Vehicle(2023, "Kia", "EV6"), ("range_mi",)),
    (Vehicle(2022, "Ford", "Maverick"), ("combined_mpg", "annual_fuel_cost_usd")),
    (Vehicle(2017, "Chevrolet", "Malibu"), ("combined_mpg",)),
)
LANGS: Final = ("en", "es", "fr", "de")

COMPARISONS: Final[Sequence[tuple[Vehicle, Vehicle]]] = (
    (Vehicle(2019, "Toyota", "RAV4"), Vehicle(2019, "Honda", "CR-V")),
    (Vehicle(2018, "Mazda", "CX-5"), Vehicle(2018, "Subaru", "Forester")),
    (Vehicle(2022, "Kia", "Telluride"), Vehicle(2022, "Hyundai", "Palisade")),
    (Vehicle(2017, "Jeep", "Wrangler"), Vehicle(2017, "Toyota", "4Runner")),
    (Vehicle(2024, "Tesla", "Model 3"), Vehicle(2022, "Hyundai", "Ioniq 5")),
    (Vehicle(2021, "Honda", "Accord"), Vehicle(2021, "Toyota", "Prius")),
    (Vehicle(2020, "Subaru", "Outback"), Vehicle(2020, "Nissan", "Altima")),
    (Vehicle(2023, "Tesla", "Model Y"), Vehicle(2023, "Kia", "EV6")),
)
COMPARE_QUESTIONS: Final[Mapping[str, Sequence[str]]] = {
    "en": ("compare the {a} and the {b}", "{a} vs {b}"),
    "es": ("compara el {a} con el {b}", "¿{a} o {b}?"),
    "fr": ("compare la {a} et la {b}", "{a} ou {b} ?"),
    "de": ("vergleiche den {a} mit dem {b}", "{a} oder {b}?"),
}

RECALL_VEHICLES: Final[Sequence[Vehicle]] = (
    Vehicle(2019, "Toyota", "RAV4"),
    Vehicle(2019, "Honda", "CR-V"),
    Vehicle(2022, "Hyundai", "Palisade"),
    Vehicle(2020, "Nissan", "Altima"),
    Vehicle(2021, "Toyota", "Highlander"),
    Vehicle(2022, "Kia", "Telluride"),
    Vehicle(2019, "BMW", "X5"),
    Vehicle(2023, "Tesla", "Model Y"),
)
RECALL_QUESTIONS: Final[Mapping[str, Sequence[str]]] = {
    "en": ("Are there any recalls on the {v}?", "recalls for a {v}"),
    "es": ("¿Hay llamadas a revisión para el {v}?", "¿Tiene retiros de seguridad el {v}?"),
    "fr": ("Y a-t-il des rappels pour la {v} ?", "rappels {v}"),
    "de": ("Gibt es Rückrufe für den {v}?", "Rückrufaktionen {v}"),
}

# VINs from ../shared/data/vpic_recorded_responses.jsonl (make, model and year as vPIC decodes them).
VIN_VEHICLES: Final[Sequence[tuple[str, Vehicle]]] = (
    ("1FM5K7D88DGA93688", Vehicle(2013, "Ford", "Explorer")),
    ("1N4AL3AP8DC119742", Vehicle(2013, "Nissan", "Altima")),
    ("1FMCU9GX5DUD94338", Vehicle(2013, "Ford", "Escape")),
    ("1GNKVGKDXFJ238452", Vehicle(2015, "Chevrolet", "Traverse")),
)
VIN_FOLLOW_UPS: Final[Mapping[str, tuple[str, str, str]]] = {
    # language: (decode command, mpg follow-up, recall follow-up)
    "en": ("decode {vin}", "what's its combined mpg?", "any recalls on my car?"),
    "es": ("decodifica {vin}", "¿y su consumo combinado en MPG?", "¿tiene mi coche llamadas a revisión?"),
    "fr": ("décode {vin}", "et sa consommation mixte en MPG ?", "y a-t-il des rappels sur ma voiture ?"),
    "de": ("dekodiere {vin}", "und sein kombinierter Verbrauch in MPG?", "gibt es Rückrufe für mein Auto?"),
}

# (first question, follow-up, fact of the follow-up) after naming a vehicle.
FOLLOW_UPS: Final[Mapping[str, Sequence[tuple[Vehicle, str, str, str]]]] = {
    "en": (
        (Vehicle(2024, "Tesla", "Model 3"), "combined mpg of the {v}?", "and its range?", "range_mi"),
        (
            Vehicle(2019, "Honda", "CR-V"),
            "How much horsepower does the {v} have?",
            "its highway mpg?",
            "highway_mpg",
        ),
    ),
    "es": (
        (
            Vehicle(2023, "Tesla", "Model Y"),
            "¿Cuántas millas por galón hace el {v}?",
            "¿y su autonomía?",
            "range_mi",
        ),
        (
            Vehicle(2018, "Mazda", "CX-5"),
            "¿Cuántos caballos tiene el {v}?",
            "¿y en carretera, cuántas MPG?",
            "highway_mpg",
        ),
    ),
    "fr": (
        (
            Vehicle(2019, "Nissan", "Leaf"),
            "consommation mixte en MPG de la {v} ?",
            "et son autonomie ?",
            "range_mi",
        ),
        (
            Vehicle(2022, "Kia", "Telluride"),
            "Combien de chevaux a la {v} ?",
            "et sa consommation en ville en MPG ?",
            "city_mpg",
        ),
    ),
    "de": (
        (
            Vehicle(2022, "Hyundai", "Ioniq 5"),
            "Wie viel PS hat der {v}?",
            "und seine Reichweite?",
            "range_mi",
        ),
        (Vehicle(2021, "Toyota", "Prius"), "Verbrauch {v}", "und in der Stadt, wie viel MPG?", "city_mpg"),
    ),
}

# Fields no dataset has: the answer must say so and show no number for them.
UNAVAILABLE_QUESTIONS: Final[Mapping[str, Sequence[tuple[str, str]]]] = {
    "en": (
        ("towing_capacity", "What's the towing capacity of a 2020 Ford F-150?"),
        ("curb_weight", "What is the curb weight of the 2019 Toyota RAV4?"),
        ("msrp", "What's the MSRP of a 2022 Kia Telluride?"),
        ("crash_rating", "What crash test rating did the 2018 Honda Civic get?"),
        ("torque", "How much torque does a 2021 Ford Mustang have?"),
        ("seating", "How many seats does the 2022 Hyundai Palisade have?"),
    ),
    "es": (
        ("towing_capacity", "¿Cuánto puede remolcar una Ford F-150 2020?"),
        ("curb_weight", "¿Cuánto pesa en vacío un Toyota RAV4 2019?"),
        ("msrp", "¿Cuál es el precio de un Kia Telluride 2022?"),
        ("torque", "¿Cuánto par motor tiene un Ford Mustang 2021?"),
    ),
    "fr": (
        ("towing_capacity", "Quelle est la capacité de remorquage d'un Ford F-150 2020 ?"),
        ("curb_weight", "Quel est le poids à vide d'un Toyota RAV4 2019 ?"),
        ("msrp", "Quel est le prix d'un Kia Telluride 2022 ?"),
        ("crash_rating", "Quelle note aux crash-tests pour la Honda Civic 2018 ?"),
    ),
    "de": (
        ("towing_capacity", "Wie hoch ist die Anhängelast eines Ford F-150 2020?"),
        ("curb_weight", "Wie schwer ist ein Toyota RAV4 2019 leer?"),
        ("msrp", "Was kostet ein Kia Telluride 2022?"),
        ("torque", "Wie viel Drehmoment hat ein Ford Mustang 2021?"),
    ),
}

BAD_INPUT: Final[Mapping[str, Sequence[tuple[str, str]]]] = {
    "en": (
        ("no-vehicle", "What's the combined mpg?"),
        ("year-outside", "What's the combined mpg of a 1975 Ford Mustang?"),
        ("unknown-make", "How much horsepower does a 2019 Zorblax Quantum have?"),
        ("no-vehicle-recalls", "any recalls on my car?"),
    ),
    "es": (
        ("no-vehicle", "¿Cuál es su autonomía?"),
        ("year-outside", "¿Cuántas millas por galón hace un Ford Mustang 1975?"),
        ("unknown-make", "¿Cuántos caballos tiene un Zorblax Quantum 2019?"),
    ),
    "fr": (
        ("no-vehicle", "Quelle est la consommation mixte en MPG ?"),
        ("year-outside", "autonomie d'une Tesla Model 3 2031"),
        ("unknown-make", "Combien de chevaux a la Zorblax Quantum 2019 ?"),
    ),
    "de": (
        ("no-vehicle", "Wie viel PS?"),
        ("year-outside", "Verbrauch Ford Mustang 1975"),
        ("unknown-make", "Wie viel PS hat der Zorblax Quantum 2019?"),
    ),
}
LONG_QUESTION_BYTES: Final = 5000


def _long_question() -> str:
    filler = "I have been thinking about cars for a long time and I would like to know more. "
    text = "What's the combined MPG of a 2019 Toyota RAV4? " + filler * 70
    return text[:LONG_QUESTION_BYTES]


def _case(
    case_id: str,
    turns: Sequence[str],
    lang: str,
    kind: str,
    *,
    tool: str | None,
    vehicles: Sequence[Vehicle] = (),
    facts: Sequence[dict[str, Any]] = (),
    retrieval: Sequence[Sequence[str]] = (),
    refusal: bool | None = None,
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "id": case_id,
        "turns": list(turns),
        "language": lang,
        "kind": kind,
        "expected": {
            "tool": tool,
            "vehicles": [v.args() for v in vehicles],
            "facts": list(facts),
            "retrieval": [list(group) for group in retrieval],
            "refusal": refusal,
        },
        "tags": [kind, lang, *tags],
    }


def _fact_case(
    data: Data,
    case_id: str,
    turns: Sequence[str],
    lang: str,
    kind: str,
    vehicle: Vehicle,
    expected: dict[str, Any],
    *,
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """A case answered by one fact of one vehicle (`get_specs`), resting on its EPA configurations."""
    return _case(
        case_id,
        turns,
        lang,
        kind,
        tool="get_specs",
        vehicles=[vehicle],
        facts=[expected],
        retrieval=[spec_records(data, vehicle)],
        refusal=False,
        tags=tags,
    )


def _recall_case(
    case_id: str,
    turns: Sequence[str],
    lang: str,
    kind: str,
    vehicle: Vehicle,
    expectation: tuple[dict[str, Any], list[str]],
) -> dict[str, Any]:
    """A case answered by a vehicle's recall campaigns (`find_recalls`); see `recall_expectation`."""
    campaigns, ids = expectation
    return _case(
        case_id,
        turns,
        lang,
        kind,
        tool="find_recalls",
        vehicles=[vehicle],
        facts=[campaigns],
        retrieval=[ids],
        refusal=False,
    )


def _slug(vehicle: Vehicle) -> str:
    text = f"{vehicle.year}-{vehicle.make}-{vehicle.model}-{vehicle.qualifier}".strip("-").lower()
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in text).replace("--", "-")


def build(data: Data) -> list[dict[str, Any]]:
    """Return every case, in a stable order."""
    cases: list[dict[str, Any]] = []
    turn = 0
    for vehicle, asked in SPEC_VEHICLES:
        for fact in asked:
            expected = spec_fact(data, vehicle, fact)
            if expected is None:
                raise ValueError(f"the data has no {fact} for {vehicle}: fix SPEC_VEHICLES")
            for lang in LANGS:
                phrasings = SPEC_QUESTIONS[fact][lang]
                question = phrasings[turn % len(phrasings)].format(v=name(vehicle, lang, turn))
                turn += 1
                cases.append(
                    _fact_case(
                        data,
                        f"spec-{lang}-{_slug(vehicle)}-{fact.replace('_', '-')}",
                        [question],
                        lang,
                        "spec",
                        vehicle,
                        expected,
                        tags=[fact, *(["multi-config"] if len(_configs(data, vehicle)) > 1 else [])],
                    )
                )
    for index, (a, b) in enumerate(COMPARISONS):
        for lang in LANGS:
            phrasings = COMPARE_QUESTIONS[lang]
            question = phrasings[index % len(phrasings)].format(
                a=name(a, lang, index), b=name(b, lang, index)
            )
            facts: list[dict[str, Any]] = []
            for vehicle in (a, b):
                expected = spec_fact(data, vehicle, "combined_mpg")
                if expected is None:
                    raise ValueError(f"no combined MPG for {vehicle}: fix COMPARISONS")
                facts.append({**expected, "need": "any"})
            cases.append(
                _case(
                    f"compare-{lang}-{_slug(a)}-vs-{_slug(b)}",
                    [question],
                    lang,
                    "compare",
                    tool="compare_vehicles",
                    vehicles=[a, b],
                    facts=facts,
                    retrieval=[spec_records(data, a), spec_records(data, b)],
                    refusal=False,
                )
            )
    for index, vehicle in enumerate(RECALL_VEHICLES):
        expectation = recall_expectation(data, vehicle)
        if expectation is None:
            raise ValueError(f"no recalls for {vehicle}: fix RECALL_VEHICLES")
        for lang in LANGS:
            phrasings = RECALL_QUESTIONS[lang]
            question = phrasings[index % len(phrasings)].format(v=name(vehicle, lang, index))
            cases.append(
                _recall_case(
                    f"recall-{lang}-{_slug(vehicle)}", [question], lang, "recall", vehicle, expectation
                )
            )
    for lang in LANGS:
        for vehicle, first, follow_up, fact in FOLLOW_UPS[lang]:
            expected = spec_fact(data, vehicle, fact)
            if expected is None:
                raise ValueError(f"no {fact} for {vehicle}: fix FOLLOW_UPS")
            cases.append(
                _fact_case(
                    data,
                    f"follow-{lang}-{_slug(vehicle)}-{fact.replace('_', '-')}",
                    [first.format(v=name(vehicle, lang)), follow_up],
                    lang,
                    "follow-up",
                    vehicle,
                    expected,
                )
            )
    for index, lang in enumerate(LANGS):
        vin, vehicle = VIN_VEHICLES[index]
        decode, mpg, recalls = VIN_FOLLOW_UPS[lang]
        expected = spec_fact(data, vehicle, "combined_mpg")
        recall = recall_expectation(data, vehicle)
        if expected is None or recall is None:
            raise ValueError(f"{vehicle} needs both MPG and recalls: fix VIN_VEHICLES")
        cases.append(
            _fact_case(
                data,
                f"vin-{lang}-{_slug(vehicle)}-combined-mpg",
                [decode.format(vin=vin), mpg],
                lang,
                "vin-flow",
                vehicle,
                expected,
            )
        )
        cases.append(
            _recall_case(
                f"vin-{lang}-{_slug(vehicle)}-recalls",
                [decode.format(vin=vin), recalls],
                lang,
                "vin-flow",
                vehicle,
                recall,
            )
        )
    for lang in LANGS:
        for unavailable, question in UNAVAILABLE_QUESTIONS[lang]:
            cases.append(
                _case(
                    f"unavailable-{lang}-{unavailable.replace('_', '-')}",
                    [question],
                    lang,
                    "unavailable",
                    tool=None,
                    refusal=True,
                    tags=[unavailable],
                )
            )
    for lang in LANGS:
        for what, question in BAD_INPUT[lang]:
            cases.append(
                _case(
                    f"bad-{lang}-{what}", [question], lang, "bad-input", tool=None, refusal=True, tags=[what]
                )
            )
    cases.append(
        _case(
            "bad-en-5kb-question",
            [_long_question()],
            "en",
            "bad-input",
            tool=None,
            refusal=None,
            tags=["long"],
        )
    )
    return cases


def write(cases: Sequence[Mapping[str, Any]], out: Path) -> None:
    """Write one JSON object per line, keys in a stable order."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(case, ensure_ascii=False, sort_keys=False) for case in cases]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Build the dataset; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m evals.build_specs_dataset", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSONL file to write")
    args = parser.parse_args(argv)
    cases = build(load(args.data_dir))
    ids = [c["id"] for c in cases]
    if len(ids) != len(set(ids)):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        print(f"duplicate case ids: {duplicates}", file=sys.stderr)  # noqa: T201
        return 2
    write(cases, args.out)
    print(f"{len(cases)} cases written to {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
