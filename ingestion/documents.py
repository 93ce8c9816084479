"""What every loader produces: vehicle documents, and bad rows with their line numbers."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from tools.domain.facts import FACTS_BY_KEY

Kind = Literal["spec", "recall"]

# The widths of the `vehicle_documents` columns (migration 0005).
_LIMITS = {
    "record_id": 128,
    "make": 64,
    "make_key": 64,
    "model": 128,
    "base_model": 128,
    "model_key": 128,
    "configuration": 256,
    "engine": 256,
    "transmission": 64,
    "drive": 64,
    "fuel": 64,
    "vehicle_class": 64,
}


@dataclass(frozen=True, slots=True)
class VehicleDoc:
    """One record ready to store: typed columns, facts, texts and provenance.

    `content` is what full-text search ranks and what answers quote: year, names,
    configuration and the key numbers with units. `embed_text` is what is embedded: the
    same vehicle description without the year and the numbers, so the many rows that
    differ only by year share one vector (embedding is the cost of ingestion; years
    and numbers are matched by filters and full text, not by meaning).
    """

    dataset: str
    record_id: str
    kind: Kind
    year: int | None
    make: str
    make_key: str
    model: str
    base_model: str
    model_key: str
    content: str
    embed_text: str
    configuration: str | None = None
    engine: str | None = None
    cylinders: int | None = None
    displacement_l: float | None = None
    transmission: str | None = None
    drive: str | None = None
    fuel: str | None = None
    vehicle_class: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    data_date: date | None = None
    line: int = 0  # where the record starts in its source (the first line for grouped records)

    def __post_init__(self) -> None:
        unknown = set(self.facts) - FACTS_BY_KEY.keys()
        if unknown:
            raise ValueError(f"facts not in the registry: {sorted(unknown)}")
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise RowError(f"{name}: longer than {limit} characters")
        if not self.make_key or not self.model_key:
            raise RowError("no make or model")

    def content_hash(self, embedding_model: str) -> str:
        """Return the SHA-256 of everything stored except provenance dates and line numbers.

        The embedding model is part of it: switching models re-embeds every document.
        """
        columns = tuple(getattr(self, name) for name in _HASHED)
        digest = hashlib.sha256(repr((columns, embedding_model)).encode())
        digest.update(json.dumps(self.facts, sort_keys=True, ensure_ascii=False, default=str).encode())
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class BadRow:
    """A source row that could not become a document, and why."""

    line: int
    reason: str
    where: str = ""  # the member of a zip archive, when there are several

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form kept in the ingest run's report."""
        out: dict[str, Any] = {"line": self.line, "reason": self.reason}
        if self.where:
            out["file"] = self.where
        return out


_UNKNOWN = frozenset({"NA", "N/A", "NULL", "NONE", "-"})  # publishers' spellings of "unknown"


# Every field but `facts` (hashed as JSON), `data_date` and `line`; str, int, float or None,
# whose repr() is stable across runs.
_HASHED = tuple(
    name for name in VehicleDoc.__dataclass_fields__ if name not in ("facts", "data_date", "line")
)


class RowError(ValueError):
    """Raised by a loader's field parsers; becomes a `BadRow`."""


def text_or_none(value: str | None) -> str | None:
    """Return the stripped text, or None when empty."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def number(value: str | None, name: str, *, zero_is_unknown: bool = True) -> float | None:
    """Parse a number; empty, `NA` (and by default 0 or negative sentinels) mean unknown.

    Raises:
        RowError: the text is not a number.
    """
    text = (value or "").strip()
    if not text or text.upper() in _UNKNOWN:
        return None
    try:
        parsed = float(text)
    except ValueError as e:
        raise RowError(f"{name}: not a number: {text[:40]!r}") from e
    if not math.isfinite(parsed):
        raise RowError(f"{name}: not a finite number: {text[:40]!r}")
    if zero_is_unknown and parsed <= 0:
        return None
    return parsed


def integer(value: str | None, name: str, *, zero_is_unknown: bool = True) -> int | None:
    """Parse a whole number (`"4"`, `"4.0"`); see `number`.

    Raises:
        RowError: the text is not a whole number.
    """
    parsed = number(value, name, zero_is_unknown=zero_is_unknown)
    if parsed is None:
        return None
    if not parsed.is_integer():
        raise RowError(f"{name}: not a whole number: {value!r}")
    return int(parsed)


def year_of(value: str | None, name: str = "year", *, low: int = 1900, high: int = 2100) -> int:
    """Parse a model year.

    Raises:
        RowError: missing, not a number, or outside `low`..`high`.
    """
    parsed = integer(value, name)
    if parsed is None:
        raise RowError(f"{name}: missing")
    if not low <= parsed <= high:
        raise RowError(f"{name}: out of range: {parsed}")
    return parsed


def fmt_num(value: float, digits: int = 1) -> str:
    """Format a number for text: `28.0` -> `28`, `2.487` -> `2.5` (with `digits=1`)."""
    rounded = round(value, digits)
    if float(rounded).is_integer():
        return str(int(rounded))
    return f"{rounded:.{digits}f}"
