"""EPA/DOE fuel economy (fueleconomy.gov `vehicles.csv`): one document per vehicle record.

Record id: EPA's `id`. Data date: the newest `modifiedOn` in the file. Model names
carry drive and trim suffixes (`RAV4 AWD`, `Camry LE/SE`); the key uses EPA's own
`baseModel`. Empty, 0 and -1 mean unknown, except that an electric vehicle's tailpipe
CO2 of 0 g/mi is a real value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ingestion.documents import (
    BadRow,
    RowError,
    VehicleDoc,
    fmt_num,
    integer,
    number,
    text_or_none,
    year_of,
)
from ingestion.sources import Row, read_rows
from tools.domain.names import base_model, display_make, make_key, model_key

DATASET = "epa"
DEFAULT_URL = "https://www.fueleconomy.gov/feg/epadata/vehicles.csv.zip"
SHARED_FILE = "epa_fueleconomy_vehicles.csv.gz"
REQUIRED = ("id", "year", "make", "model", "city08", "highway08", "comb08")

_DRIVE_SHORT = {
    "Front-Wheel Drive": "FWD",
    "Rear-Wheel Drive": "RWD",
    "All-Wheel Drive": "AWD",
    "4-Wheel or All-Wheel Drive": "4WD/AWD",
    "4-Wheel Drive": "4WD",
    "Part-time 4-Wheel Drive": "part-time 4WD",
    "2-Wheel Drive": "2WD",
}


@functools.lru_cache(maxsize=8192)  # a few thousand distinct stamps over ~50k records
def parse_modified(text: str) -> date | None:
    """Parse EPA's `Tue Jan 01 00:00:00 EST 2013` timestamps (the zone is dropped)."""
    parts = text.split()
    if len(parts) != 6:
        return None
    try:
        return datetime.strptime(f"{parts[1]} {parts[2]} {parts[5]}", "%b %d %Y").date()  # noqa: DTZ007
    except ValueError:
        return None


def data_date(rows: list[Row]) -> date | None:
    """Return the newest `modifiedOn` of the rows."""
    dates = [d for r in rows if (d := parse_modified(r.values.get("modifiedOn", ""))) is not None]
    return max(dates) if dates else None


def load(path: Path) -> Iterator[VehicleDoc | BadRow]:
    """Read an EPA vehicles file and yield a document (or a bad row) per record."""
    rows = list(read_rows(path))
    when = data_date(rows)
    for row in rows:
        try:
            yield to_document(row, when)
        except RowError as e:
            yield BadRow(row.line, str(e), row.member)


def _engine(v: dict[str, str], displ: float | None, cylinders: int | None, electric: bool) -> str | None:
    if electric:
        motor = text_or_none(v.get("evMotor"))
        return f"electric motor {motor}" if motor else "electric motor"
    parts = []
    if displ is not None:
        parts.append(f"{displ:.1f}L")
    if cylinders is not None:
        parts.append(f"{cylinders} cyl")
    if v.get("tCharger", "").strip():
        parts.append("turbo")
    if v.get("sCharger", "").strip() == "S":
        parts.append("supercharged")
    return " ".join(parts) or None


