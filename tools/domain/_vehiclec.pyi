# Types of the C module built from _vehiclec.c (see tools/domain/vehicle.py, which configures it).
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from tools.domain.vehicle import DecodedVehicle, DecodeSource, RawValue

_ModelT = TypeVar("_ModelT", bound=BaseModel)

# The kinds of field in `configure`'s plan.
OWN_VIN: int
OWN_CHECK_DIGIT: int
OWN_SUGGESTIONS: int
OWN_SOURCE: int
OWN_RAW: int
ONE: int
GROUP: int
ERRORS: int
VALID: int

def configure(
    cls: type[DecodedVehicle],
    plan: tuple[tuple[str, int, tuple[str, ...], Any, Callable[[Any], Any] | None], ...],
    variables: tuple[str, ...],
    descriptors: tuple[Any, Any, Any, Any],
    fields_set: set[str],
    source_type: type[DecodeSource],
    suggested_variable: str,
    suggestions: Callable[[str, RawValue | None], tuple[str, ...]],
    fallback: Callable[..., DecodedVehicle],
    /,
) -> None: ...
def construct_validated(cls: type[_ModelT], fields: dict[str, Any], names: set[str], /) -> _ModelT: ...
def construct_all(
    cls: type[_ModelT], many: Iterable[dict[str, Any]], names: set[str], /
) -> list[_ModelT]: ...
def vehicle_from_owned_vpic(
    vin: str,
    attributes: dict[str, RawValue],
    check_digit_valid: bool,
    source: DecodeSource,
    empty_variables: tuple[str, ...] | None = None,
    /,
) -> DecodedVehicle: ...
