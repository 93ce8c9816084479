"""Decode accuracy against VIN decodes recorded from the live NHTSA vPIC API.

Every recording in `vpic_recorded_responses.jsonl` is decoded through the VIN
capability (`tools.vin.decode_many`, offline provider) and its key fields are
compared with what vPIC answered when the recording was made. The report gives
the agreement per field and explains every disagreement, with the evidence the
offline data release holds (when the pattern behind our value was created).

Run it with `python -m evals.vin_accuracy [--data PATH] [--out DIR] [--min-rate 0.995]`.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import ultravin

from tools.domain.vehicle import DecodedVehicle
from tools.providers.ultravin import UltravinDecoder
from tools.vin import MAX_VINS_PER_CALL, VinDeps, VinResult, decode_many

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "vpic_recorded_responses.jsonl"
DEFAULT_OUT = REPO_ROOT / "evals" / "results"
DEFAULT_MIN_RATE = 0.995
# Recorders and vPIC releases write litres with 1 to 9 decimals ("3.2", "3.211864544").
DISPLACEMENT_TOLERANCE_L = 0.05

# What the recorders dropped as "nothing here" (see the data README), plus vPIC's own
# spellings of the same; our decoder maps them to None too.
EMPTY_VALUES = frozenset({"", "0", "not applicable", "none", "n/a", "null"})

# vPIC renamed these variables; recordings made before the rename use the old names.
LEGACY_VARIABLES = {
    "Engine Brake (hp)": "Engine Brake (hp) From",
    "Engine Brake (hp) up to": "Engine Brake (hp) To",
}

# Our validator's rejection reasons as vPIC error codes.
REJECTION_CODES = {
    "invalid_characters": "400",  # vPIC: "400 - Invalid Characters Present"
    "forbidden_letters": "400",  # I, O and Q are outside vPIC's alphabet too
    "too_short": "6",  # vPIC: "6 - Incomplete VIN"
}

# Explanation categories, most specific first.
REJECTED = "rejected before decoding (by design)"
ROUNDED = "recorded value was rounded"
MOVED = "vPIC moved the value to another naming variable after the recording"
PROCEDURE = "vPIC decoding procedure changed after the recording"
DATA_CHANGED = "vPIC data changed after the recording"
REMOVED = "value absent from this vPIC release"
PREDATES = "unexplained: this release's pattern predates the recording"
RELEASE = "vPIC data release differs (no provenance to date it)"

_YEAR_HINT = re.compile(r"modelyear=(\d{4})", re.IGNORECASE)
_CODE_LIST = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")
_LEADING_CODE = re.compile(r"^\s*(\d+)\s+-\s+(.*)$", re.DOTALL)
_RECORDED_DATE = re.compile(r"(\d{4})[-_](\d{2})(?:[-_](\d{2}))?")
# Variables vPIC has moved names between across releases (a trim that became a note...).
MOVABLE_VARIABLES = ("Trim", "Trim2", "Series", "Series2", "Note")

Kind = Literal["text", "integer", "litres", "number", "codes"]
Value = str | int | float | frozenset[str] | None


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded vPIC decode, with its values keyed by vPIC variable names."""

    line: int
    vin: str
    endpoint: str
    recorded: str
    source: str
    complete: bool  # False when the recorder dropped empty values
    year_hint: int | None
    values: Mapping[str, str | None]

    @property
    def recorded_by(self) -> date | None:
        """The latest day the recording can have been made (its commit, post or dump month)."""
        found = _RECORDED_DATE.search(self.recorded)
        if found is None:
            return None
        year, month = int(found.group(1)), int(found.group(2))
        day = int(found.group(3)) if found.group(3) else calendar.monthrange(year, month)[1]
        return date(year, month, day)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A key field: its report name, vPIC variable, comparison kind and where we keep it."""

    name: str
    variable: str
    kind: Kind
    read: Callable[[DecodedVehicle], Value]


def _error_codes(vehicle: DecodedVehicle) -> frozenset[str]:
    return frozenset(issue.code for issue in vehicle.errors) or frozenset({"0"})


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("make", "Make", "text", lambda v: v.make),
    FieldSpec("model", "Model", "text", lambda v: v.model),
    FieldSpec("model_year", "Model Year", "integer", lambda v: v.model_year),
    FieldSpec("trim", "Trim", "text", lambda v: v.trim),
    FieldSpec("series", "Series", "text", lambda v: v.series),
    FieldSpec("body_class", "Body Class", "text", lambda v: v.body_class),
    FieldSpec("vehicle_type", "Vehicle Type", "text", lambda v: v.vehicle_type),
    FieldSpec("doors", "Doors", "integer", lambda v: v.doors),
    FieldSpec("drive_type", "Drive Type", "text", lambda v: v.drive_type),
    FieldSpec("engine_cylinders", "Engine Number of Cylinders", "integer", lambda v: v.engine.cylinders),
    FieldSpec("displacement_l", "Displacement (L)", "litres", lambda v: v.engine.displacement_l),
    FieldSpec("fuel_type_primary", "Fuel Type - Primary", "text", lambda v: v.engine.fuel_type_primary),
    FieldSpec("engine_hp", "Engine Brake (hp) From", "number", lambda v: v.engine.hp),
    FieldSpec("plant_country", "Plant Country", "text", lambda v: v.plant.country),
    FieldSpec("plant_state", "Plant State", "text", lambda v: v.plant.state),
    FieldSpec("plant_city", "Plant City", "text", lambda v: v.plant.city),
    FieldSpec("transmission_style", "Transmission Style", "text", lambda v: v.transmission.style),
    FieldSpec("error_codes", "Error Code", "codes", _error_codes),
)


@dataclass(frozen=True, slots=True)
class FieldScore:
    """Agreement on one field; `both_empty` counts agreements where neither side had a value."""

    field: str
    compared: int
    agreed: int
    both_empty: int = 0
    not_recorded: int = 0
    within_tolerance: int = 0  # agreements that are not exact (litres)
    largest_difference: float = 0.0

    @property
    def rate(self) -> float:
        """The share of compared VINs that agree (1.0 when nothing was compared)."""
        return self.agreed / self.compared if self.compared else 1.0


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One field of one VIN where our decode and the recording differ, and why."""

    vin: str
    line: int
    field: str
    recorded: str | None
    ours: str | None
    category: str
    explanation: str


