from __future__ import annotations

import pytest

from tools.domain.facts import FACTS_BY_KEY, UNAVAILABLE
from tools.domain.spec_query import (
    DESCRIPTIVE,
    MAX_QUESTION_CHARS,
    Vocabulary,
    configuration_words,
    fold,
    parse_question,
    split_vehicles,
)
from tools.specs import KnowledgeDeps, SpecNotFound, VocabularyCache, search_specs

ROWS = [
    # (make_key, make, model_key, base model, year) as the capability loads them
    *[("toyota", "Toyota", "rav4", "RAV4", y) for y in range(1997, 2027)],
    *[("toyota", "Toyota", "corolla", "Corolla", y) for y in range(1984, 2027)],
    *[("toyota", "Toyota", "prius", "Prius", y) for y in range(2001, 2027)],
    ("toyota", "Toyota", "camry", "Camry", 2019),
    *[("honda", "Honda", "civic", "Civic", y) for y in range(1984, 2027)],
    ("honda", "Honda", "crv", "CR-V", 2019),
    ("honda", "Honda", "fit", "Fit", 2015),
    ("honda", "Honda", "accord", "Accord", 2020),
    ("ford", "Ford", "f150", "F150", 2019),
    ("ford", "Ford", "mustang", "Mustang", 2019),
    ("tesla", "Tesla", "model3", "Model 3", 2024),
    ("tesla", "Tesla", "models", "Model S", 2024),
    ("mazda", "Mazda", "3", "3", 2015),
    ("mazda", "Mazda", "cx5", "CX-5", 2019),
    ("chevrolet", "Chevrolet", "boltev", "Bolt EV", 2020),
    ("chevrolet", "Chevrolet", "bolteuv", "Bolt EUV", 2022),
    ("volkswagen", "Volkswagen", "golfgti", "Golf/GTI", 2017),
    ("lexus", "Lexus", "is", "IS", 2019),
    ("ram", "Ram", "1500", "1500", 2020),
    ("bmw", "BMW", "x5", "X5", 2020),
    ("kia", "Kia", "telluride", "Telluride", 2022),
]
VOCAB = Vocabulary.build(ROWS)


def vehicles(text: str) -> list[tuple[int | None, str | None, str | None, str | None]]:
    return [(v.year, v.make, v.model, v.configuration) for v in parse_question(text, VOCAB).vehicles]


# ---------------------------------------------------------------- vehicles


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is the mpg of the 2019 Toyota RAV4?", [(2019, "Toyota", "RAV4", None)]),
        ("2019 rav4 hybrid AWD city mpg", [(2019, "Toyota", "RAV4", "hybrid AWD")]),
        ("¿Cuál es el consumo del Mazda 3 2015?", [(2015, "Mazda", "3", None)]),
        ("Quelle est l'autonomie de la Tesla Model 3 2024 ?", [(2024, "Tesla", "Model 3", None)]),
        ("Wie viel PS hat der 2019 Ford F-150?", [(2019, "Ford", "F150", None)]),
        ("CR-V 2019 fuel economy", [(2019, "Honda", "CR-V", None)]),
        ("mazda3 2015", [(2015, "Mazda", "3", None)]),
        ("Chevy Bolt range", [(None, "Chevrolet", "Bolt EV", None)]),
        ("VW Golf Kofferraum 2017", [(2017, "Volkswagen", "Golf/GTI", None)]),
        ("2019 Toyota Camry 2.5L manual", [(2019, "Toyota", "Camry", "2.5L manual")]),
        ("ram 1500 diesel", [(None, "Ram", "1500", "diesel")]),
        ("Toyota", [(None, "Toyota", None, None)]),
    ],
)
def test_vehicles_are_read_when_the_question_names_them(
    text: str, expected: list[tuple[int | None, str | None, str | None, str | None]]
) -> None:
    assert vehicles(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Honda Civic vs Toyota Corolla 2020",
        "compare the 2020 Civic and the Corolla",
        "Compara el Civic 2020 con el Corolla 2020",
        "Comparer la Civic 2020 et la Corolla 2020",
        "2020 Civic oder 2020 Corolla?",
        "Civic versus Corolla (2020)",
        "civic vs. corolla 2020",
    ],
)
def test_two_vehicles_are_split_when_compared_in_any_language(text: str) -> None:
    parsed = parse_question(text, VOCAB)

    assert [(v.year, v.make_key, v.model_key) for v in parsed.vehicles] == [
        (2020, "honda", "civic"),
        (2020, "toyota", "corolla"),
    ]
    assert parsed.comparison


