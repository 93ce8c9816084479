"""`DecodedVehicle`: one decode result, whichever provider produced it.

Providers translate their payloads into vPIC variable names (`"Model Year"`,
`"Displacement (L)"`, ...) and call `vehicle_from_vpic`; Auto.dev builds the model
directly. Values vPIC uses to say "nothing here" become `None`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

RawValue = str | list[str]

# vPIC error codes that mean the VIN as given is wrong or could not be decoded.
# 1 (check digit) is only a warning: non-North-American VINs may legitimately fail it;
# 9/10 flag off-road vehicles, 12 a model-year hint that disagrees, 14 partial data.
BLOCKING_ERROR_CODES = frozenset({"2", "3", "4", "5", "6", "7", "8", "11", "400"})
_EMPTY = frozenset({"", "not applicable", "n/a", "none", "null"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Engine(_Frozen):
    """Engine facts as decoded."""

    cylinders: int | None = None
    displacement_l: float | None = None
    model: str | None = None
    configuration: str | None = None
    hp: float | None = Field(None, description="Brake horsepower (lower bound when a range is given).")
    hp_to: float | None = None
    fuel_type_primary: str | None = None
    fuel_type_secondary: str | None = None
    turbo: bool | None = None
    electrification: str | None = None


class Transmission(_Frozen):
    """Transmission facts as decoded."""

    style: str | None = None
    speeds: int | None = None


class Plant(_Frozen):
    """Where the vehicle was assembled."""

    city: str | None = None
    state: str | None = None
    country: str | None = None


class DecodeIssue(_Frozen):
    """One error or warning from the decoder (`code` is vPIC's number, as text)."""

    code: str
    message: str


class DecodeSource(_Frozen):
    """Which provider answered, and whether it stood in for another."""

    provider: Literal["offline", "nhtsa", "autodev"]
    fallback: bool = False
    fallback_reason: str | None = Field(None, description="Why the primary provider was not used.")
    requested_provider: str | None = None
    data_version: str | None = Field(None, description="The provider's data release, when known.")
    cached: bool = False


class DecodedVehicle(_Frozen):
    """A decoded VIN, the same shape for every provider."""

    vin: str
    valid: bool
    check_digit_valid: bool
    make: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    model_year: int | None = None
    trim: str | None = None
    series: str | None = None
    body_class: str | None = None
    vehicle_type: str | None = None
    doors: int | None = None
    drive_type: str | None = None
    transmission: Transmission = Transmission()
    engine: Engine = Engine()
    plant: Plant = Plant()
    gvwr: str | None = Field(None, description="Gross vehicle weight rating class (from).")
    gvwr_to: str | None = None
    errors: tuple[DecodeIssue, ...] = ()
    suggestions: tuple[str, ...] = ()
    source: DecodeSource
    raw: dict[str, RawValue] = Field(default_factory=dict)

    @property
    def title(self) -> str:
        """A short human label such as `2003 HONDA Accord EX-V6`."""
        trim = self.trim
        if trim and self.model:
            # vPIC sometimes repeats the model in the trim ("Jetta" / "Jetta, S"): say it once.
            for separator in (", ", " "):
                if trim.startswith(self.model + separator):
                    trim = trim[len(self.model) + len(separator) :] or None
                    break
        parts = [str(self.model_year) if self.model_year else None, self.make, self.model, trim]
        return " ".join(p for p in parts if p) or "Unknown vehicle"

    def with_source(self, source: DecodeSource) -> DecodedVehicle:
        """Return a copy that records a different source (for fallbacks and cache hits)."""
        return self.model_copy(update={"source": source})


def vehicle_from_vpic(
    vin: str, attributes: Mapping[str, RawValue], *, check_digit_valid: bool, source: DecodeSource
) -> DecodedVehicle:
    """Build a `DecodedVehicle` from vPIC variable names and values."""
    get = attributes.get  # read ~30 times per decode, and decodes run thousands of times a second

    def text(name: str) -> str | None:
        value = get(name)
        if value is None:
            return None
        if isinstance(value, list):
            value = "; ".join(value)
        value = value.strip()
        return None if value.lower() in _EMPTY else value

    def number(name: str) -> float | None:
        value = text(name)
        if value is None:
            return None
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if parsed > 0 else None

    def integer(name: str) -> int | None:
        value = number(name)
        return None if value is None else round(value)

    errors = _errors_from_vpic(text("Error Code"), text("Error Text"))
    suggested = text("Suggested VIN")
    suggestions = (suggested,) if suggested and "!" not in suggested and suggested != vin else ()
    make = text("Make")
    turbo = text("Turbo")
    displacement = number("Displacement (L)")
    # Validation is skipped when the inputs already have their fields' exact types: every
    # other value is built here with its exact type. Validating `raw` (some seventy values)
    # and four models per decode used to cost more than the decode itself.
    raw = _raw_of_exact_types(attributes)
    exact = (
        raw is not None
        and type(vin) is str
        and type(check_digit_valid) is bool
        and isinstance(source, DecodeSource)
    )
    build = _build_valid if exact else _build_validated
    return build(
        DecodedVehicle,
        {
            "vin": vin,
            "valid": make is not None and not (errors and {e.code for e in errors} & BLOCKING_ERROR_CODES),
            "check_digit_valid": check_digit_valid,
            "make": make,
            "manufacturer": text("Manufacturer Name"),
            "model": text("Model"),
            "model_year": integer("Model Year"),
            "trim": text("Trim"),
            "series": text("Series"),
            "body_class": text("Body Class"),
            "vehicle_type": text("Vehicle Type"),
            "doors": integer("Doors"),
            "drive_type": text("Drive Type"),
            "transmission": build(
                Transmission, {"style": text("Transmission Style"), "speeds": integer("Transmission Speeds")}
            ),
            "engine": build(
                Engine,
                {
                    "cylinders": integer("Engine Number of Cylinders"),
                    "displacement_l": round(displacement, 3) if displacement is not None else None,
                    "model": text("Engine Model"),
                    "configuration": text("Engine Configuration"),
                    "hp": number("Engine Brake (hp) From"),
                    "hp_to": number("Engine Brake (hp) To"),
                    "fuel_type_primary": text("Fuel Type - Primary"),
                    "fuel_type_secondary": text("Fuel Type - Secondary"),
                    "turbo": None if turbo is None else turbo.lower() in {"yes", "true"},
                    "electrification": text("Electrification Level"),
                },
            ),
            "plant": build(
                Plant,
                {"city": text("Plant City"), "state": text("Plant State"), "country": text("Plant Country")},
            ),
            "gvwr": text("Gross Vehicle Weight Rating From"),
            "gvwr_to": text("Gross Vehicle Weight Rating To"),
            "errors": errors,
            "suggestions": suggestions,
            "source": source,
            "raw": raw if raw is not None else {k: v for k, v in attributes.items() if v not in ("", [])},
        },
    )


def _raw_of_exact_types(attributes: Mapping[str, RawValue]) -> dict[str, RawValue] | None:
    """Return the non-empty attributes when every key is a `str` and every value a `str` or `list[str]`.

    That is what validating `DecodedVehicle.raw` would produce (lists are copied, as
    validation copies them); None means some value needs pydantic's coercion or error.
    """
    raw: dict[str, RawValue] = {}
    for key, value in attributes.items():
        if type(key) is not str:
            return None
        if type(value) is str:
            if value:
                raw[key] = value
        elif type(value) is list and all(type(item) is str for item in value):
            if value:
                raw[key] = list(value)
        else:
            return None
    return raw


_M = TypeVar("_M", bound=BaseModel)


def _build_validated(cls: type[_M], fields: dict[str, Any]) -> _M:
    return cls(**fields)


def _build_valid(cls: type[_M], fields: dict[str, Any]) -> _M:
    """Build `cls` from all its fields, each already of its exact type, without validating.

    This is what `model_construct` does for these models (no extras, private attributes
    or post-init hook), without its per-field alias handling, which costs more than
    validation. Anything else goes through validation.
    """
    if fields.keys() != _DIRECT_FIELDS.get(cls):
        return cls(**fields)
    instance = _new(cls)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(fields))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


_new = object.__new__
_set = object.__setattr__
# The models `_build_valid` may fill directly, with their field names (looked up once:
# attribute lookups on pydantic model classes are slow).
_DIRECT_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    cls: frozenset(cls.model_fields)
    for cls in (DecodedVehicle, Engine, Transmission, Plant)
    if cls.__pydantic_post_init__ is None
    and not cls.__private_attributes__
    and cls.model_config.get("extra") != "allow"
}


def _errors_from_vpic(code_field: str | None, text_field: str | None) -> tuple[DecodeIssue, ...]:
    """Split vPIC's `Error Code` ("1,14") and `Error Text` ("1 - ...; 14 - ...") into issues."""
    if code_field == "0":  # a clean decode, by far the most common answer
        return ()
    messages: dict[str, str] = {}
    for part in (text_field or "").split("; "):
        number, sep, message = part.partition(" - ")
        if sep and number.strip().isdigit():
            messages[number.strip()] = message.strip()
    codes = [c.strip() for c in (code_field or "").split(",") if c.strip()]
    if not codes:
        codes = list(messages)
    return tuple(
        DecodeIssue(code=c, message=messages.get(c, f"vPIC error {c}")) for c in codes if c and c != "0"
    )
