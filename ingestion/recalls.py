"""NHTSA recalls: one document per campaign x make x model x model year.

Two inputs give the same documents:

* NHTSA's published recall document index, `RCL_FROM_2020_2024.zip` and
  `RCL_FROM_2025_2026.zip` (one row per recall document x vehicle). Vehicle campaigns
  (third character `V`) are kept and grouped per campaign; one summary is chosen per
  campaign: among summaries that describe a hazard (crash, injury, fire, risk, "may
  fail"...), an owner letter first, then a dealer notice, then the longest; with no
  hazard summary, the longest. Data date: the date stamped on the files in the zip.
* the per-vehicle file derived that way (`nhtsa_recalls_by_vehicle_2020_2026.csv.gz`,
  columns `nhtsa_campaign, campaign_year, make, model, model_year, campaign_summary,
  summary_document, n_documents`). Data date: the date of the NHTSA zips
  when they lie beside it, else the file's modification date (see `derived_date`).
  The two inputs agree on every record; the chosen summary document differs for about
  3% of campaigns (ties between near-identical letters).

Record id: `<campaign>:<MAKE>:<MODEL>:<year>` in NHTSA's spelling (`23V158:HONDA:CR-V:2019`).
Model year 9999 (not applicable) is stored as an unknown year.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ingestion.documents import BadRow, RowError, VehicleDoc, integer, year_of
from ingestion.sources import Row, archive_date, file_date, read_rows
from tools.domain.names import base_model, display_make, make_key, model_key

DATASET = "nhtsa-recalls"
DEFAULT_URLS = (
    "https://static.nhtsa.gov/odi/ffdd/rcl/RCL_FROM_2020_2024.zip",
    "https://static.nhtsa.gov/odi/ffdd/rcl/RCL_FROM_2025_2026.zip",
)
SHARED_FILES = ("nhtsa_RCL_FROM_2020_2024.zip", "nhtsa_RCL_FROM_2025_2026.zip")
SHARED_DERIVED_FILE = "nhtsa_recalls_by_vehicle_2020_2026.csv.gz"
UNKNOWN_YEAR = 9999
EMBED_CHARS = 360  # the opening of a summary says what fails; the model reads ~256 tokens at most

_CAMPAIGN = re.compile(r"^(\d\d)([VETC])([0-9A-Z]{3})$")  # a few carry letters: 21V00F
_HAZARD = re.compile(r"crash|injur|fire|risk|may fail|may not", re.IGNORECASE)
_OWNER_LETTER = ("RCONL",)
_DEALER_NOTICE = ("RCMN",)

# Component inferred from the summary: the first rule whose pattern matches wins.
_COMPONENTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("air bags", r"air ?bag|inflator"),
        ("seat belts", r"seat ?belt|buckle|pretensioner"),
        ("child seat", r"child (?:restraint|seat)"),
        ("back-over prevention", r"rear ?view camera|rearview|back-?up camera|rear camera|back-?over"),
        ("service brakes", r"\bbrake|abs\b|master cylinder"),
        ("steering", r"steering"),
        ("fuel system", r"fuel (?:pump|line|tank|leak|injector|rail|hose|system)|fuel may leak"),
        ("high-voltage battery", r"high[- ]voltage|battery (?:pack|cell|module)|traction battery"),
        ("electrical system", r"wiring|wire harness|short circuit|electrical|fuse|12[- ]?v(?:olt)? battery"),
        ("power train", r"transmission|axle|drive ?shaft|driveshaft|park(?:ing)? pawl|propeller shaft"),
        ("engine", r"engine|crankshaft|camshaft|piston|oil (?:leak|pump)|turbo"),
        ("suspension", r"suspension|control arm|tie rod|ball joint|coil spring|stabilizer"),
        ("tires and wheels", r"\btires?\b|wheel (?:nut|stud|bolt)|lug nut|\bwheels?\b"),
        ("exterior lighting", r"headl(?:amp|ight)|tail ?(?:lamp|light)|lamp|turn signal|lighting"),
        ("visibility", r"windshield|wiper|mirror|defrost"),
        ("seats", r"\bseats?\b|seat back|head ?rest"),
        ("latches and doors", r"latch|door|hood|tailgate|liftgate|trunk"),
        ("structure", r"frame|weld|structure|body mount"),
        ("instrument panel and software", r"instrument (?:panel|cluster)|display|software|speedometer"),
        ("labels", r"label|certification|tire information placard"),
        ("exhaust", r"exhaust|catalytic"),
        ("hitch and trailer", r"hitch|trailer|tow"),
    )
)


@functools.lru_cache(maxsize=8192)
def infer_component(summary: str) -> str:
    """Name the component a recall summary is about (`air bags`, `service brakes`...), or `unknown`.

    Many summaries are administrative ("Manufacturer Notices to Dealers"): those say nothing
    about the defect, and the answer is `unknown`, not a guess.
    """
    for name, pattern in _COMPONENTS:
        if pattern.search(summary):
            return name
    return "unknown"


def campaign_number(raw: str) -> tuple[str, int]:
    """Check a short campaign id (`20V286`) and return it with its filing year.

    Raises:
        RowError: not NHTSA's `YYXNNN` form.
    """
    text = raw.strip().upper()
    found = _CAMPAIGN.match(text)
    if found is None:
        raise RowError(f"campaign: not an NHTSA id: {raw[:20]!r}")
    return text, 2000 + int(found[1])


def load(paths: Sequence[Path]) -> Iterator[VehicleDoc | BadRow]:
    """Read NHTSA recall files (document-index zips and/or the per-vehicle CSV)."""
    zips = [p for p in paths if p.name.lower().endswith(".zip")]
    others = [p for p in paths if p not in zips]
    if zips:
        yield from _load_index(zips)
    for path in others:
        when = derived_date(path)
        for row in read_rows(path):
            try:
                yield _from_derived(row, when)
            except RowError as e:
                yield BadRow(row.line, str(e), row.member)


def derived_date(path: Path) -> date:
    """Return the data date of a derived per-vehicle file.

    It is the date of the NHTSA index it was derived from when that zip lies beside it
    (`*RCL_FROM_*.zip`), else the file's modification date.
    """
    dates = [d for z in path.parent.glob("*RCL_FROM_*.zip") if (d := archive_date(z)) is not None]
    return max(dates) if dates else file_date(path)


def _from_derived(row: Row, when: date) -> VehicleDoc:
    v = row.values
    if "__width__" in v:
        raise RowError(f"{v['__width__']} fields where the header has {len(v) - 1}")
    campaign, filed = campaign_number(v.get("nhtsa_campaign", ""))
    if campaign[2] != "V":
        raise RowError(f"campaign {campaign}: not a vehicle campaign")
    summary = " ".join((v.get("campaign_summary") or "").split())
    documents = integer(v.get("n_documents"), "n_documents")
    return _document(
        campaign,
        filed,
        v.get("make", ""),
        v.get("model", ""),
        v.get("model_year", ""),
        summary,
        (v.get("summary_document") or "").strip(),
        documents,
        when,
        row.line,
    )


def _document(
    campaign: str,
    filed: int,
    raw_make: str,
    raw_model: str,
    raw_year: str,
    summary: str,
    summary_document: str,
    documents: int | None,
    when: date | None,
    line: int,
) -> VehicleDoc:
    make_text = " ".join(raw_make.split())
    model_text = " ".join(raw_model.split())
    if not make_text or not model_text:
        raise RowError("missing make or model")
    if not summary:
        raise RowError("missing summary")
    year_value = year_of(raw_year, "model year", low=1900, high=UNKNOWN_YEAR)
    year = None if year_value == UNKNOWN_YEAR else year_value
    key = make_key(make_text)
    make = display_make(key)
    component = infer_component(summary)
    facts: dict[str, Any] = {
        "campaign": f"{campaign}000",
        "campaign_year": filed,
        "component": component,
        "summary": summary,
    }
    if summary_document:
        facts["summary_document"] = summary_document
    if documents is not None:
        facts["documents"] = documents
    dashed = f"{campaign[:3]}-{campaign[3:]}"
    vehicle = f"{year if year is not None else 'all model years'} {make} {model_text}"
    content = (
        f"Recall {campaign} ({dashed}, {campaign}000) filed {filed}: {vehicle}. "
        f"Component: {component}. {summary}"
    )
    embed_text = f"{component} recall: {_opening(summary)}"
    return VehicleDoc(
        dataset=DATASET,
        record_id=f"{campaign}:{make_text.upper()}:{model_text.upper()}:{year_value}",
        kind="recall",
        year=year,
        make=make,
        make_key=key,
        model=model_text,
        base_model=base_model(model_text),
        model_key=model_key(model_text),
        content=content,
        embed_text=embed_text,
        facts=facts,
        data_date=when,
        line=line,
    )


def _opening(summary: str) -> str:
    if len(summary) <= EMBED_CHARS:
        return summary
    cut = summary[:EMBED_CHARS]
    return cut[: cut.rfind(" ")] if " " in cut else cut


@dataclass
class _Campaign:
    filed: int
    first_line: int
    documents: dict[str, str] = field(default_factory=dict)  # document name -> summary
    vehicles: dict[tuple[str, str, str], int] = field(default_factory=dict)  # -> first line


def _choose_summary(documents: dict[str, str]) -> tuple[str, str]:
    """Pick the campaign's summary: a hazard one (owner letter, dealer notice, longest), else the longest.

    Ties go to the document listed first in the file.
    """
    named = [
        (i, name, " ".join(text.split())) for i, (name, text) in enumerate(documents.items()) if text.strip()
    ]
    if not named:
        return "", ""
    hazards = [item for item in named if _HAZARD.search(item[2])]

    def rank(item: tuple[int, str, str]) -> tuple[int, int, int]:
        order, name, text = item
        prefix = name.split("-", 1)[0].upper()
        kind = 0 if prefix in _OWNER_LETTER else 1 if prefix in _DEALER_NOTICE else 2
        return (kind, -len(text), order)

    if hazards:
        _, name, text = min(hazards, key=rank)
    else:
        _, name, text = min(named, key=lambda item: (-len(item[2]), item[0]))
    return name, text


def _load_index(paths: Sequence[Path]) -> Iterator[VehicleDoc | BadRow]:
    when = max((d for p in paths if (d := archive_date(p)) is not None), default=None)
    campaigns: dict[str, _Campaign] = {}
    for path in paths:
        for row in read_rows(path):
            v = row.values
            try:
                if "__width__" in v:
                    raise RowError(f"{v['__width__']} fields where the header has {len(v) - 1}")
                campaign, filed = campaign_number(v.get("NHTSA ID", ""))
            except RowError as e:
                yield BadRow(row.line, str(e), row.member)
                continue
            if campaign[2] != "V":
                continue  # equipment, tires and child seats: not vehicle recalls
            entry = campaigns.setdefault(campaign, _Campaign(filed, row.line))
            document = (v.get("DOCUMENT NAME") or "").strip()
            summary = v.get("SUMMARY") or ""
            if document and len(summary) > len(entry.documents.get(document, "")):
                entry.documents[document] = summary
            elif document:
                entry.documents.setdefault(document, summary)
            vehicle = (v.get("MAKE") or "", v.get("MODEL") or "", (v.get("MODEL YEAR") or "").strip())
            entry.vehicles.setdefault(vehicle, row.line)
    for campaign, entry in campaigns.items():
        document, summary = _choose_summary(entry.documents)
        for (raw_make, raw_model, raw_year), line in entry.vehicles.items():
            try:
                yield _document(
                    campaign,
                    entry.filed,
                    raw_make,
                    raw_model,
                    raw_year,
                    summary,
                    document,
                    len(entry.documents),
                    when,
                    line,
                )
            except RowError as e:
                yield BadRow(line, str(e))
