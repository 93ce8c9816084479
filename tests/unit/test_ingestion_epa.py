"""EPA fuel-economy records become spec documents: typed columns, facts, texts, bad rows."""

from __future__ import annotations

import csv
import gzip
from datetime import date
from pathlib import Path

import pytest

from ingestion import epa
from ingestion.documents import BadRow, VehicleDoc
from tools.domain.facts import FACTS_BY_KEY

# Real records: a Tesla (EV), a RAV4 Prime (plug-in hybrid), a Subaru with "NA" engine size,
# a 2019 RAV4 AWD and a Honda CR-V AWD.
IDS = ("47908", "44984", "29472", "41126", "40858")


@pytest.fixture(scope="module")
def epa_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small EPA file: the real header, real records, and two broken rows."""
    with gzip.open(shared_data / epa.SHARED_FILE, "rt", newline="") as f:
        header = next(csv.reader([f.readline()]))
        id_col = header.index("id")
        marks = tuple(f",{i}," for i in IDS)  # a cheap filter before the CSV parser
        candidates = [line for line in f if any(m in line for m in marks)]
        rows = [r for r in csv.reader(candidates) if r[id_col] in IDS]
    broken_width = rows[0][:10]
    bad_year = list(rows[0])
    bad_year[header.index("year")] = "19x5"
    bad_year[id_col] = "999999"
    path = tmp_path_factory.mktemp("epa") / "vehicles.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([*rows, broken_width, bad_year])
    return path


@pytest.fixture(scope="module")
def parsed(epa_file: Path) -> tuple[dict[str, VehicleDoc], list[BadRow]]:
    items = list(epa.load(epa_file))
    docs = {d.record_id: d for d in items if isinstance(d, VehicleDoc)}
    bad = [b for b in items if isinstance(b, BadRow)]
    return docs, bad


def test_every_real_record_becomes_a_document(parsed: tuple[dict[str, VehicleDoc], list[BadRow]]) -> None:
    docs, _ = parsed
    assert set(docs) == set(IDS)


def test_broken_rows_are_reported_with_their_line_numbers(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    _, bad = parsed
    assert [b.line for b in bad] == [len(IDS) + 2, len(IDS) + 3]  # the header is line 1
    assert "fields where the header has" in bad[0].reason
    assert "year" in bad[1].reason


def test_electric_vehicle_has_range_mpge_and_zero_tailpipe_co2(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    tesla = parsed[0]["47908"]
    assert (tesla.year, tesla.make, tesla.make_key) == (2024, "Tesla", "tesla")
    assert (tesla.model, tesla.base_model, tesla.model_key) == ("Model 3 Long Range AWD", "Model 3", "model3")
    assert tesla.displacement_l is None
    assert tesla.cylinders is None
    assert tesla.facts["range_mi"] == 342
    assert tesla.facts["combined_mpg"] == 130
    assert tesla.facts["co2_gpm"] == 0
    assert "130 combined MPGe" in tesla.content
    assert "Electric range 342 mi" in tesla.content


def test_plug_in_hybrid_electric_range_is_not_its_total_range(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    prime = parsed[0]["44984"]
    assert prime.facts["phev_electric_range_mi"] == 42
    assert "range_mi" not in prime.facts  # EPA's `range` (600) is gasoline + electric
    assert prime.facts["atv_type"] == "Plug-in Hybrid"
    assert prime.model_key == "rav4prime"


def test_na_engine_size_is_unknown_not_a_bad_row(parsed: tuple[dict[str, VehicleDoc], list[BadRow]]) -> None:
    subaru = parsed[0]["29472"]
    assert subaru.displacement_l is None
    assert subaru.cylinders is None
    assert subaru.facts["combined_mpg"] == 24


def test_drive_suffix_stays_in_model_and_leaves_the_key(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    docs, _ = parsed
    rav4 = docs["41126"]
    crv = docs["40858"]
    assert (rav4.model, rav4.model_key) == ("RAV4 AWD", "rav4")
    assert (crv.model, crv.model_key) == ("CR-V AWD", "crv")
    assert crv.drive == "All-Wheel Drive"
    assert crv.configuration is not None
    assert "All-Wheel Drive" in crv.configuration


def test_content_carries_the_words_people_ask_with(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    rav4 = parsed[0]["41126"]
    for word in (
        "2019",
        "Toyota",
        "RAV4 AWD",
        "Small Sport Utility Vehicle",
        "2.5L 4 cyl",
        "mpg",
        "CO2",
        "$",
    ):
        assert word in rav4.content
    assert str(rav4.year) not in rav4.embed_text  # one vector serves every year
    assert rav4.embed_text in {d.embed_text for d in parsed[0].values()}


def test_facts_use_only_registered_keys(parsed: tuple[dict[str, VehicleDoc], list[BadRow]]) -> None:
    for doc in parsed[0].values():
        assert set(doc.facts) <= FACTS_BY_KEY.keys()


def test_data_date_is_the_newest_modified_on(parsed: tuple[dict[str, VehicleDoc], list[BadRow]]) -> None:
    assert parsed[0]["47908"].data_date == date(2024, 8, 25)  # "Sun Aug 25 00:00:00 EDT 2024"


def test_content_hash_changes_with_the_record_and_the_embedding_model(
    parsed: tuple[dict[str, VehicleDoc], list[BadRow]],
) -> None:
    tesla = parsed[0]["47908"]
    assert tesla.content_hash("m1") == tesla.content_hash("m1")
    assert tesla.content_hash("m1") != tesla.content_hash("m2")
    other = parsed[0]["44984"]
    assert tesla.content_hash("m1") != other.content_hash("m1")


def test_modified_on_parses_epa_timestamps() -> None:
    assert epa.parse_modified("Tue Jan 01 00:00:00 EST 2013") == date(2013, 1, 1)
    assert epa.parse_modified("garbage") is None
