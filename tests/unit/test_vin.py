"""The `Vin` value object: normalisation, validation, check digit, model year, suggestions, finding."""

import string
import unicodedata

import pytest
import ultravin
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from offline_rows import offline_rows
from pydantic import BaseModel, ConfigDict, ValidationError

from tools.domain.vehicle import (
    DecodedVehicle,
    DecodeSource,
    fields_set_for,
    trusted_fields,
    vehicle_from_owned_vpic,
    vehicle_from_vpic,
)
from tools.domain.vin import (
    ALPHABET,
    LOOK_ALIKES,
    VIN_LENGTH,
    Vin,
    check_digit,
    find_vins,
    has_valid_check_digit,
    mask_vin,
    normalise,
    suggest,
    year_cycle_candidates,
)
from tools.errors import InvalidInput, InvalidVin
from tools.providers.base import DecodeRequest
from tools.providers.ultravin import EMPTY_VARIABLES, UltravinDecoder
from tools.vin import VinDeps, VinResult, decode, decode_many

PROPERTY = settings(max_examples=200, deadline=None)
REASONS = frozenset({"empty", "too_short", "too_long", "forbidden_letters", "invalid_characters"})

CIVIC = "1HGCM82633A004352"  # Wikipedia's check-digit example: valid, check digit 3
CFR_EXAMPLE = "1M8GDM9AXKP042788"  # 49 CFR 565 / Wikipedia: valid, check digit X
TESLA = "5YJ3E1EA7KF317000"  # position 9 holds 7, the sum gives 2


def _with_check_digit(chars: str | list[str]) -> str:
    """Build a VIN from 16 characters by computing position 9."""
    draft = "".join(chars[:8]) + "0" + "".join(chars[8:])
    return draft[:8] + check_digit(draft) + draft[9:]


def _typos_of(ch: str) -> list[str]:
    # What a person may type for `ch`: every key of LOOK_ALIKES listing `ch` as a meaning.
    return sorted(typed for typed, meant in LOOK_ALIKES.items() if ch in meant)


valid_vins = st.text(alphabet=sorted(ALPHABET), min_size=16, max_size=16).map(_with_check_digit)


def _parse_outcome(raw: str) -> Vin | InvalidVin:
    try:
        return Vin.parse(raw)
    except InvalidVin as e:
        return e


def _suggestions_for(raw: str) -> tuple[str, ...]:
    """Return what the user is offered for `raw`: the error's suggestions or the VIN's own."""
    outcome = _parse_outcome(raw)
    if isinstance(outcome, InvalidVin):
        return outcome.suggestions
    assert not outcome.check_digit_valid
    return outcome.suggestions()


# ---------------------------------------------------------------- normalisation


@PROPERTY
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="1hgAZ09IOQ -–—._/\t\u00a0\u0301\u0308ßﬁ１Ａ①ΐ"),
    )
)
def test_normalise_is_idempotent_when_given_any_text(raw):
    once = normalise(raw)
    assert normalise(once) == once


@pytest.mark.parametrize(
    "raw",
    [
        "1hgcm82633a004352",
        "  1HGCM82633A004352\n",
        "1HG CM826 33A004352",
        "1HG-CM826-33A004352",
        "1hg–cm826–33a004352",
        "１ＨＧＣＭ８２６３３Ａ００４３５２",
        "1HG\u00a0CM826\u00a033A004352",
    ],
)
def test_parse_returns_the_canonical_vin_when_case_spacing_or_dashes_differ(raw):
    assert Vin.parse(raw).value == CIVIC


# ---------------------------------------------------------------- round trip


@PROPERTY
@given(valid_vins)
def test_parse_round_trips_when_the_vin_is_valid(vin):
    parsed = Vin.parse(vin)

    assert parsed.value == vin
    assert str(parsed) == vin
    assert Vin.parse(str(parsed)) == parsed
    assert parsed.check_digit_valid
    assert parsed.suggestions() == ()


@PROPERTY
@given(valid_vins)
def test_parse_round_trips_when_the_vin_is_written_lowercase_and_grouped(vin):
    written = f"  {vin[:3].lower()}-{vin[3:9]} {vin[9:].lower()} "

    assert Vin.parse(written).value == vin


# ---------------------------------------------------------------- typos