@dataclass(frozen=True)
class AccuracyReport:
    """The outcome of one evaluation run."""

    data_path: str
    generated_on: str
    data_version: str
    lines: int
    vins_compared: int
    fields: tuple[FieldScore, ...]
    disagreements: tuple[Disagreement, ...]
    categories: dict[str, int] = field(default_factory=dict)

    def below(self, min_rate: float) -> list[FieldScore]:
        """Return the fields whose agreement is under `min_rate`."""
        return [f for f in self.fields if f.rate < min_rate]

    def to_json(self) -> dict[str, object]:
        """Return the report as JSON-ready data."""
        return {
            "data_path": self.data_path,
            "generated_on": self.generated_on,
            "data_version": self.data_version,
            "lines": self.lines,
            "vins_compared": self.vins_compared,
            "fields": [{**asdict(f), "rate": round(f.rate, 6)} for f in self.fields],
            "categories": self.categories,
            "disagreements": [asdict(d) for d in self.disagreements],
        }

    def table(self, min_rate: float = DEFAULT_MIN_RATE) -> str:
        """Render the per-field agreement as a Markdown table."""
        rows = [
            "| field | compared | agreed | rate | both empty | status |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for score in self.fields:
            status = "ok" if score.rate >= min_rate else "BELOW"
            rows.append(
                f"| {score.field} | {score.compared} | {score.agreed} | {score.rate:.2%} "
                f"| {score.both_empty} | {status} |"
            )
        return "\n".join(rows)

    def to_markdown(self, min_rate: float = DEFAULT_MIN_RATE) -> str:
        """Render the report as Markdown: the table, the categories and every disagreement."""
        out = [
            f"# VIN decode accuracy — {self.generated_on}",
            "",
            f"{self.vins_compared} of {self.lines} recorded VINs decoded through `tools.vin.decode_many` "
            f"(offline provider, {self.data_version}) and compared with the live vPIC recordings "
            f"in `{self.data_path}`. Threshold: {min_rate:.1%} per field.",
            "",
            "Text is compared case-insensitively after whitespace normalisation; empty, `0`, "
            "`Not Applicable`, `None` and `N/A` all mean no value (what most recorders dropped); "
            f"litres agree within {DISPLACEMENT_TOLERANCE_L} L; error codes are compared as sets, "
            "and an input our validator rejects counts as vPIC's code 400 (invalid characters).",
            "",
            self.table(min_rate),
            "",
            *[
                f"{f.field}: {f.within_tolerance} agreements are within the tolerance but not exact "
                f"(largest difference {f.largest_difference:g})."
                for f in self.fields
                if f.within_tolerance
            ],
            "",
            "## Disagreements by category",
            "",
        ]
        out += [f"- {category}: {count}" for category, count in self.categories.items()] or ["None."]
        out += ["", "## Every disagreement", ""]
        if self.disagreements:
            out += ["| line | VIN | field | recorded | ours | explanation |", "|---:|---|---|---|---|---|"]
            out += [
                f"| {d.line} | {d.vin} | {d.field} | {_cell(d.recorded)} | {_cell(d.ours)} "
                f"| **{d.category}**: {_cell(d.explanation)} |"
                for d in self.disagreements
            ]
        else:
            out.append("None.")
        return "\n".join(out) + "\n"


def _cell(value: str | None) -> str:
    return "—" if value is None else value.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- loading


def load_recordings(path: Path) -> list[Recording]:
    """Read the recordings, with compact keys (`ModelYear`) turned into variable names."""
    by_code = {str(element["code"]): variable for variable, element in ultravin.ELEMENTS.items()}
    recordings = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            compact = str(row.get("key_style", "")).startswith("compact")
            values: dict[str, str | None] = {}
            result: dict[str, Any] = row["result"]
            for key, value in result.items():
                name = by_code.get(key, key) if compact else key
                name = LEGACY_VARIABLES.get(name, name)
                values[name] = None if value is None else str(value)
            endpoint = str(row["endpoint"])
            hint = _YEAR_HINT.search(endpoint)
            recordings.append(
                Recording(
                    line=number,
                    vin=str(row["vin"]),
                    endpoint=endpoint,
                    recorded=str(row.get("recorded", "")),
                    source=str(row.get("source", "")),
                    complete=str(row.get("completeness", "")).startswith("full"),
                    year_hint=int(hint.group(1)) if hint else None,
                    values=values,
                )
            )
    return recordings


def count_lines(path: Path) -> int:
    """Count the non-blank lines of the file (one recording each)."""
    with path.open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())


