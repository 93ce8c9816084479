"""`tools.domain._vehiclec`, the C part of `tools/domain/vehicle.py`, against its Python reference.

The C functions must give exactly what the Python ones give (same fields, value types, field
order, fields set, `raw` left in the same state), raise what they raise, and hold no reference
they do not return.
"""

import copy
import json
import subprocess
import sys
from datetime import datetime
from typing import Any

import pytest
import ultravin
from offline_rows import offline_rows
from pydantic import ValidationError

from tools.domain import vehicle
from tools.domain.vehicle import (
    DecodedVehicle,
    DecodeIssue,
    DecodeSource,
    Engine,
    Plant,
    construct_all,
    construct_validated,
    fields_set_for,
    vehicle_from_owned_vpic,
)
from tools.domain.vin import Vin
from tools.providers.base import DecodeRequest
from tools.providers.ultravin import EMPTY_VARIABLES, UltravinDecoder

python_vehicle_from_owned_vpic = vehicle._python_vehicle_from_owned_vpic
CIVIC = "1HGCM82633A004352"
SOURCE = DecodeSource(provider="offline", data_version="vPIC test")
ENGINE_FIELDS = fields_set_for(Engine, Engine.model_fields)


def _same(built: DecodedVehicle, reference: DecodedVehicle) -> None:
    assert type(built) is DecodedVehicle
    assert repr(built) == repr(reference)  # every field, in `__dict__` order
    assert list(built.__dict__) == list(reference.__dict__)
    assert [type(v) for v in built.__dict__.values()] == [type(v) for v in reference.__dict__.values()]
    assert built == reference
    assert list(built.raw.items()) == list(reference.raw.items())
    assert built.model_fields_set == reference.model_fields_set
    assert (built.__pydantic_extra__, built.__pydantic_private__) == (None, None)


def test_the_c_part_is_built_so_decodes_take_the_fast_path():
    assert vehicle.ACCELERATED, (
        "tools/domain/_vehiclec.c was not compiled (is gcc installed?): run `make setup` again; "
        "vinbot works without it, but decodes are slower"
    )
    assert type(vehicle_from_owned_vpic).__name__ == "builtin_function_or_method"


@pytest.mark.parametrize("empty_variables", [EMPTY_VARIABLES, None])
def test_the_c_build_equals_the_python_build_on_every_decode_when_vins_vary(
    empty_variables: tuple[str, ...] | None,
) -> None:
    rows = offline_rows(3_000, seed=47)
    built: list[DecodedVehicle] = []
    for row in rows:
        attributes = row["attributes"]
        reference_attributes = copy.deepcopy(attributes)
        fast = vehicle_from_owned_vpic(
            row["vin"], attributes, row["check_digit_valid"], SOURCE, empty_variables
        )
        reference = python_vehicle_from_owned_vpic(
            row["vin"], reference_attributes, row["check_digit_valid"], SOURCE, empty_variables
        )
        _same(fast, reference)
        assert fast.raw is attributes  # adopted, its empty values deleted in place
        built.append(fast)
    # The list held every kind of decode: clean ones, errors, invalid ones, suggestions.
    assert len(built) == len(rows)
    assert any(v.valid and not v.errors for v in built)
    assert any(not v.valid for v in built)
    assert any(not v.check_digit_valid for v in built)
    assert any(v.suggestions for v in built)


def test_the_c_build_equals_the_python_build_when_values_are_not_what_ultravin_gives():
    maps: list[dict[str, Any]] = [
        {"Make": "HONDA", "Model": "Accord", "Suggested VIN": "", "Note": ["Seat Belt"], "Trim": ""},
        {"Make": "HONDA", "Model": ["Accord", "Coupe"], "Doors": "2"},  # a list where text is read
        {"Make": "HONDA", "Model": None, "Error Code": "0"},  # None reads as absent
        {"Make": "  honda ", "Trim": "N/A", "Doors": "2.6", "Displacement (L)": "1.9999"},
        {"Make": "", "Error Code": "1,400", "Error Text": "1 - Check Digit; 400 - Invalid characters"},
        {"Make": "HONDA", "Suggested VIN": CIVIC, "Engine Number of Cylinders": "x"},
        {"Make": "A\x1fB", "Manufacturer Name": "C", "Plant City": "\x1f"},  # the Python key's separator
        {},
    ]
    typo = CIVIC[:8] + "4" + CIVIC[9:]
    for attributes in maps:
        for vin, check_digit_valid in ((CIVIC, True), (typo, False)):
            owned, reference_map = copy.deepcopy(attributes), copy.deepcopy(attributes)

            fast = vehicle_from_owned_vpic(vin, owned, check_digit_valid, SOURCE)

            _same(fast, python_vehicle_from_owned_vpic(vin, reference_map, check_digit_valid, SOURCE))
            assert owned == reference_map