@PROPERTY
@given(valid_vins, st.data())
def test_original_is_suggested_when_one_character_is_replaced_by_a_look_alike(vin, data):
    """A typo is one character swapped for a look-alike from LOOK_ALIKES.

    That covers the symmetric confusions (S/5, B/8, Z/2, G/6, D/0, L/1, U/V) and a
    real VIN character typed as a letter no VIN uses (0 as O or Q, 1 as I). The
    typo is either rejected (I/O/Q) or parses with a failing check digit; either
    way the original VIN is among the suggestions, and every suggestion passes
    the check digit.
    """
    typos = [(i, typed) for i, ch in enumerate(vin) for typed in _typos_of(ch)]
    assume(typos)
    i, typed = data.draw(st.sampled_from(typos))
    typo = vin[:i] + typed + vin[i + 1 :]

    suggestions = _suggestions_for(typo)

    assert vin in suggestions
    assert all(has_valid_check_digit(s) for s in suggestions)


@PROPERTY
@given(valid_vins, st.data())
def test_too_long_suggests_the_original_when_one_character_is_inserted(vin, data):
    i = data.draw(st.integers(min_value=0, max_value=VIN_LENGTH))
    extra = data.draw(st.sampled_from(sorted(ALPHABET)))

    with pytest.raises(InvalidVin) as caught:
        Vin.parse(vin[:i] + extra + vin[i:])

    assert caught.value.reason == "too_long"
    assert vin in caught.value.suggestions
    assert all(has_valid_check_digit(s) for s in caught.value.suggestions)


def test_too_long_suggests_the_vin_without_the_extra_character_when_eighteen_are_given():
    with pytest.raises(InvalidVin) as caught:
        Vin.parse(CIVIC[:5] + "7" + CIVIC[5:])

    assert caught.value.reason == "too_long"
    assert CIVIC in caught.value.suggestions


def test_forbidden_letters_are_rejected_with_the_fix_when_zeros_are_typed_as_o_and_q():
    with pytest.raises(InvalidVin) as caught:
        Vin.parse("1HGCM82633AOQ4352")

    assert caught.value.code == "invalid_vin"
    assert caught.value.reason == "forbidden_letters"
    assert caught.value.suggestions == (CIVIC,)
    assert "I, O or Q" in caught.value.public_message


def test_no_suggestion_is_offered_when_no_look_alike_fix_passes_the_check_digit():
    # "0" replacing "O" would give TESLA, whose check digit fails: not offered.
    typo = TESLA[:-1] + "O"

    with pytest.raises(InvalidVin) as caught:
        Vin.parse(typo)

    assert caught.value.reason == "forbidden_letters"
    assert all(has_valid_check_digit(s) for s in caught.value.suggestions)
    assert TESLA not in caught.value.suggestions


@PROPERTY
@given(vin=valid_vins, data=st.data())
def test_a_vins_own_suggestions_are_what_suggest_gives_for_its_text_when_its_check_digit_fails(vin, data):
    """`Vin.suggestions` skips `suggest`'s normalising; the answer must not change."""
    position = data.draw(st.integers(min_value=0, max_value=VIN_LENGTH - 1))
    typo = vin[:position] + data.draw(st.sampled_from(sorted(ALPHABET))) + vin[position + 1 :]
    parsed = Vin.parse(typo)

    assert parsed.check_digit_valid == has_valid_check_digit(typo)
    assert parsed.suggestions() == (() if parsed.check_digit_valid else suggest(typo))


def test_suggest_returns_nothing_when_the_text_is_not_vin_length():
    assert suggest(CIVIC[:-1]) == ()


# ---------------------------------------------------------------- check digit


@pytest.mark.parametrize(
    ("vin", "digit"),
    [
        (CIVIC, "3"),
        (CFR_EXAMPLE, "X"),
        ("1G1ZT53826F109149", "2"),
        ("JH4KA7561PC008269", "1"),
    ],
)
def test_check_digit_holds_when_the_vin_is_a_published_valid_example(vin, digit):
    assert check_digit(vin) == digit
    assert has_valid_check_digit(vin)
    assert Vin.parse(vin).check_digit_valid


@pytest.mark.parametrize(
    ("vin", "expected"),
    [
        (TESLA, "2"),
        ("WBA3A5C51CF256651", "7"),
    ],
)
def test_failed_check_digit_is_a_warning_not_an_error_when_position_9_is_wrong(vin, expected):
    parsed = Vin.parse(vin)

    assert not parsed.check_digit_valid
    assert parsed.expected_check_digit == expected


