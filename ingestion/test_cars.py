"""EPA Test Car List (MY2015-2024): one document per tested configuration.

The file has one row per laboratory test (FTP, HWY, US06, SC03, CD), so a configuration
appears on several rows. Rows are grouped by model year, make, model, displacement,
cylinders, transmission and gears, drive system and rated horsepower; the group carries
the horsepower, and the most frequent equivalent test weight and axle ratio of its rows.

Record id: `<year>:<make key>:<model key>:<12 hex digits of the configuration>`, stable
across runs. Data date: the date in the row's `source_file` name (`19tstcar-2020-10-02.xlsx`),
else the newest such date in the file. `RND_ADJ_FE` (one lab cycle, not window-sticker
MPG) is not ingested: MPG answers come from the `epa` dataset.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ingestion.documents import BadRow, RowError, VehicleDoc, fmt_num, integer, number, text_or_none, year_of
from ingestion.sources import Row, date_in_name, read_rows
from tools.domain.names import base_model, display_make, make_key, model_key

DATASET = "epa-test-cars"
SOURCE_PAGE = "https://www.epa.gov/compliance-and-fuel-economy-data/data-cars-used-testing-fuel-economy"
DEFAULT_URLS = (
    "https://www.epa.gov/sites/default/files/2018-10/18tstcar-2018-10-24.xlsx",
    "https://www.epa.gov/sites/default/files/2020-10/19tstcar-2020-10-02.xlsx",
    "https://www.epa.gov/sites/default/files/2021-03/20tstcar-2021-03-02.xlsx",
    "https://www.epa.gov/system/files/documents/2022-04/21-tstcar-2022-04-15.xlsx",
    "https://www.epa.gov/system/files/documents/2023-06/22-testcar-2023-06-13.xlsx",
    "https://www.epa.gov/system/files/documents/2024-05/23-testcar-2024-05-17_0.xlsx",
    "https://www.epa.gov/system/files/documents/2025-05/24-testcar-2025-05.xlsx",
)
SHARED_FILE = "epa_test_car_list_MY2015_2024.csv.gz"
_ELECTRIC_DISPLACEMENT = 0.05  # EPA writes 0.001 L for vehicles without an engine

_DRIVE_SHORT = {
    "2-Wheel Drive, Front": "FWD",
    "2-Wheel Drive, Rear": "RWD",
    "All Wheel Drive": "AWD",
    "4-Wheel Drive": "4WD",
    "Part-time 4-Wheel Drive": "part-time 4WD",
}
_TRANSMISSION_SHORT = {
    "Continuously Variable": "CVT",
    "Selectable Continuously Variable (e.g. CVT with paddles)": "CVT with paddles",
    "Automated Manual- Selectable (e.g. Automated Manual with paddles)": "automated manual with paddles",
}


@dataclass
class _Group:
    first: Row
    year: int
    make: str
    key: str
    model: str
    displacement: float | None
    cylinders: int | None
    transmission: str | None
    gears: int | None
    drive: str | None
    horsepower: int | None
    weights: Counter[int] = field(default_factory=Counter)
    axles: Counter[float] = field(default_factory=Counter)
    fuels: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)
    dates: set[date] = field(default_factory=set)
    rows: int = 0


def _make_of(v: dict[str, str]) -> str:
    raw = (v.get("Represented Test Veh Make") or "").strip()
    if not raw or raw.isdigit():  # a model year typed into the make column
        raw = (v.get("Vehicle Manufacturer Name") or "").strip()
    return raw


def _group_key(v: dict[str, str]) -> tuple[Any, ...]:
    year = year_of(v.get("Model Year"), "Model Year", low=1990, high=2100)
    raw_make = _make_of(v)
    if not raw_make:
        raise RowError("missing make")
    key = make_key(raw_make)
    model = " ".join((v.get("Represented Test Veh Model") or "").split())
    shown = display_make(key)
    if model.lower().startswith(shown.lower() + " "):  # "Lucid Air Touring" under make "2023"
        model = model[len(shown) + 1 :]
    if not model:
        raise RowError("missing model")
    displacement = number(v.get("Test Veh Displacement (L)"), "Test Veh Displacement (L)")
    if displacement is not None and displacement < _ELECTRIC_DISPLACEMENT:
        displacement = None
    cylinders = integer(v.get("# of Cylinders and Rotors"), "# of Cylinders and Rotors")
    transmission = text_or_none(v.get("Tested Transmission Type"))
    gears = integer(v.get("# of Gears"), "# of Gears")
    drive = text_or_none(v.get("Drive System Description"))
    horsepower = number(v.get("Rated Horsepower"), "Rated Horsepower")
    return (
        year,
        key,
        model.upper(),
        round(displacement, 1) if displacement is not None else None,
        cylinders,
        transmission,
        gears,
        drive,
        round(horsepower) if horsepower is not None else None,
        raw_make,
        model,
    )


def load(paths: Sequence[Path]) -> Iterator[VehicleDoc | BadRow]:
    """Read test-car files (the concatenated CSV or EPA's yearly workbooks) and group the tests."""
    groups: dict[tuple[Any, ...], _Group] = {}
    file_dates: list[date] = []
    for path in paths:
        if (d := date_in_name(path.name)) is not None:
            file_dates.append(d)
        for row in read_rows(path):
            v = row.values
            try:
                if "__width__" in v:
                    raise RowError(f"{v['__width__']} fields where the header has {len(v) - 1}")
                key = _group_key(v)
                weight = integer(v.get("Equivalent Test Weight (lbs.)"), "Equivalent Test Weight (lbs.)")
                axle = number(v.get("Axle Ratio"), "Axle Ratio")
            except RowError as e:
                yield BadRow(row.line, str(e), row.member)
                continue
            group = groups.get(key[:9])
            if group is None:
                year, mkey, _, displ, cyl, trans, gears, drive, hp, raw_make, model = key
                make = display_make(mkey, raw_make)
                group = _Group(row, year, make, mkey, model, displ, cyl, trans, gears, drive, hp)
                groups[key[:9]] = group
            group.rows += 1
            if weight is not None:
                group.weights[weight] += 1
            if axle is not None:
                group.axles[round(axle, 2)] += 1
            if fuel := text_or_none(v.get("Test Fuel Type Description")):
                group.fuels[fuel] += 1
            if kind := text_or_none(v.get("Vehicle Type")):
                group.types[kind] += 1
            source_date = date_in_name(v.get("source_file") or "") or date_in_name(path.name)
            if source_date is not None:
                group.dates.add(source_date)
    newest = max([d for g in groups.values() for d in g.dates] + file_dates, default=None)
    for group in groups.values():
        try:
            yield _document(group, max(group.dates) if group.dates else newest)
        except RowError as e:
            yield BadRow(group.first.line, str(e), group.first.member)


def _mode(counter: Counter[Any]) -> Any:
    if not counter:
        return None
    return max(counter.items(), key=lambda item: (item[1], item[0]))[0]


def _document(g: _Group, when: date | None) -> VehicleDoc:
    electric = g.displacement is None and (g.cylinders is None) and "Electricity" in g.fuels
    fuel = "Electricity" if "Electricity" in g.fuels else _mode(g.fuels)
    engine: str | None = None
    if g.displacement is not None:
        engine = f"{g.displacement:.1f}L" + (f" {g.cylinders} cyl" if g.cylinders else "")
    elif electric:
        engine = "electric motor"
    transmission = g.transmission
    if transmission and g.gears and g.gears > 1:
        transmission = f"{_TRANSMISSION_SHORT.get(transmission, transmission)} {g.gears}-speed"
    elif transmission:
        transmission = _TRANSMISSION_SHORT.get(transmission, transmission)
    weight = _mode(g.weights)
    axle = _mode(g.axles)
    facts: dict[str, Any] = {}
    if g.horsepower is not None:
        facts["horsepower"] = g.horsepower
    if weight is not None:
        facts["test_weight_lbs"] = weight
    if axle is not None:
        facts["axle_ratio"] = axle
    if g.gears is not None:
        facts["gears"] = g.gears
    config_parts = [p for p in (engine, transmission, g.drive) if p]
    configuration = ", ".join(config_parts) or None
    vehicle_class = _mode(g.types)
    shown = f"{g.make} {g.model}"
    embed_parts = [
        p
        for p in (
            "electric" if electric else engine,
            transmission.lower() if transmission else None,
            _DRIVE_SHORT.get(g.drive or "", g.drive),
        )
        if p
    ]
    embed_text = f"{shown} EPA test car, {', '.join(embed_parts)}, rated horsepower"
    numbers = []
    if g.horsepower is not None:
        numbers.append(f"Rated horsepower {g.horsepower} hp.")
    if weight is not None:
        numbers.append(f"Equivalent test weight {weight} lb (a test class, not curb weight).")
    if axle is not None:
        numbers.append(f"Axle ratio {fmt_num(axle, 2)}.")
    long_parts = [p for p in (engine, transmission, g.drive, fuel) if p]
    content = (
        f"{g.year} {shown} (EPA test car, {vehicle_class or 'vehicle'}): {', '.join(long_parts)}. "
        + " ".join(numbers)
    )
    identity = "|".join(
        str(x)
        for x in (
            g.year,
            g.key,
            g.model.upper(),
            g.displacement,
            g.cylinders,
            g.transmission,
            g.gears,
            g.drive,
            g.horsepower,
        )
    )
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:12]
    mkey = model_key(g.model)
    return VehicleDoc(
        dataset=DATASET,
        record_id=f"{g.year}:{g.key}:{mkey}:{digest}",
        kind="spec",
        year=g.year,
        make=g.make,
        make_key=g.key,
        model=g.model,
        base_model=base_model(g.model),
        model_key=mkey,
        content=content.strip(),
        embed_text=embed_text,
        configuration=configuration,
        engine=engine,
        cylinders=g.cylinders,
        displacement_l=g.displacement,
        transmission=transmission,
        drive=g.drive,
        fuel=fuel,
        vehicle_class=vehicle_class,
        facts=facts,
        data_date=when,
        line=g.first.line,
    )