# ---------------------------------------------------------------- decoding


async def decode_recordings(recordings: Sequence[Recording], deps: VinDeps) -> list[VinResult]:
    """Decode every recording's VIN through the capability, in batches it accepts."""
    results: list[VinResult] = []
    for start in range(0, len(recordings), MAX_VINS_PER_CALL):
        chunk = recordings[start : start + MAX_VINS_PER_CALL]
        results += await decode_many([r.vin for r in chunk], deps=deps, years=[r.year_hint for r in chunk])
    if len(results) != len(recordings):
        raise RuntimeError(f"the capability returned {len(results)} results for {len(recordings)} VINs")
    return results


# ---------------------------------------------------------------- comparing


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    collapsed = " ".join(value.split())
    return None if collapsed.casefold() in EMPTY_VALUES else collapsed


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        parsed = float(str(value))
    except ValueError:
        return None
    return parsed if parsed > 0 and math.isfinite(parsed) else None


def _recorded_messages(values: Mapping[str, str | None]) -> dict[str, str]:
    """Read vPIC's error codes and messages from `Error Code` ("1,14") and `Error Text`."""
    code_field = (values.get("Error Code") or "").strip()
    # Old responses put the text in `Error Code`; recorders that dropped "0" kept `Error Text`.
    text = values.get("Error Text") or ("" if _CODE_LIST.match(code_field) else code_field)
    messages = {
        m.group(1): m.group(2).strip() for part in text.split("; ") if (m := _LEADING_CODE.match(part))
    }
    if _CODE_LIST.match(code_field):
        return {c.strip(): messages.get(c.strip(), "") for c in code_field.split(",")}
    return messages or {"0": ""}


def _normalise(kind: Kind, value: Value) -> Value:
    if kind == "codes":
        return value
    if kind == "text":
        text = _text(None if value is None else str(value))
        return None if text is None else text.casefold()
    number = _number(value)
    if number is None:
        return None
    return round(number) if kind == "integer" else number