@pytest.mark.parametrize("text", ["", CIVIC[:-1], CIVIC + "1", CIVIC.lower(), "1HGCM8263IA004352"])
def test_has_valid_check_digit_is_false_when_the_text_is_not_seventeen_vin_characters(text):
    assert not has_valid_check_digit(text)


def test_check_digit_raises_value_error_when_the_text_is_not_seventeen_vin_characters():
    with pytest.raises(ValueError, match="17"):
        check_digit("1HGCM8263")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   \t\n", "empty"),
        ("- - -", "empty"),
        (CIVIC[:-1], "too_short"),
        ("1HG", "too_short"),
        (CIVIC + "4", "too_long"),
        ("1HGCM82633A0043I2", "forbidden_letters"),
        ("1HGCM82633A00435é", "invalid_characters"),
        ("1HGCM82633А004352", "invalid_characters"),  # Cyrillic А
        ("1HGCM82633A00435🚗", "invalid_characters"),
        ("\x00" * 17, "invalid_characters"),
        ("1HGCM82633A004352'; DROP TABLE vins;--", "invalid_characters"),
        ("' OR '1'='1", "invalid_characters"),
        ("<script>alert(1)</script>", "invalid_characters"),
        ("<b>1HGCM82633A004352</b>", "invalid_characters"),
        ("A" * 10_240, "too_long"),
        ("I" * 10_240, "too_long"),
        (" " * 10_240, "empty"),
        ("é" * 10_240, "invalid_characters"),
    ],
)
def test_parse_raises_invalid_vin_with_a_stable_reason_when_input_is_bad(raw, reason):
    with pytest.raises(InvalidVin) as caught:
        Vin.parse(raw)

    error = caught.value
    assert error.code == "invalid_vin"
    assert error.reason == reason
    assert 0 < len(error.public_message) < 200
    assert len(error.raw) <= 65
    assert error.to_dict()["reason"] == reason


@PROPERTY
@given(st.text())
def test_parse_returns_a_vin_or_a_known_reason_when_given_any_text(raw):
    outcome = _parse_outcome(raw)

    if isinstance(outcome, InvalidVin):
        assert outcome.reason in REASONS
        assert outcome.public_message
    else:
        assert len(outcome.value) == VIN_LENGTH
        assert set(outcome.value) <= ALPHABET


def test_parse_rejects_ten_kilobytes_as_too_long_with_a_clipped_raw():
    raw = ("1HGCM82633A004352 " * 600)[:10_240]

    with pytest.raises(InvalidVin) as caught:
        Vin.parse(raw)

    assert caught.value.reason == "too_long"
    assert caught.value.raw == raw[:64] + "…"


def test_vin_constructor_raises_value_error_when_the_value_is_not_canonical():
    with pytest.raises(ValueError, match=r"Vin\.parse"):
        Vin(CIVIC.lower())


# ---------------------------------------------------------------- model year


def _vin_with(*, position_7: str, position_10: str) -> Vin:
    chars = list(CIVIC[:8] + CIVIC[9:])  # 16 characters without the check digit
    chars[6] = position_7
    chars[8] = position_10  # position 10 is index 9 of the VIN, 8 of the 16
    return Vin(_with_check_digit(chars))


def test_model_year_prefers_the_2010_cycle_when_position_7_is_a_letter():
    vin = _vin_with(position_7="E", position_10="A")

    assert vin.model_year_candidates(latest=2030) == (2010, 1980)


def test_model_year_prefers_the_1980_cycle_when_position_7_is_a_digit():
    vin = _vin_with(position_7="2", position_10="A")

    assert vin.model_year_candidates(latest=2030) == (1980, 2010)


def test_model_year_drops_years_when_they_are_after_latest():
    assert _vin_with(position_7="E", position_10="Y").model_year_candidates(latest=2026) == (2000,)
    assert Vin.parse(CIVIC).model_year_candidates(latest=2026) == (2003,)


def test_model_year_is_2019_first_when_a_2019_tesla_vin_is_given():
    assert Vin.parse(TESLA).model_year_candidates(latest=2026) == (2019, 1989)


