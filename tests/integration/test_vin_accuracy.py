"""Decode accuracy: the whole VIN capability against 1,036 decodes recorded from live vPIC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import vin_accuracy
from evals.vin_accuracy import AccuracyReport
from tools.domain.vehicle import DecodedVehicle, Engine, Plant, Transmission
from tools.providers.ultravin import UltravinDecoder
from tools.vin import VinDeps

pytestmark = pytest.mark.integration

MIN_RATE = 0.995
EXPLAINED = {
    vin_accuracy.REJECTED,
    vin_accuracy.ROUNDED,
    vin_accuracy.MOVED,
    vin_accuracy.PROCEDURE,
    vin_accuracy.DATA_CHANGED,
    vin_accuracy.REMOVED,
    vin_accuracy.RELEASE,
}


@pytest.fixture(scope="module")
def recordings_path(shared_data: Path) -> Path:
    return shared_data / "vpic_recorded_responses.jsonl"


@pytest.fixture(scope="module")
async def report(recordings_path: Path) -> AccuracyReport:
    return await vin_accuracy.evaluate(recordings_path)


def test_every_recorded_vin_is_compared_when_the_whole_file_is_decoded(report, recordings_path) -> None:
    lines = [line for line in recordings_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert report.lines == len(lines) == 1036
    assert report.vins_compared == len(lines)
    for score in report.fields:
        assert score.compared + score.not_recorded == len(lines), score


def test_every_key_field_agrees_with_live_vpic_when_decoded_through_the_capability(report) -> None:
    below = {f.field: f"{f.rate:.2%}" for f in report.below(MIN_RATE)}
    assert below == {}, report.table(MIN_RATE)
    assert {f.field for f in report.fields} >= {
        "make",
        "model",
        "model_year",
        "trim",
        "series",
        "body_class",
        "vehicle_type",
        "doors",
        "drive_type",
        "engine_cylinders",
        "displacement_l",
        "fuel_type_primary",
        "engine_hp",
        "plant_country",
        "plant_state",
        "plant_city",
        "transmission_style",
        "error_codes",
    }


def test_every_disagreement_has_an_explanation(report) -> None:
    unexplained = [
        d for d in report.disagreements if d.category not in EXPLAINED or not d.explanation.strip()
    ]
    assert unexplained == []
    assert sum(report.categories.values()) == len(report.disagreements)
    for score in report.fields:
        listed = sum(1 for d in report.disagreements if d.field == score.field)
        assert score.compared - score.agreed == listed, score.field


def test_rejected_vin_agrees_with_vpic_400_when_it_has_invalid_characters(report) -> None:
    rejected = [d for d in report.disagreements if d.vin == "1FA6P8C0!M!100001"]
    assert rejected, "the '!' recording should differ on the fields vPIC guessed"
    assert {d.category for d in rejected} == {vin_accuracy.REJECTED}
    assert "error_codes" not in {d.field for d in rejected}


async def test_decodes_equal_what_validation_builds_when_built_without_it(recordings_path) -> None:
    # vehicle_from_vpic skips pydantic validation for inputs of exact types (a speed-up);
    # the result must be indistinguishable from the validated model.
    recordings = vin_accuracy.load_recordings(recordings_path)
    deps = VinDeps(decoders={"offline": UltravinDecoder()})
    vehicles = [r.vehicle for r in await vin_accuracy.decode_recordings(recordings, deps) if r.vehicle]
    assert len(vehicles) == len(recordings) - 1  # the "!" VIN is rejected before decoding
    for vehicle in vehicles:
        validated = DecodedVehicle.model_validate(vehicle.model_dump())
        assert validated == vehicle
        assert validated.model_dump_json() == vehicle.model_dump_json()
        assert validated.model_fields_set == vehicle.model_fields_set
        assert DecodedVehicle.model_validate_json(vehicle.model_dump_json()) == vehicle
        assert (type(vehicle.engine), type(vehicle.plant), type(vehicle.transmission)) == (
            Engine,
            Plant,
            Transmission,
        )
        assert all(type(v) is str or type(v) is list for v in vehicle.raw.values())


def test_main_writes_markdown_and_json_when_every_field_meets_the_threshold(
    recordings_path, tmp_path, capsys
) -> None:
    assert vin_accuracy.main(["--data", str(recordings_path), "--out", str(tmp_path)]) == 0
    (markdown,) = tmp_path.glob("vin-accuracy-*.md")
    (data,) = tmp_path.glob("vin-accuracy-*.json")
    assert markdown.stem == data.stem
    assert "| make |" in markdown.read_text(encoding="utf-8")
    payload = json.loads(data.read_text(encoding="utf-8"))
    assert payload["vins_compared"] == payload["lines"] == 1036
    assert len(payload["disagreements"]) == sum(payload["categories"].values())
    assert "| field | compared | agreed | rate |" in capsys.readouterr().out


def test_main_exits_1_when_a_field_is_below_the_threshold(recordings_path, tmp_path, capsys) -> None:
    assert vin_accuracy.main(["--data", str(recordings_path), "--out", str(tmp_path), "--min-rate", "1"]) == 1
    assert "below 100.0%" in capsys.readouterr().err