def test_the_c_build_raises_what_the_python_build_raises_when_arguments_are_wrong():
    with pytest.raises(ValidationError):
        vehicle_from_owned_vpic(CIVIC, {"Make": "HONDA", "Doors": 2}, True, SOURCE)  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        vehicle_from_owned_vpic(CIVIC, {"Make": "HONDA"})  # type: ignore[call-arg]
    # Arguments of another type go to the Python function, which validates them.
    checked = vehicle_from_owned_vpic(CIVIC, {"Make": "HONDA"}, 1, SOURCE)  # type: ignore[arg-type]
    assert checked.check_digit_valid is True
    with pytest.raises(ValidationError):
        vehicle_from_owned_vpic(CIVIC, {"Make": "HONDA"}, True, "offline")  # type: ignore[arg-type]


def test_a_full_memo_is_emptied_then_refilled_when_the_c_build_reads_a_new_value():
    memo = vehicle._MEMOS.text
    memo.update({("filler", i): None for i in range(memo.limit - len(memo))})
    assert len(memo) == memo.limit
    attributes = {"Make": "A MAKE NEVER SEEN", "Model": "Accord"}

    built = vehicle_from_owned_vpic(CIVIC, dict(attributes), True, SOURCE)

    assert built.make == "A MAKE NEVER SEEN"
    assert len(memo) < 10
    assert not any(isinstance(key, tuple) for key in memo)


def test_the_c_build_holds_no_reference_to_what_it_was_given_once_its_result_is_gone():
    row = offline_rows(1, seed=5)[0]
    attributes = {name: value for name, value in row["attributes"].items() if value}
    vin = "".join(row["vin"])  # a str of our own, so its count is ours to watch
    watched = [vin, SOURCE, *attributes.values()]
    vehicle_from_owned_vpic(vin, dict(attributes), True, SOURCE)  # memos filled
    before = [sys.getrefcount(o) for o in watched]

    for _ in range(1_000):
        vehicle_from_owned_vpic(vin, dict(attributes), True, SOURCE, EMPTY_VARIABLES)
        vehicle_from_owned_vpic(vin, dict(attributes), False, SOURCE)
        vehicle_from_owned_vpic(vin, {**attributes, "Model": ["a", "list"]}, True, SOURCE)  # to Python

    assert [sys.getrefcount(o) for o in watched] == before


def test_construct_validated_and_construct_all_build_what_validation_builds():
    values = {
        "cylinders": 4,
        "displacement_l": 2.0,
        "model": "K20",
        "configuration": "In-Line",
        "hp": 158.0,
        "hp_to": None,
        "fuel_type_primary": "Gasoline",
        "fuel_type_secondary": None,
        "turbo": False,
        "electrification": None,
    }
    validated = Engine.model_validate(values)

    single = construct_validated(Engine, dict(values), ENGINE_FIELDS)
    many = construct_all(Engine, (dict(values) for _ in range(3)), ENGINE_FIELDS)

    for built in (single, *many):
        assert type(built) is Engine
        assert repr(built) == repr(validated)
        assert built == validated
        assert built.model_fields_set == validated.model_fields_set
        assert (built.__pydantic_extra__, built.__pydantic_private__) == (None, None)
    assert len(many) == 3
    assert construct_all(Engine, [], ENGINE_FIELDS) == []
    plant = construct_validated(Plant, {"city": "X", "state": None, "country": None}, {"city"})
    assert plant.model_fields_set == {"city"}