@pytest.mark.parametrize("code", ["U", "Z", "0", "", "AB", "a"])
def test_year_cycle_candidates_are_empty_when_the_code_is_not_a_year_code(code):
    assert year_cycle_candidates(code) == ()


@pytest.mark.parametrize(("code", "years"), [("A", (1980, 2010)), ("Y", (2000, 2030)), ("9", (2009, 2039))])
def test_year_cycle_candidates_are_thirty_years_apart_when_the_code_is_valid(code, years):
    assert year_cycle_candidates(code) == years


# ---------------------------------------------------------------- finding VINs in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my vin is 1hgcm82633a004352 thanks", [CIVIC]),
        ("VIN: 1HG-CM826-33A004352.", [CIVIC]),
        ("it's 1HG CM826 33A004352 I think", [CIVIC]),
        ("(1HGCM82633A004352)", [CIVIC]),
        ("VIN:1HGCM82633A004352!", [CIVIC]),
        ('"1HGCM82633A004352",', [CIVIC]),
        ("compare 1HGCM82633A004352 and 5yj3e1ea7kf317000, please", [CIVIC, TESLA]),
        ("1HGCM82633A004352\n1M8GDM9AXKP042788", [CIVIC, CFR_EXAMPLE]),
        ("1HGCM82633A004352 again: 1HGCM82633A004352", [CIVIC]),
    ],
)
def test_find_vins_returns_each_vin_once_in_order_when_written_in_free_text(text, expected):
    assert find_vins(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "hello there, what can you tell me about my car?",
        "ABCDEFGHJKLMNPRST",
        "I need 4 new tyres asap",
        "call 12345678901234567 now",
        "12345678901234567",
        "1HG, CM826, 33A004352",
        "1HGCM82633A0043521",
        "",
    ],
)
def test_find_vins_returns_nothing_when_the_text_holds_no_vin(text):
    assert find_vins(text) == []


@PROPERTY
@given(valid_vins)
def test_find_vins_finds_the_vin_when_it_sits_in_a_sentence(vin):
    assume(any(ch.isdigit() for ch in vin) and any(ch.isalpha() for ch in vin))

    assert find_vins(f"Hi! My VIN is {vin.lower()}, can you check it?") == [vin]


def test_find_vins_finds_the_one_vin_in_ten_kilobytes_of_text():
    text = ("lorem ipsum 12 dolor - sit, " * 400)[:10_240] + " " + CIVIC

    assert find_vins(text) == [CIVIC]


# ---------------------------------------------------------------- masking


def test_masked_shows_only_the_last_six_characters_when_logging():
    assert Vin.parse(CIVIC).masked == "*" * 11 + "004352"
    assert mask_vin("12345") == "12345"


# ---------------------------------------------------------------- vehicle title


def test_title_names_the_model_once_when_vpic_repeats_it_in_the_trim():
    from tools.domain.vehicle import DecodedVehicle, DecodeSource

    def title(model: str, trim: str | None) -> str:
        return DecodedVehicle(
            vin="3VWDX7AJ5DM392811",
            valid=True,
            check_digit_valid=True,
            make="VOLKSWAGEN",
            model=model,
            model_year=2013,
            trim=trim,
            source=DecodeSource(provider="offline"),
        ).title

    assert title("Jetta", "Jetta, S") == "2013 VOLKSWAGEN Jetta S"
    assert title("RX", "RX330") == "2013 VOLKSWAGEN RX RX330"  # a trim that only starts alike stays
    assert title("Jetta", None) == "2013 VOLKSWAGEN Jetta"


# ---------------------------------------------------------------- fast paths equal the general rules


def _fold_each_character(raw: str) -> str:
    """`normalise` as the rules state it: fold each character (NFKC, upper), drop separators."""
    folded = ""
    for ch in raw:
        nfkc = unicodedata.normalize("NFKC", ch).upper()
        folded += nfkc if nfkc.isascii() else ch
    return "".join(
        ch
        for ch in folded
        if ch not in " \t\r\n._/-\u2010\u2011\u2012\u2013\u2014\u2015\u2212" and not ch.isspace()
    )