def test_each_vehicle_keeps_its_own_year_when_years_differ() -> None:
    assert [(v.year, v.model) for v in split_vehicles("2015 Honda Fit vs 2019 Honda CR-V", VOCAB)] == [
        (2015, "Fit"),
        (2019, "CR-V"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "compare the 2024 Tesla Model 3 and the 2015 Mazda 3",
        "compara el Tesla Model 3 2024 con el Mazda 3 2015",
        "vergleiche den Tesla Model 3 2024 mit dem Mazda 3 2015",
        "Tesla Model 3 2024 vs 2015 Mazda 3",
    ],
)
def test_years_attach_to_the_right_vehicle_whichever_side_they_are_written(text: str) -> None:
    assert [(v.year, v.model) for v in split_vehicles(text, VOCAB)] == [(2024, "Model 3"), (2015, "3")]


def test_four_vehicles_are_split_when_listed() -> None:
    found = split_vehicles("Civic, Corolla, Mustang or Prius?", VOCAB)

    assert [v.model_key for v in found] == ["civic", "corolla", "mustang", "prius"]


@pytest.mark.parametrize(
    "text",
    ["is it a good car", "Fit for purpose?", "what is 3 times 3", "hello there", "the range of prices", ""],
)
def test_common_words_and_bare_numbers_are_not_models_when_no_make_precedes_them(text: str) -> None:
    assert parse_question(text, VOCAB).vehicles == ()


def test_a_word_model_counts_when_its_make_precedes_it() -> None:
    assert vehicles("Is the Lexus IS AWD?") == [(None, "Lexus", "IS", "AWD")]
    assert vehicles("2015 Honda Fit") == [(2015, "Honda", "Fit", None)]


def test_the_same_vehicle_named_twice_is_one_vehicle() -> None:
    assert len(parse_question("RAV4 2019: is the 2019 RAV4 good?", VOCAB).vehicles) == 1


# ---------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("text", "fuel"),
    [
        ("best hybrid SUV", "hybrid"),
        ("un SUV híbrido", "hybrid"),
        ("plug-in hybrid with the longest range", "plug-in hybrid"),
        ("PHEV", "plug-in hybrid"),
        ("híbrido enchufable", "plug-in hybrid"),
        ("hybride rechargeable", "plug-in hybrid"),
        ("electric cars 2024", "electric"),
        ("coche eléctrico", "electric"),
        ("voiture électrique", "electric"),
        ("Elektroauto", "electric"),
        ("an EV", "electric"),
        ("diesel pickup", "diesel"),
        ("E85 flex fuel", "flex-fuel"),
        ("natural gas Civic", "cng"),
        ("hydrogen fuel cell", "hydrogen"),
        ("Wasserstoff", "hydrogen"),
        ("gasoline sedan", None),
    ],
)
def test_fuel_is_read_when_named(text: str, fuel: str | None) -> None:
    assert parse_question(text, VOCAB).fuel == fuel


@pytest.mark.parametrize(
    ("text", "vehicle_class"),
    [
        ("best SUV", "suv"),
        ("un todoterreno", "suv"),
        ("crossover", "suv"),
        ("pickup truck", "pickup"),
        ("a pick-up", "pickup"),
        ("sedan", "car"),
        ("berline", "car"),
        ("Limousine", "car"),
        ("minivan", "minivan"),
        ("monospace", "minivan"),
        ("station wagon", "wagon"),
        ("Kombi", "wagon"),
        ("cargo van", "van"),
        ("two-seater roadster", "two-seater"),
    ],
)
def test_class_is_read_when_named(text: str, vehicle_class: str) -> None:
    assert parse_question(text, VOCAB).vehicle_class == vehicle_class


@pytest.mark.parametrize(
    ("text", "drive"),
    [
        ("AWD", "awd"),
        ("all-wheel drive", "awd"),
        ("4x4", "awd"),
        ("4WD", "awd"),
        ("tracción integral", "awd"),
        ("transmission intégrale", "awd"),
        ("Allradantrieb", "awd"),
        ("FWD", "fwd"),
        ("front-wheel drive", "fwd"),
        ("traction avant", "fwd"),
        ("Frontantrieb", "fwd"),
        ("RWD", "rwd"),
        ("tracción trasera", "rwd"),
        ("Hinterradantrieb", "rwd"),
    ],
)
def test_drive_is_read_when_named(text: str, drive: str) -> None:
    assert parse_question(text, VOCAB).drive == drive


def test_year_is_read_when_written_alone() -> None:
    assert parse_question("best hybrid of 2020", VOCAB).year == 2020