def test_construct_validated_and_construct_all_refuse_what_is_not_a_model_and_its_fields():
    issue_fields = fields_set_for(DecodeIssue, DecodeIssue.model_fields)
    with pytest.raises(TypeError):
        construct_validated(Engine, [("model", "K20")], ENGINE_FIELDS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        construct_validated(Engine, {}, ["model"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        construct_validated(DecodeIssue, {"code": "1"})  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        construct_validated(dict, {}, set())  # type: ignore[type-var]
    with pytest.raises(TypeError):
        construct_all(DecodeIssue, [{"code": "1", "message": "m"}, "not a dict"], issue_fields)  # type: ignore[list-item]

    def failing() -> Any:
        yield {"code": "1", "message": "m"}
        raise ValueError("the caller's iterator failed")

    with pytest.raises(ValueError, match="caller's iterator"):
        construct_all(DecodeIssue, failing(), issue_fields)


_WITHOUT_C = """
import json, sys
from datetime import datetime
sys.modules["tools.domain._vehiclec"] = None  # importing it fails, as where it was not built
import ultravin
from tools.domain import vehicle
from tools.providers.base import DecodeRequest
from tools.domain.vin import Vin
from tools.providers.ultravin import UltravinDecoder
vins = ultravin.generate(300, seed=11, now=datetime(2026, 6, 1), invalid_rate=0.3)
requests = [DecodeRequest(Vin.parse(v)) for v in vins]
built = UltravinDecoder().decode_many_sync(requests)
print(json.dumps([vehicle.ACCELERATED, vehicle.vehicle_from_owned_vpic.__name__, [repr(v) for v in built]]))
"""


def test_vinbot_decodes_the_same_on_the_python_versions_when_the_c_part_is_missing():
    ran = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _WITHOUT_C], capture_output=True, text=True, check=True, timeout=120
    )
    accelerated, name, reprs = json.loads(ran.stdout)

    vins = ultravin.generate(300, seed=11, now=datetime(2026, 6, 1), invalid_rate=0.3)  # noqa: DTZ001
    built = UltravinDecoder().decode_many_sync([DecodeRequest(Vin.parse(v)) for v in vins])
    assert (accelerated, name) == (False, "_python_vehicle_from_owned_vpic")
    assert reprs == [repr(v) for v in built]


_BAD_PLANS = """
import json
from tools.domain import _vehiclec as c
from pydantic import BaseModel

class Model(BaseModel):
    model_config = {"frozen": True}
    vin: str = ""

memo = type("Memo", (dict,), {"limit": 10})()
slots = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
descriptors = tuple(vars(BaseModel)[name] for name in slots)
kinds = (c.OWN_VIN, c.OWN_CHECK_DIGIT, c.OWN_SUGGESTIONS, c.OWN_SOURCE, c.OWN_RAW)
own = [(name, kind, (), None, None) for name, kind in zip(("vin", "check", "sugg", "src", "raw"), kinds)]
names = {"vin", "check", "sugg", "src", "raw", "make"}
plans = {
    "a field the set lacks": (own + [("make", c.ONE, ("Make",), memo, str)], names - {"make"}),
    "a variable not listed": (own + [("make", c.ONE, ("Model",), memo, str)], names),
    "a field twice": (own + [("vin", c.ONE, ("Make",), memo, str)], names),
    "no own field": (own[1:] + [("make", c.ONE, ("Make",), memo, str)], names - {"vin"}),
    "a memo without a reader": (own + [("make", c.ONE, ("Make",), memo, None)], names),
}
refused = {}
for why, (plan, fields) in plans.items():
    try:
        c.configure(Model, tuple(plan), ("Make",), descriptors, fields, Model, "Suggested VIN", print, print)
    except (ValueError, TypeError) as e:
        refused[why] = type(e).__name__
from tools.domain import vehicle  # configures it for real, after the refusals
print(json.dumps([refused, vehicle.ACCELERATED]))
"""


def test_the_c_part_refuses_a_plan_that_would_build_incomplete_vehicles():
    ran = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _BAD_PLANS], capture_output=True, text=True, check=True, timeout=120
    )
    refused, accelerated = json.loads(ran.stdout)

    assert refused == {
        "a field the set lacks": "ValueError",
        "a variable not listed": "ValueError",
        "a field twice": "ValueError",
        "no own field": "ValueError",
        "a memo without a reader": "TypeError",
    }
    assert accelerated is True