def _suggest_by_trying_each_look_alike(text: str) -> tuple[str, ...]:
    """`suggest` as the rules state it, computing every candidate's check digit in full."""
    base = "".join({"I": "1", "O": "0", "Q": "0"}.get(ch, ch) for ch in text)
    found = [base] if has_valid_check_digit(base) else []
    for i, ch in enumerate(base):
        for alt in LOOK_ALIKES.get(ch, ()):
            candidate = base[:i] + alt + base[i + 1 :]
            if has_valid_check_digit(candidate):
                found.append(candidate)
    return tuple(c for c in dict.fromkeys(found) if c != text)


@PROPERTY
@given(st.one_of(st.text(alphabet=string.ascii_letters + string.digits), st.text(), valid_vins))
def test_normalise_equals_folding_each_character_when_given_any_text(raw):
    assert normalise(raw) == _fold_each_character(raw)


@PROPERTY
@given(st.text(alphabet=sorted(ALPHABET | {"I", "O", "Q"}), min_size=17, max_size=17))
def test_suggest_equals_trying_each_look_alike_when_the_text_is_seventeen_characters(text):
    assert suggest(text) == _suggest_by_trying_each_look_alike(text)


def test_suggest_offers_the_fix_at_position_9_when_only_the_check_digit_is_a_look_alike():
    # A VIN whose check digit is 8 (B's look-alike): the last two serial digits move the
    # weighted sum through every residue, so one of them gives 8.
    serials = (f"{a}{b}" for a in "0123456789" for b in "0123456789")
    fixed = next(v for v in (CIVIC[:8] + "8" + CIVIC[9:15] + s for s in serials) if check_digit(v) == "8")
    typo = fixed[:8] + "B" + fixed[9:]

    assert fixed in suggest(typo)
    # CIVIC's check digit is 3: an 8 there would fail it, so it is not offered
    assert CIVIC[:8] + "8" + CIVIC[9:] not in suggest(CIVIC[:8] + "B" + CIVIC[9:])


# ---------------------------------------------------------------- vehicle from vPIC values


def test_every_field_is_set_when_a_vehicle_is_built_from_vpic_values():
    # `vehicle_from_vpic` validates without looking for extra keys: a misspelt field
    # name would be dropped silently and leave that field unset.
    source = DecodeSource(provider="offline")
    attributes = {"Make": "HONDA", "Model": "Accord", "Doors": "2"}

    for trusted in (True, False):
        vehicle = vehicle_from_vpic(CIVIC, attributes, check_digit_valid=True, source=source, trusted=trusted)
        assert vehicle.model_fields_set == set(DecodedVehicle.model_fields)
    fields = trusted_fields(CIVIC, attributes, check_digit_valid=True, source=source)
    assert set(fields) == set(DecodedVehicle.model_fields)


def test_an_adopted_attribute_map_becomes_raw_without_its_empty_values_when_trusted():
    source = DecodeSource(provider="offline")
    attributes: dict[str, str | list[str]] = {
        "Suggested VIN": "",
        "Make": "HONDA",
        "Note": [],
        "Trim": "",
        "Model": "Accord",
        "Other Restraint System Info": ["Seat Belt"],
        "Possible Values": "",
    }
    copied = vehicle_from_vpic(CIVIC, dict(attributes), check_digit_valid=True, source=source, trusted=True)

    adopted = vehicle_from_owned_vpic(CIVIC, attributes, True, source)

    assert adopted.raw is attributes
    assert list(attributes.items()) == [
        ("Make", "HONDA"),
        ("Model", "Accord"),
        ("Other Restraint System Info", ["Seat Belt"]),
    ]
    assert adopted.model_dump_json() == copied.model_dump_json()


def test_an_owned_attribute_map_builds_what_the_trusted_build_gives_when_values_vary():
    source = DecodeSource(provider="offline")
    maps: list[dict[str, object]] = [
        {"Make": "HONDA", "Model": "Accord", "Suggested VIN": "", "Note": ["Seat Belt"], "Trim": ""},
        {"Make": "HONDA", "Model": ["Accord", "Coupe"], "Doors": "2"},  # a list where text is read
        {"Make": "HONDA", "Model": None, "Error Code": "0"},  # None reads as absent
    ]
    for attributes in maps:
        adopted = vehicle_from_vpic(
            CIVIC,
            dict(attributes),  # type: ignore[arg-type]
            check_digit_valid=True,
            source=source,
            trusted=True,
        )

        owned = vehicle_from_owned_vpic(CIVIC, attributes, True, source)  # type: ignore[arg-type]

        assert owned.raw == adopted.raw
        assert owned.model_dump_json() == adopted.model_dump_json()
        assert repr(owned) == repr(adopted)
        assert owned.model_fields_set == adopted.model_fields_set
    with pytest.raises(ValidationError):
        vehicle_from_owned_vpic(CIVIC, {"Make": "HONDA", "Doors": 2}, True, source)  # type: ignore[dict-item]