def _agrees(kind: Kind, recorded: Value, ours: Value, *, rejected: bool) -> bool:
    if kind == "codes" and rejected:
        # A rejected input has one code; vPIC adds its guesses' codes (1, 4, 14...) to 400.
        return isinstance(ours, frozenset) and isinstance(recorded, frozenset) and ours <= recorded
    if kind == "litres" and isinstance(recorded, float) and isinstance(ours, float):
        return abs(recorded - ours) <= DISPLACEMENT_TOLERANCE_L + 1e-9
    if kind == "number" and isinstance(recorded, float) and isinstance(ours, float):
        return math.isclose(recorded, ours, abs_tol=1e-6)
    return recorded == ours


def _show(value: Value) -> str | None:
    if isinstance(value, frozenset):
        return ",".join(sorted(value, key=lambda c: (len(c), c)))
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Pair:
    """One field of one VIN: both sides as shown in the report and as compared."""

    spec: FieldSpec
    recording: Recording
    result: VinResult
    recorded_shown: str | None
    ours_shown: str | None
    recorded: Value
    ours: Value


def _pair(spec: FieldSpec, recording: Recording, result: VinResult) -> _Pair:
    if spec.kind == "codes":
        recorded: Value = frozenset(_recorded_messages(recording.values))
        recorded_shown = _show(recorded)
    else:
        raw = recording.values.get(spec.variable)
        recorded, recorded_shown = _normalise(spec.kind, raw), raw
    ours_raw: Value
    if result.vehicle is not None:
        ours_raw = spec.read(result.vehicle)
    elif spec.kind == "codes":
        reason = str((result.error or {}).get("reason", ""))
        ours_raw = frozenset({REJECTION_CODES.get(reason, f"rejected:{reason}")})
    else:
        ours_raw = None
    return _Pair(
        spec, recording, result, recorded_shown, _show(ours_raw), recorded, _normalise(spec.kind, ours_raw)
    )


def compare(
    recordings: Sequence[Recording], results: Sequence[VinResult], *, data_version: str
) -> tuple[list[FieldScore], list[Disagreement]]:
    """Compare each recording's key fields with our result for the same VIN."""
    compared: Counter[str] = Counter()
    agreed: Counter[str] = Counter()
    both_empty: Counter[str] = Counter()
    not_recorded: Counter[str] = Counter()
    inexact: Counter[str] = Counter()
    largest: dict[str, float] = {}
    disagreements: list[Disagreement] = []
    for recording, result in zip(recordings, results, strict=True):
        failed: list[_Pair] = []
        for spec in FIELDS:
            if recording.complete and spec.kind != "codes" and spec.variable not in recording.values:
                not_recorded[spec.name] += 1  # the vPIC version recorded had no such variable
                continue
            pair = _pair(spec, recording, result)
            compared[spec.name] += 1
            if _agrees(spec.kind, pair.recorded, pair.ours, rejected=result.vehicle is None):
                agreed[spec.name] += 1
                both_empty[spec.name] += pair.recorded is None and pair.ours is None
                if isinstance(pair.recorded, float) and isinstance(pair.ours, float):
                    difference = abs(pair.recorded - pair.ours)
                    inexact[spec.name] += difference > 0
                    largest[spec.name] = max(largest.get(spec.name, 0.0), difference)
            else:
                failed.append(pair)
        evidence = release_evidence(recording) if failed and result.vehicle is not None else {}
        for pair in failed:
            category, explanation = explain(pair, evidence, data_version=data_version)
            disagreements.append(
                Disagreement(
                    vin=recording.vin,
                    line=recording.line,
                    field=pair.spec.name,
                    recorded=pair.recorded_shown,
                    ours=pair.ours_shown,
                    category=category,
                    explanation=explanation,
                )
            )
    scores = [
        FieldScore(
            field=s.name,
            compared=compared[s.name],
            agreed=agreed[s.name],
            both_empty=both_empty[s.name],
            not_recorded=not_recorded[s.name],
            within_tolerance=inexact[s.name],
            largest_difference=round(largest.get(s.name, 0.0), 9),
        )
        for s in FIELDS
    ]
    return scores, disagreements


