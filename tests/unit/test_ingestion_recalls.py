"""NHTSA recalls become one document per campaign x vehicle, from the derived file or NHTSA's zips."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path

import pytest

from ingestion import recalls
from ingestion.documents import BadRow, VehicleDoc
from tools.domain.names import model_key

DERIVED_HEADER = [
    "nhtsa_campaign",
    "campaign_year",
    "make",
    "model",
    "model_year",
    "campaign_summary",
    "summary_document",
    "n_documents",
]
CRV_SUMMARY = (
    "Owner Notification Letter - Due to improper manufacturing of the seat belt buckle channel, the front "
    "seat belt buckles may not latch properly. An improperly latched seat belt buckle may not securely "
    "restrain occupant(s), increasing the risk of injury to the occupant."
)
RAV4_SUMMARY = (
    "The front lower suspension arms, which connect to the front wheels, on the subject vehicles may have "
    "been manufactured with improperly produced material.  Under certain driving conditions, over time, "
    "affected front lower suspension arms can separate from the front wheel assembly, resulting in a loss "
    "of vehicle control and an increase risk of a crash."
)


def _derived(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "recalls.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DERIVED_HEADER)
        writer.writerows(rows)
    return path


def _docs(items: list[VehicleDoc | BadRow]) -> list[VehicleDoc]:
    return [d for d in items if isinstance(d, VehicleDoc)]


def test_derived_rows_become_recall_documents(tmp_path: Path) -> None:
    path = _derived(
        tmp_path,
        [
            ["23V158", "2023", "HONDA", "CR-V", "2019", CRV_SUMMARY, "RCONL-23V158-8199.pdf", "27"],
            ["20V286", "2020", "TOYOTA", "RAV4", "2019", RAV4_SUMMARY, "RCONL-20V286-0018.pdf", "6"],
        ],
    )
    crv, rav4 = _docs(list(recalls.load([path])))
    assert crv.record_id == "23V158:HONDA:CR-V:2019"
    assert (crv.kind, crv.year, crv.make, crv.make_key, crv.model, crv.model_key) == (
        "recall",
        2019,
        "Honda",
        "honda",
        "CR-V",
        "crv",
    )
    assert crv.model_key == model_key("CR-V AWD")  # meets EPA's spelling
    assert crv.facts == {
        "campaign": "23V158000",
        "campaign_year": 2023,
        "component": "seat belts",
        "summary": CRV_SUMMARY,
        "summary_document": "RCONL-23V158-8199.pdf",
        "documents": 27,
    }
    assert rav4.facts["component"] == "suspension"
    for word in ("23V158", "23V-158", "Honda", "CR-V", "2019", "seat belts"):
        assert word in crv.content
    assert "HONDA" not in crv.embed_text
    assert "2019" not in crv.embed_text


def test_unknown_model_year_9999_is_stored_as_no_year(tmp_path: Path) -> None:
    path = _derived(tmp_path, [["21V900", "2021", "FORD", "F-150", "9999", RAV4_SUMMARY, "", "1"]])
    (doc,) = _docs(list(recalls.load([path])))
    assert doc.year is None
    assert doc.record_id == "21V900:FORD:F-150:9999"
    assert doc.model_key == "f150"


def test_bad_rows_are_counted_with_line_numbers_even_after_a_multi_line_summary(tmp_path: Path) -> None:
    path = _derived(
        tmp_path,
        [
            ["23V158", "2023", "HONDA", "CR-V", "2019", "line one\nline two\nline three", "", "1"],
            ["BAD", "2023", "HONDA", "CR-V", "2019", CRV_SUMMARY, "", "1"],
            ["23V158", "2023", "HONDA", "CR-V", "20x9", CRV_SUMMARY, "", "1"],
            ["23V158", "2023", "", "CR-V", "2020", CRV_SUMMARY, "", "1"],
        ],
    )
    items = list(recalls.load([path]))
    bad = [b for b in items if isinstance(b, BadRow)]
    assert [b.line for b in bad] == [5, 6, 7]  # the summary on line 2 spans three lines
    assert "not an NHTSA id" in bad[0].reason
    assert len(_docs(items)) == 1
    assert _docs(items)[0].facts["summary"] == "line one line two line three"


def test_campaign_ids_with_letters_are_accepted() -> None:
    assert recalls.campaign_number("21V00F") == ("21V00F", 2021)
    with pytest.raises(ValueError, match="NHTSA id"):
        recalls.campaign_number("21-V-00F")


@pytest.mark.parametrize(
    ("summary", "component"),
    [
        ("the driver frontal airbag inflator may rupture", "air bags"),
        ("The rearview camera image may not display", "back-over prevention"),
        ("brake fluid may leak, reducing braking", "service brakes"),
        ("Manufacturer Notices to Dealers", "unknown"),
    ],
)
def test_component_is_inferred_from_the_summary_or_unknown(summary: str, component: str) -> None:
    assert recalls.infer_component(summary) == component


def _index_zip(path: Path, rows: list[list[str]], when: tuple[int, int, int]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    writer.writerow(["NHTSA ID", "DOCUMENT NAME", "MAKE", "MODEL", "MODEL YEAR", "SUMMARY"])
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo(path.stem + ".csv", date_time=(*when, 8, 2, 0)), buffer.getvalue())
    return path


def test_nhtsa_index_zip_is_grouped_per_campaign_and_vehicle(tmp_path: Path) -> None:
    path = _index_zip(
        tmp_path / "RCL_FROM_2020_2024.zip",
        [
            ["20V286", "RCMN-20V286-1111.pdf", "TOYOTA", "RAV4", "2019", "Manufacturer Notice to Dealers"],
            ["20V286", "RCONL-20V286-0018.pdf", "TOYOTA", "RAV4", "2019", RAV4_SUMMARY],
            ["20V286", "RCONL-20V286-0018.pdf", "TOYOTA", "RAV4", "2020", RAV4_SUMMARY],
            ["20E013", "RCMN-20E013-5539.pdf", "BMW", "R 1250 GS", "2019", "Manufacturer Notice to Dealers"],
        ],
        (2026, 2, 23),
    )
    docs = _docs(list(recalls.load([path])))
    assert [d.record_id for d in docs] == [
        "20V286:TOYOTA:RAV4:2019",
        "20V286:TOYOTA:RAV4:2020",
    ]  # no equipment
    first = docs[0]
    assert first.facts["summary_document"] == "RCONL-20V286-0018.pdf"  # the owner letter describing a hazard
    assert first.facts["documents"] == 2
    assert first.data_date == date(2026, 2, 23)  # the date NHTSA stamped in the zip


def test_derived_file_beside_the_zip_takes_the_zip_date(tmp_path: Path) -> None:
    _index_zip(tmp_path / "nhtsa_RCL_FROM_2025_2026.zip", [], (2026, 2, 23))
    path = _derived(tmp_path, [["23V158", "2023", "HONDA", "CR-V", "2019", CRV_SUMMARY, "", "1"]])
    (doc,) = _docs(list(recalls.load([path])))
    assert doc.data_date == date(2026, 2, 23)