def test_the_offline_decoder_equals_the_validated_build_when_vins_vary():
    """The memoised, adopting, unvalidated-`raw` path gives what full validation gives."""
    decoder = UltravinDecoder()
    rows = offline_rows(1_500, seed=31)
    requests = [DecodeRequest(Vin.parse(str(row["vin"])), None) for row in rows]
    requests = [DecodeRequest(r.vin, None if i % 4 else 1985 + i % 45) for i, r in enumerate(requests)]

    vehicles = decoder.decode_many_sync(requests)

    assert [decoder.decode_sync(r) for r in requests[:300]] == vehicles[:300]
    assert [v.vin for v in vehicles] == [str(row["vin"]) for row in rows]
    for row, vehicle in zip(rows, vehicles, strict=True):
        attributes = row["attributes"]
        assert isinstance(attributes, dict)
        checked = vehicle_from_vpic(
            str(row["vin"]),
            attributes,
            check_digit_valid=bool(row["check_digit_valid"]),
            source=vehicle.source,
        )
        assert vehicle.model_dump_json() == checked.model_dump_json()
        assert repr(vehicle) == repr(checked)
        assert vehicle.model_fields_set == checked.model_fields_set
        assert vehicle.raw == {k: v for k, v in attributes.items() if v}


def test_engine_plant_and_transmission_equal_validated_models_when_built_without_validation():
    """Their builders write each value with its field's exact type; validating them gives the same model."""
    vehicles = UltravinDecoder().decode_many_sync(
        [DecodeRequest(Vin.parse(str(row["vin"]))) for row in offline_rows(1_000, seed=33)]
    )
    built = {(type(part), repr(part)): part for v in vehicles for part in (v.engine, v.plant, v.transmission)}

    assert len(built) > 300  # many different ones, and a value of every kind: text, int, float, bool
    for part in built.values():
        validated = type(part).model_validate(dict(part.__dict__))
        assert validated == part
        assert repr(validated) == repr(part)
        assert validated.model_fields_set == part.model_fields_set
        assert [type(v) for v in validated.__dict__.values()] == [type(v) for v in part.__dict__.values()]
    kinds = {type(v) for part in built.values() for v in part.__dict__.values()}
    assert {str, int, float, bool, type(None)} <= kinds


def test_the_offline_data_leaves_only_the_known_variables_empty_when_every_row_is_swept():
    """The offline decoder looks for empty values in `EMPTY_VARIABLES` only: no other may be empty.

    `ultravin.sweep()` holds one VIN per row of every table of the data release (~590,000);
    a release that empties another variable fails here, before its decodes keep "" in `raw`.
    """
    vins = ultravin.sweep()
    hints = [None if i % 5 else 1981 + i % 47 for i in range(len(vins))]
    emptied: set[str] = set()
    for start in range(0, len(vins), 50_000):
        rows = ultravin.decode_batch(vins[start : start + 50_000], years=hints[start : start + 50_000])
        emptied.update(name for row in rows for name, value in row["attributes"].items() if not value)

    assert len(vins) > 500_000
    assert emptied <= set(EMPTY_VARIABLES)
    assert {"Suggested VIN", "Possible Values"} <= emptied  # the sweep does reach empty values


def test_the_offline_decoder_drops_the_empty_values_of_its_variables_when_adopting_a_decode():
    row = ultravin.decode(CIVIC[:8] + "4" + CIVIC[9:])  # a wrong check digit: more variables set
    emptied = {name for name, value in row["attributes"].items() if not value}

    vehicle = UltravinDecoder().decode_sync(DecodeRequest(Vin.parse(CIVIC[:8] + "4" + CIVIC[9:])))

    assert emptied
    assert emptied <= set(EMPTY_VARIABLES)
    assert vehicle.raw == {name: value for name, value in row["attributes"].items() if value}