# ---------------------------------------------------------------- explaining


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where the offline release's value of one variable comes from (ultravin's provenance)."""

    value: str
    source: str
    created: date | None
    pattern_id: int | None


def release_evidence(recording: Recording) -> dict[str, list[Evidence]]:
    """Return the offline release's provenance of every variable for the recording's VIN."""
    decoded: dict[str, Any] = ultravin.decode(recording.vin, year=recording.year_hint, full=True)
    evidence: dict[str, list[Evidence]] = {}
    for element in decoded["elements"]:
        created = element.get("created_on")
        evidence.setdefault(str(element["variable"]), []).append(
            Evidence(
                value=str(element.get("value")),
                source=str(element.get("source")),
                created=None if created is None else datetime.fromtimestamp(created / 1e6, UTC).date(),
                pattern_id=element.get("pattern_id"),
            )
        )
    return evidence


def explain(pair: _Pair, evidence: Mapping[str, list[Evidence]], *, data_version: str) -> tuple[str, str]:
    """Return a category and a sentence explaining why our value differs from the recording."""
    recording, result = pair.recording, pair.result
    when = f"recorded {recording.recorded}"
    if result.vehicle is None:
        reason = (result.error or {}).get("reason", "?")
        return REJECTED, (
            f"our validator rejects the input ({reason}) and decodes nothing; vPIC answered with "
            f"error code 400 and still guessed this field from the readable positions ({when})"
        )
    if pair.spec.kind == "litres" and (rounded := _rounded_to(pair.recorded_shown, pair.ours)):
        return ROUNDED, f"our {pair.ours_shown} L rounds to the recorded {rounded}"
    if pair.spec.kind == "codes":
        return _explain_codes(pair, when, data_version)
    moved = _moved(pair, evidence)
    if moved is not None:
        return MOVED, f"{moved} ({when})"
    ours = [e for e in evidence.get(pair.spec.variable, []) if e.created is not None]
    recorded_by = recording.recorded_by
    if pair.ours is not None and ours and recorded_by is not None:
        newest = max(ours, key=lambda e: e.created or date.min)
        origin = f"pattern {newest.pattern_id} ({newest.source}) created {newest.created}"
        if newest.created is not None and newest.created > recorded_by:
            return DATA_CHANGED, (
                f"the live API answered {pair.recorded_shown or 'nothing'} ({when}); {data_version} "
                f"answers {pair.ours_shown} from {origin}, after the recording"
            )
        return PREDATES, (
            f"{data_version} answers {pair.ours_shown} from {origin}, before the recording ({when}), "
            f"which has {pair.recorded_shown or 'nothing'}: the recorder may have dropped or edited "
            "the value, or live vPIC used data this release does not carry"
        )
    if pair.ours is None:
        return REMOVED, (
            f"the live API answered {pair.recorded_shown} ({when}); no pattern of {data_version} "
            f"gives {pair.spec.variable} for this VIN, so vPIC removed or re-keyed it since "
            "(cannot be dated offline)"
        )
    return RELEASE, (
        f"the live API answered {pair.recorded_shown or 'nothing'} ({when}); {data_version} answers "
        f"{pair.ours_shown}, from a rule without a creation date"
    )


def _rounded_to(recorded: str | None, ours: Value) -> str | None:
    if recorded is None or not isinstance(ours, float):
        return None
    decimals = len(recorded.partition(".")[2])
    return recorded if _number(recorded) == round(ours, decimals) else None


def _moved(pair: _Pair, evidence: Mapping[str, list[Evidence]]) -> str | None:
    """Describe how the value moved between naming variables (Trim, Series, Note...), if it did."""
    if pair.spec.variable not in MOVABLE_VARIABLES:
        return None
    if isinstance(pair.recorded, str):
        for variable in _others(MOVABLE_VARIABLES, pair.spec.variable):
            for item in evidence.get(variable, []):
                if pair.recorded in " ".join(item.value.split()).casefold():
                    dated = f", created {item.created}" if item.created else ""
                    return (
                        f"the live API gave {pair.recorded_shown} as {pair.spec.variable}; this release "
                        f"gives {item.value!r} as {variable} (pattern {item.pattern_id}{dated})"
                    )
    if isinstance(pair.ours, str):
        for variable in _others(MOVABLE_VARIABLES, pair.spec.variable):
            value = pair.recording.values.get(variable)
            ours_there = {" ".join(e.value.split()).casefold() for e in evidence.get(variable, [])}
            if _normalise("text", value) == pair.ours and pair.ours not in ours_there:
                origin = _dated(evidence, pair.spec.variable)
                return (
                    f"the live API gave {value} as {variable}; this release gives it as "
                    f"{pair.spec.variable}{origin}"
                )
    return None


def _others(variables: tuple[str, ...], variable: str) -> list[str]:
    return [v for v in variables if v != variable]


def _dated(evidence: Mapping[str, list[Evidence]], variable: str) -> str:
    dated = [e for e in evidence.get(variable, []) if e.created is not None]
    if not dated:
        return ""
    newest = max(dated, key=lambda e: e.created or date.min)
    return f" (pattern {newest.pattern_id}, created {newest.created})"


def _explain_codes(pair: _Pair, when: str, data_version: str) -> tuple[str, str]:
    vehicle = pair.result.vehicle
    ours = {issue.code: issue.message for issue in vehicle.errors} if vehicle is not None else {}
    recorded = _recorded_messages(pair.recording.values)
    added = ", ".join(f"{c} ({ours[c]})" for c in sorted(ours.keys() - recorded.keys())) or "none"
    dropped = ", ".join(f"{c} ({recorded[c] or 'no text'})" for c in sorted(recorded.keys() - ours.keys()))
    reworded = sorted(c for c in ours.keys() & recorded.keys() if recorded[c] and recorded[c] != ours[c])
    detail = f"{data_version} adds {added}" + (f" and drops {dropped}" if dropped else "")
    if reworded:
        return PROCEDURE, (
            f"{detail}; the messages of codes {', '.join(reworded)} were reworded too, so the live "
            f"procedure changed between the recording ({when}) and {data_version}"
        )
    return RELEASE, f"{detail} ({when})"


# ---------------------------------------------------------------- running


async def evaluate(path: Path, *, deps: VinDeps | None = None) -> AccuracyReport:
    """Decode every recording in `path` through the capability and score the key fields."""
    decoder = UltravinDecoder()
    deps = deps or VinDeps(decoders={"offline": decoder})
    recordings = load_recordings(path)
    results = await decode_recordings(recordings, deps)
    scores, disagreements = compare(recordings, results, data_version=decoder.data_version)
    categories = Counter(d.category for d in disagreements)
    return AccuracyReport(
        data_path=str(path),
        generated_on=datetime.now(UTC).date().isoformat(),
        data_version=decoder.data_version,
        lines=count_lines(path),
        vins_compared=len(results),
        fields=tuple(scores),
        disagreements=tuple(disagreements),
        categories=dict(categories.most_common()),
    )


def write_report(report: AccuracyReport, out: Path, *, min_rate: float) -> tuple[Path, Path]:
    """Write `vin-accuracy-<date>.md` and `.json` into `out`; return both paths."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"vin-accuracy-{report.generated_on}"
    markdown, data = stem.with_suffix(".md"), stem.with_suffix(".json")
    markdown.write_text(report.to_markdown(min_rate), encoding="utf-8")
    payload = {**report.to_json(), "min_rate": min_rate}
    data.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return markdown, data


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; exit 1 when a field is below the threshold."""
    parser = argparse.ArgumentParser(
        prog="python -m evals.vin_accuracy", description="Score offline decodes against live vPIC recordings."
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the recordings (JSONL)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the .md and .json")
    parser.add_argument("--min-rate", type=float, default=DEFAULT_MIN_RATE, help="per-field threshold")
    args = parser.parse_args(argv)
    data: Path = args.data
    min_rate: float = args.min_rate
    if not data.is_file():
        print(f"no recordings at {data}", file=sys.stderr)  # noqa: T201 - a command-line entry point
        return 2
    report = asyncio.run(evaluate(data))
    markdown, json_path = write_report(report, args.out, min_rate=min_rate)
    print(report.to_markdown(min_rate))  # noqa: T201
    print(f"written: {markdown} and {json_path}")  # noqa: T201
    below = report.below(min_rate)
    for score in below:
        print(f"below {min_rate:.1%}: {score.field} at {score.rate:.2%}", file=sys.stderr)  # noqa: T201
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