def test_a_year_outside_the_data_is_still_read_so_the_answer_can_say_so() -> None:
    assert vehicles("1975 Toyota Corolla mpg") == [(1975, "Toyota", "Corolla", None)]


def test_a_campaign_number_is_not_a_year() -> None:
    assert parse_question("what is recall 20V286?", VOCAB).year is None


# ---------------------------------------------------------------- facts


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("What's the combined MPG?", ("combined_mpg",)),
        ("city mpg", ("city_mpg",)),
        ("highway fuel economy", ("highway_mpg",)),
        ("city and highway mpg", ("city_mpg", "highway_mpg")),
        ("¿Cuál es el consumo?", ("combined_mpg",)),
        ("consumo en ciudad", ("city_mpg",)),
        ("consommation sur autoroute", ("highway_mpg",)),
        ("Verbrauch", ("combined_mpg",)),
        ("Verbrauch innerorts", ("city_mpg",)),
        ("electric range", ("range_mi", "phev_electric_range_mi")),
        ("autonomía", ("range_mi", "phev_electric_range_mi")),
        ("autonomie", ("range_mi", "phev_electric_range_mi")),
        ("Reichweite", ("range_mi", "phev_electric_range_mi")),
        ("CO2 emissions", ("co2_gpm",)),
        ("emisiones", ("co2_gpm",)),
        ("Ausstoß", ("co2_gpm",)),
        ("annual fuel cost", ("annual_fuel_cost_usd",)),
        ("coût du carburant", ("annual_fuel_cost_usd",)),
        ("Spritkosten", ("annual_fuel_cost_usd",)),
        ("¿Cuánto cuesta al año el combustible?", ("annual_fuel_cost_usd",)),
        ("Combien coûte le carburant par an ?", ("annual_fuel_cost_usd",)),
        ("how much horsepower", ("horsepower",)),
        ("¿cuántos caballos?", ("horsepower",)),
        ("potencia", ("horsepower",)),
        ("combien de chevaux", ("horsepower",)),
        ("puissance", ("horsepower",)),
        ("wie viel PS", ("horsepower",)),
        ("Leistung", ("horsepower",)),
        ("passenger volume", ("passenger_volume_cuft",)),
        ("trunk space", ("luggage_volume_cuft",)),
        ("maletero", ("luggage_volume_cuft",)),
        ("volume du coffre", ("luggage_volume_cuft",)),
        ("Kofferraum", ("luggage_volume_cuft",)),
        ("what engine", ("engine", "ev_motor")),
        ("which transmission", ("transmission",)),
        ("caja de cambios", ("transmission",)),
        ("Getriebe", ("transmission",)),
        ("charging time", ("charge_hours_240v",)),
    ],
)
def test_asked_facts_are_read_in_every_language(text: str, facts: tuple[str, ...]) -> None:
    assert parse_question(text, VOCAB).facts == facts


def test_every_fact_key_read_is_a_known_key() -> None:
    parsed = parse_question("mpg range co2 fuel cost horsepower trunk engine transmission kwh gears", VOCAB)

    assert parsed.facts
    assert all(k in FACTS_BY_KEY or k in DESCRIPTIVE for k in parsed.facts)


@pytest.mark.parametrize(
    ("text", "unavailable"),
    [
        ("What's the towing capacity of a 2020 Ford F-150?", ("towing_capacity",)),
        ("¿Cuánto puede remolcar la F-150?", ("towing_capacity",)),
        ("capacité de remorquage", ("towing_capacity",)),
        ("Anhängelast", ("towing_capacity",)),
        ("payload of the Ram 1500", ("payload",)),
        ("carga útil", ("payload",)),
        ("charge utile", ("payload",)),
        ("Zuladung", ("payload",)),
        ("curb weight", ("curb_weight",)),
        ("how much does it weigh", ("curb_weight",)),
        ("¿Cuánto pesa?", ("curb_weight",)),
        ("poids à vide", ("curb_weight",)),
        ("Leergewicht", ("curb_weight",)),
        ("dimensions", ("dimensions",)),
        ("how long is the RAV4", ("dimensions",)),
        ("longitud", ("dimensions",)),
        ("longueur", ("dimensions",)),
        ("Länge und Breite", ("dimensions",)),
        ("how many seats", ("seating",)),
        ("¿cuántos asientos?", ("seating",)),
        ("combien de places", ("seating",)),
        ("wie viele Sitzplätze", ("seating",)),
        ("torque", ("torque",)),
        ("par motor", ("torque",)),
        ("couple moteur", ("torque",)),
        ("Drehmoment", ("torque",)),
        ("What's the MSRP of a 2022 Kia Telluride?", ("msrp",)),
        ("¿Cuánto cuesta un CR-V?", ("msrp",)),
        ("prix", ("msrp",)),
        ("Was kostet ein Golf?", ("msrp",)),
        ("crash test rating", ("crash_rating",)),
        ("calificación de seguridad", ("crash_rating",)),
        ("sécurité", ("crash_rating",)),
        ("Crashtest Sterne", ("crash_rating",)),
    ],
)
def test_unavailable_fields_are_read_in_every_language(text: str, unavailable: tuple[str, ...]) -> None:
    parsed = parse_question(text, VOCAB)

    assert parsed.unavailable == unavailable
    assert all(k in UNAVAILABLE for k in parsed.unavailable)


