"""Source files are read the same way whatever their container, with the lines rows start on."""

from __future__ import annotations

import gzip
import zipfile
from datetime import date
from pathlib import Path

import pytest

from ingestion.sources import SourceError, archive_date, date_in_name, local_file, read_rows

CSV = 'make,model,year\nHonda,"CR-V\nAWD",2019\nToyota,RAV4,2019,extra\n\nFord,F150,2024\n'


def test_plain_gzip_and_zip_give_the_same_rows_and_lines(tmp_path: Path) -> None:
    plain = tmp_path / "v.csv"
    plain.write_text(CSV)
    packed = tmp_path / "v.csv.gz"
    packed.write_bytes(gzip.compress(CSV.encode()))
    archive = tmp_path / "v.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("v.csv", CSV)
    results = [[(r.line, r.values) for r in read_rows(p)] for p in (plain, packed, archive)]
    assert results[0] == results[1] == results[2]
    lines = [line for line, _ in results[0]]
    assert lines == [2, 4, 6]  # the quoted model spans lines 2-3; line 5 is blank
    assert results[0][0][1] == {"make": "Honda", "model": "CR-V\nAWD", "year": "2019"}
    assert results[0][1][1]["__width__"] == "4"  # one field too many: the loader rejects it


def test_zip_rows_name_their_member(tmp_path: Path) -> None:
    archive = tmp_path / "RCL.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(zipfile.ZipInfo("RCL_FROM_2025_2026.csv", date_time=(2026, 2, 23, 8, 1, 0)), CSV)
    assert {r.member for r in read_rows(archive)} == {"RCL_FROM_2025_2026.csv"}
    assert archive_date(archive) == date(2026, 2, 23)


_SPREADSHEET_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _workbook(path: Path, rows_xml: str, shared_strings: tuple[str, ...] = ()) -> Path:
    """Write a minimal workbook: one worksheet holding `rows_xml`, and the shared strings if any."""
    with zipfile.ZipFile(path, "w") as z:
        if shared_strings:
            items = "".join(f"<si><t>{s}</t></si>" for s in shared_strings)
            z.writestr("xl/sharedStrings.xml", f"<sst {_SPREADSHEET_NS}>{items}</sst>")
        z.writestr(
            "xl/worksheets/sheet1.xml",
            f"<worksheet {_SPREADSHEET_NS}><sheetData>{rows_xml}</sheetData></worksheet>",
        )
    return path


def test_xlsx_first_sheet_is_read_with_shared_and_inline_strings(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "19tstcar-2020-10-02.xlsx",
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c>'
        '<c r="C1" t="inlineStr"><is><t>HP</t></is></c></row>'
        '<row r="2"><c r="A2"><v>2019</v></c><c r="B2" t="s"><v>2</v></c><c r="C2"><v>203</v></c></row>'
        '<row r="4"><c r="A4"><v>2020</v></c><c r="C4"><v>176</v></c></row>',
        shared_strings=("Model Year", "Represented Test Veh Make", "TOYOTA"),
    )
    rows = list(read_rows(book))
    assert [(r.line, r.values) for r in rows] == [
        (2, {"Model Year": "2019", "Represented Test Veh Make": "TOYOTA", "HP": "203"}),
        (4, {"Model Year": "2020", "Represented Test Veh Make": "", "HP": "176"}),
    ]


def test_xlsx_rows_and_cells_without_references_follow_the_one_before(tmp_path: Path) -> None:
    # The format lets a writer leave out `r`; Excel writes it, other tools may not.
    book = _workbook(
        tmp_path / "tstcar.xlsx",
        '<row><c t="inlineStr"><is><t>Model Year</t></is></c><c t="inlineStr"><is><t>HP</t></is></c></row>'
        "<row><c><v>2019</v></c><c><v>203</v></c></row>"
        '<row r="5"><c r="B5"><v>176</v></c></row>'
        "<row><c><v>2021</v></c></row>",
    )

    rows = list(read_rows(book))

    assert [(r.line, r.values) for r in rows] == [
        (2, {"Model Year": "2019", "HP": "203"}),
        (5, {"Model Year": "", "HP": "176"}),
        (6, {"Model Year": "2021"}),
    ]


def test_dates_in_publisher_file_names() -> None:
    assert date_in_name("19tstcar-2020-10-02.xlsx") == date(2020, 10, 2)
    assert date_in_name("15tstcar.csv") is None


def test_missing_local_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        local_file(str(tmp_path / "nope.csv"))