def test_the_offline_decoder_decodes_what_the_batch_call_decodes_when_given_year_hints():
    rows = offline_rows(600, seed=32)
    vins = [str(row["vin"]) for row in rows]
    years = [None if i % 3 else 1980 + i % 50 for i in range(len(vins))]
    decoder = UltravinDecoder()

    vehicles = decoder.decode_many_sync(
        [DecodeRequest(Vin.parse(v), y) for v, y in zip(vins, years, strict=True)]
    )

    batch = ultravin.decode_batch(vins, years=years)
    source = vehicles[0].source
    assert vehicles == [
        vehicle_from_vpic(
            row["vin"], row["attributes"], check_digit_valid=bool(row["check_digit_valid"]), source=source
        )
        for row in batch
    ]


async def test_the_offline_decoder_answers_one_request_as_a_batch_of_one_when_decoding_one_vin():
    decoder = UltravinDecoder()
    hinted = DecodeRequest(Vin.parse(CIVIC), 2003)
    typo = DecodeRequest(Vin.parse(CIVIC[:8] + "4" + CIVIC[9:]))

    for request in (hinted, typo, DecodeRequest(Vin.parse(TESLA))):
        assert await decoder.decode_many([request]) == decoder.decode_many_sync([request])
    assert await decoder.decode_many([hinted, typo]) == decoder.decode_many_sync([hinted, typo])
    assert await decoder.decode_many([]) == []


def test_a_vehicle_with_suggestions_equals_its_model_copy_when_suggestions_are_added():
    decoder = UltravinDecoder()
    vehicles = [decoder.decode_sync(DecodeRequest(Vin.parse(TESLA)))]
    vehicles.append(vehicles[0].with_source(DecodeSource(provider="nhtsa", fallback=True)))
    vehicles.append(
        DecodedVehicle(
            vin=TESLA, valid=False, check_digit_valid=False, source=DecodeSource(provider="autodev")
        )
    )

    for vehicle in vehicles:
        added = vehicle.with_suggestions((CIVIC,))
        copied = vehicle.model_copy(update={"suggestions": (CIVIC,)})
        assert added == copied
        assert repr(added) == repr(copied)
        assert added.model_fields_set == copied.model_fields_set
        assert list(added.__dict__) == list(copied.__dict__)
        assert added.model_dump_json() == copied.model_dump_json()
        assert (added.__pydantic_extra__, added.__pydantic_private__) == (None, None)
        assert vehicle.suggestions == ()  # the original is unchanged


async def test_decode_many_results_equal_validated_results_when_built_without_validation():
    rows = offline_rows(400, seed=33)
    raws = [str(row["vin"]).lower() if i % 5 == 0 else str(row["vin"]) for i, row in enumerate(rows)]
    raws[7] = "not a vin"

    results = await decode_many(raws, deps=VinDeps(decoders={"offline": UltravinDecoder()}))

    assert [r.line for r in results] == list(range(1, len(raws) + 1))
    assert results[7].error is not None
    assert results[7].vehicle is None
    for result in results:
        validated = VinResult.model_validate(result.model_dump(exclude_unset=True))
        assert validated == result
        assert validated.model_dump_json() == result.model_dump_json()
        assert validated.model_fields_set == result.model_fields_set
        assert repr(validated) == repr(result)


async def test_decode_many_reports_every_line_in_order_when_none_is_a_vin():
    deps = VinDeps(decoders={"offline": UltravinDecoder()})

    results = await decode_many(["nonsense", "", CIVIC + "X"], deps=deps, years=[1900, None, 2003])

    assert [r.line for r in results] == [1, 2, 3]
    assert [r.vehicle for r in results] == [None, None, None]
    # A line that is neither a VIN nor has a possible year reports the VIN first.
    assert [r.error and r.error["reason"] for r in results] == ["too_short", "empty", "too_long"]


