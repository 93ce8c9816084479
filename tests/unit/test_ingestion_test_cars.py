"""EPA test-car rows (one per lab test) are grouped into one document per tested configuration."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import openpyxl

from ingestion import test_cars
from ingestion.documents import BadRow, VehicleDoc

HEADER = [
    "Model Year",
    "Vehicle Manufacturer Name",
    "Represented Test Veh Make",
    "Represented Test Veh Model",
    "Test Veh Displacement (L)",
    "Vehicle Type",
    "Rated Horsepower",
    "# of Cylinders and Rotors",
    "Tested Transmission Type",
    "# of Gears",
    "Drive System Description",
    "Equivalent Test Weight (lbs.)",
    "Axle Ratio",
    "Test Fuel Type Description",
    "Test Category",
    "RND_ADJ_FE",
    "source_file",
]
# Real rows (selected columns) of the 2019 RAV4 and the 2024 F150, and oddities of the file.
RAV4 = ["2019", "Toyota", "TOYOTA", "RAV4", "2.487", "Truck", "203", "4", "Automatic", "8"]
RAV4_TAIL = ["2-Wheel Drive, Front", "3625", "3.18", "Tier 2 Cert Gasoline"]
ROWS = [
    [*RAV4, *RAV4_TAIL, "FTP", "33.1", "19tstcar-2020-10-02.xlsx"],
    [*RAV4, *RAV4_TAIL, "HWY", "50.3", "19tstcar-2020-10-02.xlsx"],
    [
        *RAV4,
        "2-Wheel Drive, Front",
        "3750",
        "3.18",
        "Tier 2 Cert Gasoline",
        "US06",
        "30.0",
        "19tstcar-2020-10-02.xlsx",
    ],
    [*RAV4, *RAV4_TAIL, "SC03", "29.0", "19tstcar-2020-10-02.xlsx"],
    [
        "2024",
        "FOMOCO",
        "Ford",
        "F150",
        "2.7",
        "Truck",
        "325",
        "6",
        "Semi-Automatic",
        "10",
        "2-Wheel Drive, Rear",
        "5000",
        "3.55",
        "Tier 2 Cert Gasoline",
        "FTP",
        "23.3",
        "24-testcar-2024-05-17_0.xlsx",
    ],
    # a model year typed into the make column (MY2024 Lucid rows), an EV with 0.001 L
    [
        "2024",
        "Lucid USA, Inc",
        "2024",
        "Lucid Air Touring AWD",
        "0.001",
        "Car",
        "620",
        "",
        "Automatic",
        "1",
        "All Wheel Drive",
        "5500",
        "",
        "Electricity",
        "CD",
        "130",
        "24-testcar-2024-05-17_0.xlsx",
    ],
    [
        "2019",
        "Toyota",
        "TOYOTA",
        "RAV4",
        "2.487",
        "Truck",
        "lots",
        "4",
        "Automatic",
        "8",
        *RAV4_TAIL,
        "FTP",
        "33.1",
        "19tstcar-2020-10-02.xlsx",
    ],
    [
        "1492",
        "Toyota",
        "TOYOTA",
        "RAV4",
        "2.487",
        "Truck",
        "203",
        "4",
        "Automatic",
        "8",
        *RAV4_TAIL,
        "FTP",
        "33.1",
        "19tstcar-2020-10-02.xlsx",
    ],
]


def _load(tmp_path: Path) -> tuple[list[VehicleDoc], list[BadRow]]:
    path = tmp_path / "tstcar.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return _split(test_cars.load([path]))


def _split(items: Iterable[VehicleDoc | BadRow]) -> tuple[list[VehicleDoc], list[BadRow]]:
    loaded = list(items)
    return [d for d in loaded if isinstance(d, VehicleDoc)], [b for b in loaded if isinstance(b, BadRow)]


def _cell(text: str) -> str | int | float | None:
    """What a spreadsheet holds for `text`: a number where it reads as one, nothing where it is empty."""
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def test_lab_tests_of_one_configuration_become_one_document(tmp_path: Path) -> None:
    docs, _ = _load(tmp_path)
    rav4 = next(d for d in docs if d.model_key == "rav4")
    assert sum(d.model_key == "rav4" for d in docs) == 1
    assert rav4.facts == {"horsepower": 203, "test_weight_lbs": 3625, "axle_ratio": 3.18, "gears": 8}
    assert (rav4.displacement_l, rav4.cylinders, rav4.transmission) == (2.5, 4, "Automatic 8-speed")
    assert rav4.line == 2
    assert rav4.data_date == date(2020, 10, 2)
    assert "Rated horsepower 203 hp" in rav4.content
    assert "not curb weight" in rav4.content
    assert "50.3" not in rav4.content  # a lab cycle result is not the window-sticker MPG


def test_record_ids_are_stable_and_readable(tmp_path: Path) -> None:
    first, _ = _load(tmp_path)
    again, _ = _load(tmp_path)
    assert [d.record_id for d in first] == [d.record_id for d in again]
    assert first[0].record_id.startswith("2019:toyota:rav4:")


def test_make_typed_as_a_year_falls_back_to_the_manufacturer(tmp_path: Path) -> None:
    docs, _ = _load(tmp_path)
    lucid = next(d for d in docs if d.make_key == "lucid")
    assert (lucid.make, lucid.model) == ("Lucid", "Air Touring AWD")
    assert lucid.displacement_l is None
    assert lucid.engine == "electric motor"
    assert lucid.facts["horsepower"] == 620


def test_bad_rows_are_reported_and_the_rest_still_loads(tmp_path: Path) -> None:
    docs, bad = _load(tmp_path)
    assert [b.line for b in bad] == [8, 9]
    assert "Rated Horsepower" in bad[0].reason
    assert "Model Year" in bad[1].reason
    assert {d.make_key for d in docs} == {"toyota", "ford", "lucid"}


def test_a_workbook_written_by_a_spreadsheet_library_loads_what_the_csv_loads(tmp_path: Path) -> None:
    # EPA publishes the test cars only as .xlsx: numbers stored as numbers, shared strings, empty
    # cells, a second sheet after the data.
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append([_cell(text) for text in row])
    book.create_sheet("Notes").append(["Test Category", "what the cycle means"])
    path = tmp_path / "19tstcar-2020-10-02.xlsx"
    book.save(path)

    docs, bad = _split(test_cars.load([path]))

    from_csv, bad_from_csv = _load(tmp_path)
    assert [(d.record_id, d.line, d.facts, d.content) for d in docs] == [
        (d.record_id, d.line, d.facts, d.content) for d in from_csv
    ]
    assert [(b.line, b.reason) for b in bad] == [(b.line, b.reason) for b in bad_from_csv]
    assert len(docs) == 3