@pytest.mark.parametrize(
    "text",
    [
        "how much does it cost to fuel a Prius",
        "EPA test weight of the RAV4",
        "recall for the seat belts",
        "annual fuel cost",
        "2019 RAV4 mpg",
    ],
)
def test_available_questions_are_not_flagged_unavailable(text: str) -> None:
    assert parse_question(text, VOCAB).unavailable == ()


@pytest.mark.parametrize(
    "text",
    [
        "recalls on my 2019 RAV4",
        "¿Hay llamadas a revisión?",
        "¿Tiene retiros de seguridad?",
        "rappels",
        "Rückruf",
        "any defects?",
    ],
)
def test_recall_questions_are_recognised_in_every_language(text: str) -> None:
    assert parse_question(text, VOCAB).recalls


# ---------------------------------------------------------------- terms, text, limits


def test_terms_hold_the_content_words_and_the_english_fact_labels() -> None:
    parsed = parse_question("¿Cuántos caballos tiene el 2019 Toyota RAV4?", VOCAB)

    assert {"caballos", "2019", "toyota", "rav4", "horsepower"} <= set(parsed.terms)
    assert "el" not in parsed.terms


def test_terms_are_letters_and_digits_only_when_the_question_has_sql_in_it() -> None:
    parsed = parse_question("'; DROP TABLE vehicle_documents; -- & | !", VOCAB)

    assert all(t.isalnum() for t in parsed.terms)


def test_canonical_text_is_english_when_the_question_is_not() -> None:
    parsed = parse_question("¿Cuál es la autonomía del Tesla Model 3 2024?", VOCAB)

    assert parsed.canonical_text() == "2024 Tesla Model 3 electric range electric range of the plug-in hybrid"


def test_long_questions_are_clipped_when_parsed() -> None:
    text = "2019 RAV4 mpg " * 2000
    parsed = parse_question(text, VOCAB)

    assert parsed.clipped
    assert len(parsed.text) == MAX_QUESTION_CHARS
    assert len(parsed.vehicles) == 1


def test_configuration_words_are_normalised() -> None:
    assert configuration_words("Hybrid all-wheel drive 2.5 L") == "hybrid AWD 2.5L"
    assert configuration_words("4Dr") is None


def test_fold_strips_accents_and_eszett() -> None:
    assert fold("Ausstoß Autonomía Électrique") == "ausstoss autonomia electrique"


def test_vocabulary_resolves_aliases_and_leftover_words() -> None:
    assert VOCAB.resolve_make("Chevy") == "chevrolet"
    assert VOCAB.resolve_make("MERCEDES BENZ") is None  # not in this vocabulary
    entry, rest = VOCAB.resolve_model("toyota", "RAV4 Hybrid AWD")
    assert entry is not None
    assert entry.name == "RAV4"
    assert rest == "Hybrid AWD"
    entry, rest = VOCAB.resolve_model("honda", "CRV")
    assert entry is not None
    assert entry.name == "CR-V"
    assert rest == ""
    assert VOCAB.resolve_model("honda", "Pilot") == (None, "Pilot")
    assert VOCAB.years == (1984, 2026)


class _LoadedVocabulary(VocabularyCache):
    async def get_versioned(self, sessions, dataset):  # type: ignore[no-untyped-def]
        return VOCAB, "test"


async def test_a_search_for_a_make_the_data_does_not_have_is_an_error_with_suggestions() -> None:
    # no database: the make is checked before anything is read
    deps = KnowledgeDeps(sessions=None, vocabulary=_LoadedVocabulary())  # type: ignore[arg-type]

    with pytest.raises(SpecNotFound) as e:
        await search_specs("which SUVs get the best mpg?", deps=deps, make="Toyotta")

    assert e.value.reason == "unknown_make"
    assert "Toyota" in e.value.suggestions