async def test_decode_gives_the_vehicle_decode_many_gives_when_one_vin_is_decoded_at_a_time():
    """`decode` has its own path for one VIN: it must answer what the list path answers."""
    deps = VinDeps(decoders={"offline": UltravinDecoder()})
    rows = offline_rows(300, seed=34)
    raws = [str(row["vin"]).lower() if i % 5 == 0 else str(row["vin"]) for i, row in enumerate(rows)]
    raws.append(CIVIC[:11] + "D" + CIVIC[12:])  # 0 typed as D: the check digit fails, CIVIC is suggested
    years = [None if i % 3 else 1985 + i % 40 for i in range(len(raws))]

    results = await decode_many(raws, deps=deps, years=years)

    for raw, year, result in zip(raws, years, results, strict=True):
        vehicle = await decode(raw, deps=deps, year=year)
        assert result.vehicle is not None
        assert vehicle.model_dump_json() == result.vehicle.model_dump_json()
        assert repr(vehicle) == repr(result.vehicle)
        assert vehicle.model_fields_set == result.vehicle.model_fields_set
    assert CIVIC in (await decode(raws[-1], deps=deps)).suggestions
    assert sum(bool(r.vehicle and r.vehicle.suggestions) for r in results) > 1
    with pytest.raises(InvalidInput):
        await decode(CIVIC, deps=deps, year=1900)
    with pytest.raises(InvalidVin):
        await decode("not a vin", deps=deps)


def test_a_decode_request_is_the_tuple_of_its_vin_and_year_however_it_is_built():
    vin = Vin.parse(CIVIC)

    built = tuple.__new__(DecodeRequest, (vin, 2003))

    assert built == DecodeRequest(vin, 2003)
    assert (built.vin, built.year, type(built)) == (vin, 2003, DecodeRequest)
    assert DecodeRequest(vin).year is None


def test_vehicles_built_from_one_template_share_nothing_a_vin_sets_when_two_vins_share_a_pattern():
    source = DecodeSource(provider="offline")
    attributes = {"Make": "HONDA", "Model": "Accord", "Suggested VIN": "", "Error Code": "0"}
    first = vehicle_from_vpic(CIVIC, dict(attributes), check_digit_valid=True, source=source, trusted=True)
    typo = CIVIC[:8] + "4" + CIVIC[9:]
    second = vehicle_from_vpic(
        typo, {**attributes, "Suggested VIN": CIVIC}, check_digit_valid=False, source=source, trusted=True
    )

    assert (first.vin, first.check_digit_valid, first.suggestions) == (CIVIC, True, ())
    assert (second.vin, second.check_digit_valid, second.suggestions) == (typo, False, (CIVIC,))
    assert first.model_copy(update={"trim": "EX"}).trim == "EX"
    assert first.trim is None


def test_fields_set_for_refuses_a_model_whose_hooks_it_would_skip_when_built_without_validation():
    class WithExtra(BaseModel):
        model_config = ConfigDict(frozen=True, extra="allow")
        a: int = 0

    class Mutable(BaseModel):
        a: int = 0

    for cls in (WithExtra, Mutable):
        with pytest.raises(TypeError):
            fields_set_for(cls, ["a"])
    with pytest.raises(TypeError, match="no fields"):
        fields_set_for(VinResult, ["line", "lines"])


def test_values_holding_the_template_key_separator_never_share_a_template_when_built_trusted():
    # Joined with the separator, both maps would spell the same key: "A␟B␟C␟␟…".
    source = DecodeSource(provider="offline")
    first = {"Make": "A\x1fB", "Manufacturer Name": "C", "Model": "Accord"}
    second = {"Make": "A", "Manufacturer Name": "B\x1fC", "Model": "Accord"}

    built = [
        vehicle_from_vpic(CIVIC, dict(m), check_digit_valid=True, source=source, trusted=True)
        for m in (first, second, first)
    ]

    assert [(v.make, v.manufacturer) for v in built] == [("A\x1fB", "C"), ("A", "B\x1fC"), ("A\x1fB", "C")]
    for vehicle, attributes in zip(built, (first, second, first), strict=True):
        checked = vehicle_from_vpic(CIVIC, attributes, check_digit_valid=True, source=source)
        assert vehicle.model_dump_json() == checked.model_dump_json()


def test_a_none_value_reads_as_an_absent_variable_when_built_trusted():
    source = DecodeSource(provider="offline")
    attributes: dict[str, object] = {"Make": "HONDA", "Model": None, "Trim": "EX", "Doors": "2"}

    vehicle = vehicle_from_vpic(CIVIC, attributes, check_digit_valid=True, source=source, trusted=True)  # type: ignore[arg-type]

    absent = vehicle_from_vpic(
        CIVIC, {"Make": "HONDA", "Trim": "EX", "Doors": "2"}, check_digit_valid=True, source=source
    )
    assert vehicle.model_dump_json() == absent.model_dump_json()
    assert vehicle.model_fields_set == absent.model_fields_set
