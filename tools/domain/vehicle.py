"""`DecodedVehicle`: one decode result, whichever provider produced it.

Providers translate their payloads into vPIC variable names (`"Model Year"`,
`"Displacement (L)"`, ...) and call `vehicle_from_vpic`; Auto.dev builds the model
directly. Values vPIC uses to say "nothing here" become `None`.

The offline decoder's path (`vehicle_from_owned_vpic`) and the model builders
(`construct_validated`, `construct_all`) run in C where `_vehiclec.c` was compiled at install
(`ACCELERATED`); every rule stays here, in the Python versions they are compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, TypeAdapter

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
    # Not validated value by value: seventy attributes per decode cost more to check than
    # the decode itself. `vehicle_from_vpic` checks untrusted maps with `_RAW` instead.
    raw: SkipValidation[dict[str, RawValue]] = Field(default_factory=dict)

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

    def with_suggestions(self, suggestions: tuple[str, ...]) -> DecodedVehicle:
        """Return `self.model_copy(update={"suggestions": suggestions})`, built without its Python layers.

        The capability adds its own suggestions to about half the decodes whose check digit
        fails: there `model_copy` cost as much as finding them. Same `__dict__` (in field
        order), fields set (with `suggestions`), no extra and no private values (tests compare).
        """
        fields = {**self.__dict__, "suggestions": suggestions}
        return construct_validated(type(self), fields, self.model_fields_set | _SUGGESTIONS_SET)


def vehicle_from_vpic(
    vin: str,
    attributes: Mapping[str, RawValue],
    *,
    check_digit_valid: bool,
    source: DecodeSource,
    trusted: bool = False,
    keep_raw: bool = True,
) -> DecodedVehicle:
    """Build a `DecodedVehicle` from vPIC variable names and values.

    `trusted` says every key and value is a `str` (or a `list[str]`, for vPIC's
    multi-valued notes), as the offline decoder documents and the NHTSA adapter
    builds them: then the attribute map becomes `raw` without being checked value
    by value. Anything else is validated, and a value of another type raises
    `pydantic.ValidationError`. `keep_raw=False` leaves `raw` empty, for callers that
    store the typed fields only (bulk jobs). A caller that owns `attributes` and no
    longer uses it hands it over as `raw` with `vehicle_from_owned_vpic` instead.
    """
    if trusted and type(vin) is str and type(check_digit_valid) is bool and type(source) is DecodeSource:
        fields = _fields_from_template(vin, attributes, check_digit_valid, source)
        if fields is not None:
            fields["raw"] = {k: v for k, v in attributes.items() if v} if keep_raw else {}
            return construct_validated(DecodedVehicle, fields, _VEHICLE_FIELD_NAMES)
    raw = _RAW.validate_python({k: v for k, v in attributes.items() if v not in ("", [])}) if keep_raw else {}
    fields = _ordered_fields(list(map(attributes.get, _TEMPLATE_VARIABLES)), _READ)
    fields["vin"] = vin
    fields["check_digit_valid"] = check_digit_valid
    fields["suggestions"] = suggestions_from_vpic(vin, attributes.get("Suggested VIN"))
    fields["source"] = source
    fields["raw"] = raw
    return _build(fields)


def _python_vehicle_from_owned_vpic(
    vin: str,
    attributes: dict[str, RawValue],
    check_digit_valid: bool,
    source: DecodeSource,
    empty_variables: tuple[str, ...] | None = None,
    /,
) -> DecodedVehicle:
    """Return `vehicle_from_vpic(vin, attributes, ..., trusted=True)`, adopting `attributes` as `raw`.

    For a decoder that builds one vehicle per VIN from a new `dict` of `str` and
    `list[str]` values it no longer uses (the offline decoder): `attributes` becomes
    `raw` itself, its empty values deleted in place instead of the rest copied. One call
    with positional arguments, where the keywords and branches of `vehicle_from_vpic`
    cost ~700 instructions a VIN. What no template
    serves (a list where text is read) is validated as `vehicle_from_vpic` validates it.

    `empty_variables` names the only variables whose value can be empty, for a decoder
    that knows its data (the offline decoder, whose whole data release is checked by a
    test): only they are looked at. None looks at every value (~7,000 instructions more).

    This is the reference of the C version the public `vehicle_from_owned_vpic` is, where it was
    built (`_configure_c`); the tests compare the two.
    """
    if (
        type(vin) is str
        and type(attributes) is dict
        and type(check_digit_valid) is bool
        and type(source) is DecodeSource
    ):
        fields = _fields_from_template(vin, attributes, check_digit_valid, source)
        if fields is not None:
            # Its empty values are deleted in place (the rest keep their order), here rather than
            # in a call of its own: one Python call less per VIN.
            for name in _OFTEN_EMPTY if empty_variables is None else empty_variables:
                value = attributes.get(name)
                if value is not None and not value:
                    del attributes[name]
            # One pass in C over the rest; rarely true after the names above.
            if empty_variables is None and not all(attributes.values()):
                for name in [name for name, value in attributes.items() if not value]:
                    del attributes[name]
            fields["raw"] = attributes
            return construct_validated(DecodedVehicle, fields, _VEHICLE_FIELD_NAMES)
    return vehicle_from_vpic(vin, attributes, check_digit_valid=check_digit_valid, source=source)


def trusted_fields(
    vin: str, attributes: Mapping[str, RawValue], *, check_digit_valid: bool, source: DecodeSource
) -> dict[str, Any]:
    """Return the fields `vehicle_from_vpic(..., trusted=True, keep_raw=False)` builds, as a dict.

    Each value has its field's type (nested models included), so the dict holds what
    that vehicle's `__dict__` holds; building no model saves the rest of the cost, for
    callers that only store the fields (bulk jobs).
    """
    fields = None
    if type(vin) is str and type(check_digit_valid) is bool and type(source) is DecodeSource:
        fields = _fields_from_template(vin, attributes, check_digit_valid, source)
    if fields is None:
        return dict(
            vehicle_from_vpic(
                vin, attributes, check_digit_valid=check_digit_valid, source=source, keep_raw=False
            ).__dict__
        )
    fields["raw"] = {}
    return fields


_RAW: TypeAdapter[dict[str, RawValue]] = TypeAdapter(dict[str, RawValue])

# The variables vPIC leaves empty on almost every decode (the only ones, on 6,000
# offline decodes of generated and recorded VINs); any other empty value is found too.
_OFTEN_EMPTY = ("Possible Values", "Suggested VIN", "Additional Error Text")


def _build(fields: dict[str, Any]) -> DecodedVehicle:
    """Validate `fields`, which hold every field of `DecodedVehicle` and nothing else.

    `_ordered_fields` writes exactly the model's field names (a test checks it), so looking for
    extra keys (`extra="forbid"`, a fifth to a quarter of the cost) would never find one; every
    other input is still checked for them. The same call as `model_validate` without
    its Python wrapper.
    """
    built: DecodedVehicle = _VALIDATE(fields, extra="ignore")
    return built


_VALIDATE = DecodedVehicle.__pydantic_validator__.validate_python

_ModelT = TypeVar("_ModelT", bound=BaseModel)
_new_object = object.__new__
# The setters of `BaseModel`'s four slots: calling them directly skips what `object.__setattr__`
# adds for each (an argument tuple, a check and a look-up of the slot by name).
_set_dict, _set_fields_set, _set_extra, _set_private = (
    vars(BaseModel)[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def fields_set_for(cls: type[BaseModel], names: Iterable[str]) -> set[str]:
    """Return the `names` set `construct_validated` shares between the instances of `cls`.

    Raises:
        TypeError: `cls` is not frozen, or has hooks (`model_post_init`, extra values)
            that building without validation would skip.
    """
    config = cls.model_config
    if not config.get("frozen") or cls.__pydantic_post_init__ is not None or config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__} must be built with model_construct")
    unknown = set(names) - set(cls.model_fields)
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    return set(names)


def _python_construct_validated(cls: type[_ModelT], fields: dict[str, Any], names: set[str], /) -> _ModelT:
    """Build `cls` from `fields` without validating them: `model_construct` without its per-field loop.

    For values already validated, or set with exactly their field's type: `fields` must
    hold every field of `cls`, in field order (`model_dump` writes them in this order),
    and `names` be what `fields_set_for(cls, ...)` returned for the fields given. The
    instance is what validating them gives (tests compare the two): the same `__dict__`
    and fields set, no extra and no private values.
    """
    instance = _new_object(cls)
    _set_dict(instance, fields)
    # One set per class is shared: a frozen model never adds to it, and `model_copy` copies it.
    _set_fields_set(instance, names)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


def _python_construct_all(
    cls: type[_ModelT], many: Iterable[dict[str, Any]], names: set[str], /
) -> list[_ModelT]:
    """Return `[construct_validated(cls, fields, names) for fields in many]`, in one frame.

    For lists of results (a thousand VINs a call): the loop calls the slots' setters
    itself, where a call of `construct_validated` per item costs a Python frame each.
    """
    new, set_dict, set_fields_set, set_extra, set_private = (
        _new_object,
        _set_dict,
        _set_fields_set,
        _set_extra,
        _set_private,
    )
    built: list[_ModelT] = []
    append = built.append
    for fields in many:
        instance = new(cls)
        set_dict(instance, fields)
        set_fields_set(instance, names)
        set_extra(instance, None)
        set_private(instance, None)
        append(instance)
    return built


_VEHICLE_FIELD_NAMES = fields_set_for(DecodedVehicle, DecodedVehicle.model_fields)
_ENGINE_FIELDS = fields_set_for(Engine, Engine.model_fields)
_TRANSMISSION_FIELDS = fields_set_for(Transmission, Transmission.model_fields)
_PLANT_FIELDS = fields_set_for(Plant, Plant.model_fields)
_SUGGESTIONS_SET = fields_set_for(DecodedVehicle, ("suggestions",))
# A placeholder for the fields each VIN sets itself (`vin`, `check_digit_valid`,
# `suggestions`, `source`, `raw`); the rest are read once per template.
_TEMPLATE_SOURCE = DecodeSource(provider="offline")


# The one vPIC mapping: the variable (or variables) each field is read from. `_ordered_fields`
# reads it for every provider, directly or through the memos below.
_TEXT_FIELDS = {
    "make": "Make",
    "manufacturer": "Manufacturer Name",
    "model": "Model",
    "trim": "Trim",
    "series": "Series",
    "body_class": "Body Class",
    "vehicle_type": "Vehicle Type",
    "drive_type": "Drive Type",
    "gvwr": "Gross Vehicle Weight Rating From",
    "gvwr_to": "Gross Vehicle Weight Rating To",
}
_INTEGER_FIELDS = {"model_year": "Model Year", "doors": "Doors"}
# `transmission`, `engine` and `plant`: their variables in the order their builders unpack them.
_TRANSMISSION_VARIABLES = ("Transmission Style", "Transmission Speeds")
_ENGINE_VARIABLES = (
    "Engine Number of Cylinders",
    "Displacement (L)",
    "Engine Model",
    "Engine Configuration",
    "Engine Brake (hp) From",
    "Engine Brake (hp) To",
    "Fuel Type - Primary",
    "Fuel Type - Secondary",
    "Turbo",
    "Electrification Level",
)
_PLANT_VARIABLES = ("Plant City", "Plant State", "Plant Country")
# `errors` and `valid` come from these two; `suggestions` from "Suggested VIN".
_ERRORS_VARIABLES = ("Error Code", "Error Text")
_TEXT_NAMES, _TEXT_VARIABLES = tuple(_TEXT_FIELDS), tuple(_TEXT_FIELDS.values())
_INTEGER_NAMES, _INTEGER_VARIABLES = tuple(_INTEGER_FIELDS), tuple(_INTEGER_FIELDS.values())


def _clean_text(value: RawValue | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = "; ".join(value)
    value = value.strip()
    return None if value.lower() in _EMPTY else value


def _clean_number(value: RawValue | None) -> float | None:
    text = _clean_text(value)
    if text is None:
        return None
    try:
        parsed = float(text)
    except ValueError:
        return None
    return parsed if parsed > 0 else None


def _clean_integer(value: RawValue | None) -> int | None:
    number = _clean_number(value)
    return None if number is None else round(number)


def _engine(values: Sequence[RawValue | None]) -> Engine:
    cylinders, displacement, model, configuration, hp, hp_to, fuel, fuel2, turbo, electrification = values
    litres = _clean_number(displacement)
    turbo_text = _clean_text(turbo)
    # Each value has its field's exact type (an `int`, a `float`, a `str`, a `bool` or None), in field
    # order: what validating them would store (the tests compare), built without validating them.
    return construct_validated(
        Engine,
        {
            "cylinders": _clean_integer(cylinders),
            "displacement_l": round(litres, 3) if litres is not None else None,
            "model": _clean_text(model),
            "configuration": _clean_text(configuration),
            "hp": _clean_number(hp),
            "hp_to": _clean_number(hp_to),
            "fuel_type_primary": _clean_text(fuel),
            "fuel_type_secondary": _clean_text(fuel2),
            "turbo": None if turbo_text is None else turbo_text.lower() in {"yes", "true"},
            "electrification": _clean_text(electrification),
        },
        _ENGINE_FIELDS,
    )


def _transmission(values: Sequence[RawValue | None]) -> Transmission:
    style, speeds = values
    return construct_validated(
        Transmission, {"style": _clean_text(style), "speeds": _clean_integer(speeds)}, _TRANSMISSION_FIELDS
    )


def _plant(values: Sequence[RawValue | None]) -> Plant:
    city, state, country = values
    return construct_validated(
        Plant,
        {"city": _clean_text(city), "state": _clean_text(state), "country": _clean_text(country)},
        _PLANT_FIELDS,
    )


def _errors_and_blocking(values: Sequence[RawValue | None]) -> tuple[tuple[DecodeIssue, ...], bool]:
    code, text = values
    errors = _errors_from_vpic(_clean_text(code), _clean_text(text))
    return errors, bool(errors and {e.code for e in errors} & BLOCKING_ERROR_CODES)


class _Readers(NamedTuple):
    """How `_ordered_fields` turns raw values into field values: directly, or through the memos."""

    text: Callable[[Any], str | None]
    integer: Callable[[Any], int | None]
    errors: Callable[[Any], tuple[tuple[DecodeIssue, ...], bool]]
    transmission: Callable[[Any], Transmission]
    engine: Callable[[Any], Engine]
    plant: Callable[[Any], Plant]


class BoundedMemo(dict[Any, Any]):
    """A bounded memo: `memo[key]` computes `build(key)` once, then serves it until the memo fills up.

    Full, it is emptied and fills again. Here, vPIC values repeat across VINs ("Not
    Applicable", "Gasoline", an engine's ten values), so a dict look-up replaces the
    parsing, and the frozen sub-models (`Engine`, `Plant`, `Transmission`, the error
    tuples) are shared between vehicles. Only values that do not depend on the VIN's
    serial part are memoised. Without `build`, values are stored with `add` only and a
    missing key raises `KeyError`.
    """

    def __init__(self, build: Callable[[Any], Any] | None = None, *, limit: int = 50_000) -> None:
        super().__init__()
        self._build = build
        self._limit = limit

    def __missing__(self, key: Any) -> Any:
        build = self._build
        if build is None:
            raise KeyError(key)
        value = build(key)
        # `add`, written out: a miss is the first sight of a value, and a call costs ~1,000 instructions.
        if len(self) >= self._limit:
            self.clear()
        self[key] = value
        return value

    @property
    def limit(self) -> int:
        """How many values the memo holds before it is emptied."""
        return self._limit

    def add(self, key: Any, value: Any) -> Any:
        """Store `value` at `key` (emptying the memo first when it is full) and return it."""
        if len(self) >= self._limit:
            self.clear()
        self[key] = value
        return value


class _Memos(NamedTuple):
    """One memo per reader of `_READ`, in its order: raw value (or tuple of values) -> field value."""

    text: BoundedMemo
    integer: BoundedMemo
    errors: BoundedMemo
    transmission: BoundedMemo
    engine: BoundedMemo
    plant: BoundedMemo


_READ = _Readers(_clean_text, _clean_integer, _errors_and_blocking, _transmission, _engine, _plant)
# Keys are raw `str` values ("" for an absent variable) or tuples of them.
_MEMOS = _Memos(*(BoundedMemo(read) for read in _READ))
_READ_MEMOISED = _Readers(*(memo.__getitem__ for memo in _MEMOS))


# Every variable the fields other than `vin`, `check_digit_valid`, `suggestions`, `source`
# and `raw` are read from: equal values give equal fields, whatever the VIN.
_TEMPLATE_VARIABLES = (
    *_TEXT_VARIABLES,
    *_INTEGER_VARIABLES,
    *_TRANSMISSION_VARIABLES,
    *_ENGINE_VARIABLES,
    *_PLANT_VARIABLES,
    *_ERRORS_VARIABLES,
)


# A template's key: the variables' values joined by a separator, an absent variable as "" (the
# readers give the same for both). One string costs less to build, hash and compare than a
# tuple of 29 values.
_KEY_SEPARATOR = "\x1f"
_ABSENT_VALUES = ("",) * len(_TEMPLATE_VARIABLES)


def _key_of_other_values(attributes: Mapping[str, RawValue]) -> str | None:
    """Return the template key when a value is None (read as absent); None when one is not text."""
    values = ["" if value is None else value for value in map(attributes.get, _TEMPLATE_VARIABLES)]
    texts = [value for value in values if isinstance(value, str)]
    return _KEY_SEPARATOR.join(texts) if len(texts) == len(values) else None


def _new_template(key: str) -> dict[str, Any] | None:
    """Build, store and return the template of the values joined in `key`; None when `key` cannot be used.

    Every stored key has exactly one separator between each two values, so a key whose
    values hold a separator themselves (more of them) never equals a stored one: it comes
    here, is refused, and two different lists of values never share a template. The
    values are read back from the key itself (one `split` in C, where looking each up in
    the decode's map costs a call per variable), through the memos of `_READ_MEMOISED`
    (`_ordered_fields`), with placeholders for the VIN's own. Not validated again: every
    value comes from a typed reader of `_READ` (a `str`, an `int`, a built `Engine`, ...),
    which is exactly what validation would return; the tests compare the vehicles built
    this way with validated ones, field by field.
    """
    values = key.split(_KEY_SEPARATOR)
    if len(values) != len(_TEMPLATE_VARIABLES):
        return None
    template = _ordered_fields(values, _READ_MEMOISED)
    _TEMPLATES.add(key, template)
    return template


# The fields `_ordered_fields` unpacks first, in `_TEMPLATE_VARIABLES` order; then each group's
# values, after them.
_KEY_FIELDS = (
    "make",
    "manufacturer",
    "model",
    "trim",
    "series",
    "body_class",
    "vehicle_type",
    "drive_type",
    "gvwr",
    "gvwr_to",
    "model_year",
    "doors",
)
if _TEXT_NAMES + _INTEGER_NAMES != _KEY_FIELDS:
    raise RuntimeError("the text and integer fields changed: update _ordered_fields' unpacking")
_TRANSMISSION_SLICE = slice(0, len(_TRANSMISSION_VARIABLES))
_ENGINE_SLICE = slice(_TRANSMISSION_SLICE.stop, _TRANSMISSION_SLICE.stop + len(_ENGINE_VARIABLES))
_PLANT_SLICE = slice(_ENGINE_SLICE.stop, _ENGINE_SLICE.stop + len(_PLANT_VARIABLES))
_ERRORS_SLICE = slice(_PLANT_SLICE.stop, _PLANT_SLICE.stop + len(_ERRORS_VARIABLES))


_EMPTY_RAW: dict[str, RawValue] = {}  # a placeholder only: every vehicle gets its own `raw`
_TEMPLATES = BoundedMemo(limit=20_000)  # filled by `_new_template`


def _fields_from_template(
    vin: str, attributes: Mapping[str, RawValue], check_digit_valid: bool, source: DecodeSource
) -> dict[str, Any] | None:
    """Return every field but `raw` (left a placeholder), from the template of `attributes`' values.

    The fields other than the VIN's own were read once for these values by the typed
    readers (`_new_template`); the VIN's own are set here with exactly their types. One
    look-up replaces reading thirty values one by one: decodes of one pattern share
    them. None when a value read is not a `str` (a list, or another type where a
    string was promised): the caller reads it the plain way.
    """
    try:
        # A `list` value makes `join` raise, as the `except` expects.
        key: str | None = _KEY_SEPARATOR.join(map(attributes.get, _TEMPLATE_VARIABLES, _ABSENT_VALUES))  # type: ignore[arg-type]
    except TypeError:  # a list or a number (read the plain way), or a None
        key = _key_of_other_values(attributes)
    if key is None:
        return None
    template = _TEMPLATES.get(key) or _new_template(key)
    if template is None:
        return None
    fields: dict[str, Any] = template.copy()
    fields["vin"] = vin
    fields["check_digit_valid"] = check_digit_valid
    suggested = attributes.get("Suggested VIN")
    fields["suggestions"] = suggestions_from_vpic(vin, suggested) if suggested else ()
    fields["source"] = source
    return fields


def _ordered_fields(values: Sequence[RawValue | None], read: _Readers) -> dict[str, Any]:
    """Return every field in field order from the values of `_TEMPLATE_VARIABLES`, read with `read`.

    The VIN's own fields (`vin`, `check_digit_valid`, `suggestions`, `source`, `raw`) are
    placeholders for the caller to set. An absent variable may be None or "": the readers
    read both as absent. `_READ` handles lists (joined with "; ") and raises on values of
    other types. One dict display in field order, which `construct_validated` needs (the
    tests compare `repr`, which lists the fields in `__dict__` order, with validated builds).
    """
    # `_KEY_FIELDS`, then the groups (checked at import).
    (
        make,
        manufacturer,
        model,
        trim,
        series,
        body_class,
        vehicle_type,
        drive_type,
        gvwr,
        gvwr_to,
        model_year,
        doors,
        *others,
    ) = values
    text, integer = read.text, read.integer
    errors, blocking = read.errors(tuple(others[_ERRORS_SLICE]))
    make_text = text(make)
    return {
        "vin": "",
        "valid": is_valid(make_text, blocking),
        "check_digit_valid": False,
        "make": make_text,
        "manufacturer": text(manufacturer),
        "model": text(model),
        "model_year": integer(model_year),
        "trim": text(trim),
        "series": text(series),
        "body_class": text(body_class),
        "vehicle_type": text(vehicle_type),
        "doors": integer(doors),
        "drive_type": text(drive_type),
        "transmission": read.transmission(tuple(others[_TRANSMISSION_SLICE])),
        "engine": read.engine(tuple(others[_ENGINE_SLICE])),
        "plant": read.plant(tuple(others[_PLANT_SLICE])),
        "gvwr": text(gvwr),
        "gvwr_to": text(gvwr_to),
        "errors": errors,
        "suggestions": (),
        "source": _TEMPLATE_SOURCE,
        "raw": _EMPTY_RAW,
    }


def is_valid(make: str | None, blocking: bool) -> bool:
    """Tell whether a decode counts as valid: it found a make and no blocking error."""
    return make is not None and not blocking


def _suggestions(vin: str, suggested: str | None) -> tuple[str, ...]:
    return (suggested,) if suggested and "!" not in suggested and suggested != vin else ()


def suggestions_from_vpic(vin: str, suggested: RawValue | None) -> tuple[str, ...]:
    """Return the `suggestions` field of `vin` from vPIC's raw `Suggested VIN` value."""
    return _suggestions(vin, _clean_text(suggested)) if suggested else ()


def errors_from_vpic(code: RawValue | None, text: RawValue | None) -> tuple[tuple[DecodeIssue, ...], bool]:
    """Return the `errors` field from vPIC's raw `Error Code` and `Error Text`, and whether one blocks."""
    return _errors_and_blocking((code, text))


class VpicField(NamedTuple):
    """One `DecodedVehicle` field read from vPIC variables, as `vehicle_from_vpic` reads it.

    `read` takes the raw value of the one variable, or a tuple of the raw values of
    several (in `variables` order; None for an absent one), and returns the field's value.
    """

    name: str
    variables: tuple[str, ...]
    read: Callable[[Any], Any]


def _vpic_fields() -> tuple[VpicField, ...]:
    table = {
        **{name: VpicField(name, (variable,), _clean_text) for name, variable in _TEXT_FIELDS.items()},
        **{name: VpicField(name, (variable,), _clean_integer) for name, variable in _INTEGER_FIELDS.items()},
        "transmission": VpicField("transmission", _TRANSMISSION_VARIABLES, _transmission),
        "engine": VpicField("engine", _ENGINE_VARIABLES, _engine),
        "plant": VpicField("plant", _PLANT_VARIABLES, _plant),
    }
    return tuple(table[name] for name in DecodedVehicle.model_fields if name in table)


VPIC_FIELDS = _vpic_fields()
"""The vPIC mapping above as a table, in `DecodedVehicle` field order: the fields read straight
from vPIC variables (all but `vin`, `valid`, `check_digit_valid`, `errors`, `suggestions`,
`source` and `raw`). For callers that render decodes without building a vehicle (bulk jobs)."""


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


def _configure_c() -> None:
    """Hand `tools.domain._vehiclec` the tables it reads: the fields, their variables, readers and memos."""
    c = _vehiclec
    memo_of = {read: memo for memo, read in zip(_MEMOS, _READ, strict=True)}
    vpic_fields = {field.name: field for field in VPIC_FIELDS}
    own = {
        "vin": c.OWN_VIN,
        "check_digit_valid": c.OWN_CHECK_DIGIT,
        "suggestions": c.OWN_SUGGESTIONS,
        "source": c.OWN_SOURCE,
        "raw": c.OWN_RAW,
    }
    plan: list[tuple[str, int, tuple[str, ...], BoundedMemo | None, Callable[[Any], Any] | None]] = []
    for name in DecodedVehicle.model_fields:
        if name in own:
            plan.append((name, own[name], (), None, None))
        elif name == "valid":  # `is_valid(make, blocking)`
            plan.append((name, c.VALID, ("make",), None, None))
        elif name == "errors":
            plan.append((name, c.ERRORS, _ERRORS_VARIABLES, _MEMOS.errors, _errors_and_blocking))
        else:
            field = vpic_fields[name]
            kind = c.ONE if len(field.variables) == 1 else c.GROUP
            plan.append((name, kind, field.variables, memo_of[field.read], field.read))
    c.configure(
        DecodedVehicle,
        tuple(plan),
        _TEMPLATE_VARIABLES,
        (_set_dict.__self__, _set_fields_set.__self__, _set_extra.__self__, _set_private.__self__),
        _VEHICLE_FIELD_NAMES,
        DecodeSource,
        "Suggested VIN",
        suggestions_from_vpic,
        _python_vehicle_from_owned_vpic,
    )


# The public names: the C versions where `tools.domain._vehiclec` was built (setup.py), else the
# Python ones above, which stay the reference (their docstrings say what both do; the tests
# compare the two).
try:
    from tools.domain import _vehiclec
except ImportError:  # not built (no C compiler at install): the Python versions serve, more slowly
    ACCELERATED = False
    construct_validated = _python_construct_validated
    construct_all = _python_construct_all
    vehicle_from_owned_vpic = _python_vehicle_from_owned_vpic
else:
    ACCELERATED = True
    _configure_c()
    construct_validated = _vehiclec.construct_validated
    construct_all = _vehiclec.construct_all
    vehicle_from_owned_vpic = _vehiclec.vehicle_from_owned_vpic