def _facts(v: dict[str, str], electric: bool, atv: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {}

    def put(key: str, column: str, *, digits: int = 1, allow_zero: bool = False) -> None:
        value = number(v.get(column), column, zero_is_unknown=not allow_zero)
        if value is not None and (allow_zero or value > 0):
            facts[key] = int(value) if float(value).is_integer() else round(value, digits)

    put("city_mpg", "city08")
    put("highway_mpg", "highway08")
    put("combined_mpg", "comb08")
    put("city_mpg_alt", "cityA08")
    put("highway_mpg_alt", "highwayA08")
    put("combined_mpg_alt", "combA08")
    put("co2_gpm", "co2TailpipeGpm", digits=0, allow_zero=electric)
    if "co2_gpm" in facts:
        facts["co2_gpm"] = round(facts["co2_gpm"])
    put("annual_fuel_cost_usd", "fuelCost08")
    saving = number(v.get("youSaveSpend"), "youSaveSpend", zero_is_unknown=False)
    if saving is not None:
        facts["five_year_savings_usd"] = int(saving)
    put("fe_score", "feScore")
    put("ghg_score", "ghgScore")
    if electric:
        put("range_mi", "range")
        put("range_city_mi", "rangeCity")
        put("range_highway_mi", "rangeHwy")
    if atv == "Plug-in Hybrid":
        range_a = (v.get("rangeA") or "").strip()
        if range_a.replace(".", "", 1).isdigit():
            put("phev_electric_range_mi", "rangeA")
    put("kwh_per_100mi", "combE")
    put("charge_hours_240v", "charge240")
    passenger = max(
        (number(v.get(c), c) or 0 for c in ("pv4", "pv2", "hpv")),
        default=0,
    )
    if passenger:
        facts["passenger_volume_cuft"] = int(passenger)
    luggage = next((x for c in ("lv4", "lv2", "hlv") if (x := number(v.get(c), c))), None)
    if luggage:
        facts["luggage_volume_cuft"] = int(luggage)
    if motor := text_or_none(v.get("evMotor")):
        facts["ev_motor"] = motor
    if atv:
        facts["atv_type"] = atv
    if v.get("tCharger", "").strip():
        facts["turbo"] = True
    if v.get("sCharger", "").strip() == "S":
        facts["supercharged"] = True
    stop = v.get("startStop", "").strip()
    if stop in ("Y", "N"):
        facts["start_stop"] = stop == "Y"
    if v.get("guzzler", "").strip():
        facts["gas_guzzler"] = True
    return facts


def to_document(row: Row, when: date | None) -> VehicleDoc:
    """Turn one EPA record into a document.

    Raises:
        RowError: a required field is missing or a number does not parse.
    """
    v = row.values
    if "__width__" in v:
        raise RowError(f"{v['__width__']} fields where the header has {len(v) - 1}")
    missing = [c for c in REQUIRED if not (v.get(c) or "").strip()]
    if missing:
        raise RowError(f"missing {', '.join(missing)}")
    record_id = v["id"].strip()
    if not record_id.isdigit():
        raise RowError(f"id: not a number: {record_id[:40]!r}")
    year = year_of(v["year"], low=1984, high=2100)
    raw_make = v["make"].strip()
    key = make_key(raw_make)
    make = display_make(key, raw_make)
    model = " ".join(v["model"].split())
    base = " ".join((v.get("baseModel") or "").split()) or base_model(model)
    fuel = text_or_none(v.get("fuelType"))
    fuel1 = text_or_none(v.get("fuelType1"))
    electric = fuel1 == "Electricity"
    atv = text_or_none(v.get("atvType"))
    displ = None if electric else number(v.get("displ"), "displ")
    cylinders = None if electric else integer(v.get("cylinders"), "cylinders")
    transmission = text_or_none(v.get("trany"))
    drive = text_or_none(v.get("drive"))
    vclass = text_or_none(v.get("VClass"))
    engine = _engine(v, displ, cylinders, electric)
    facts = _facts(v, electric, atv)

    config_parts = [p for p in (engine, transmission, drive) if p]
    if atv and atv not in ("FFV",):
        config_parts.append(atv.lower() if atv != "EV" else "electric")
    configuration = ", ".join(config_parts) or None

    # What is embedded: the vehicle, without year and numbers (shared across years), short.
    words = [make, model]
    if base and base.lower() not in model.lower():
        words.append(f"({base})")
    short_engine = "electric" if electric else engine
    kind_words = [
        p
        for p in (
            _short_class(vclass),
            short_engine,
            _short_transmission(transmission),
            _DRIVE_SHORT.get(drive or "", drive),
            None if electric else _short_fuel(fuel1),
            atv.lower() if atv and atv != "EV" else None,
        )
        if p
    ]
    embed_text = f"{' '.join(words)}, {', '.join(kind_words)}"
    fuel2 = text_or_none(v.get("fuelType2"))
    long_fuel = f"{fuel1} or {fuel2}" if fuel1 and fuel2 else fuel1
    long_words = [p for p in (vclass, engine, transmission, drive, long_fuel) if p]
    if atv and atv not in ("EV", "FFV"):
        long_words.append(atv.lower())
    content = f"{year} {' '.join(words)}, {', '.join(long_words)}. {_numbers_text(facts, electric)}".strip()
    return VehicleDoc(
        dataset=DATASET,
        record_id=record_id,
        kind="spec",
        year=year,
        make=make,
        make_key=key,
        model=model,
        base_model=base,
        model_key=model_key(base),
        content=content,
        embed_text=embed_text,
        configuration=configuration,
        engine=engine,
        cylinders=cylinders,
        displacement_l=displ,
        transmission=transmission,
        drive=drive,
        fuel=fuel,
        vehicle_class=vclass,
        facts=facts,
        data_date=when,
        line=row.line,
    )


def _short_class(vclass: str | None) -> str | None:
    if not vclass:
        return None
    text = vclass.replace("Sport Utility Vehicle", "SUV").replace(" - ", " ")
    for suffix in (" 4WD", " 2WD", "/2wd", "/4wd"):
        text = text.removesuffix(suffix)
    return text.strip().lower()


def _short_transmission(transmission: str | None) -> str | None:
    if not transmission:
        return None
    lower = transmission.lower()
    if "manual" in lower:
        return "manual"
    if "av" in lower or "variable" in lower or "cvt" in lower:
        return "CVT"
    return "automatic"


def _short_fuel(fuel1: str | None) -> str | None:
    if not fuel1:
        return None
    return fuel1.lower().replace("regular gasoline", "gasoline")


def _numbers_text(facts: dict[str, Any], electric: bool) -> str:
    unit = "MPGe" if electric else "mpg"
    out = []
    if {"city_mpg", "highway_mpg", "combined_mpg"} <= facts.keys():
        out.append(
            f"{facts['city_mpg']} city / {facts['highway_mpg']} highway / "
            f"{facts['combined_mpg']} combined {unit}."
        )
    if "combined_mpg_alt" in facts:
        out.append(f"{facts['combined_mpg_alt']} combined on the second fuel.")
    if "range_mi" in facts:
        out.append(f"Electric range {facts['range_mi']} mi.")
    if "phev_electric_range_mi" in facts:
        out.append(f"Electric range {facts['phev_electric_range_mi']} mi.")
    if "kwh_per_100mi" in facts:
        out.append(f"{fmt_num(facts['kwh_per_100mi'])} kWh/100 mi.")
    if "co2_gpm" in facts:
        out.append(f"CO2 {facts['co2_gpm']} g/mi.")
    if "annual_fuel_cost_usd" in facts:
        out.append(f"Annual fuel cost ${facts['annual_fuel_cost_usd']}.")
    if "passenger_volume_cuft" in facts:
        out.append(f"Passenger volume {facts['passenger_volume_cuft']} cu ft.")
    if "luggage_volume_cuft" in facts:
        out.append(f"Luggage volume {facts['luggage_volume_cuft']} cu ft.")
    return " ".join(out)
