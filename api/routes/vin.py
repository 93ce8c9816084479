"""`GET /api/v1/vin/{vin}`: decode one VIN."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import CallerDep, VinDepsDep
from api.schemas import ErrorResponse, VinProvider
from tools import vin as vin_capability
from tools.domain.vehicle import DecodedVehicle

router = APIRouter(prefix="/api/v1", tags=["vin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorResponse,
        "description": "not_allowed: the provider is not enabled or not in the plan.",
    },
    404: {"model": ErrorResponse, "description": "vehicle_not_found."},
    422: {
        "model": ErrorResponse,
        "description": "invalid_vin (with `reason` and `suggestions`) or invalid_input (a bad year).",
    },
    429: {"model": ErrorResponse, "description": "rate_limited: see the Retry-After header."},
    503: {"model": ErrorResponse, "description": "provider_unavailable or bad_provider_response."},
}


@router.get(
    "/vin/{vin}",
    response_model=DecodedVehicle,
    response_model_exclude={"raw"},
    responses=_ERRORS,
    summary="Decode a VIN",
)
async def decode_vin(
    vin: Annotated[str, Path(description="The 17-character VIN.")],
    deps: VinDepsDep,
    caller: CallerDep,
    year: Annotated[int | None, Query(description="Model-year hint for ambiguous VINs.")] = None,
    provider: Annotated[
        VinProvider | None, Query(description="Decoder to use (default: the server's).")
    ] = None,
) -> DecodedVehicle:
    """Decode a VIN into make, model, year, trim, engine and plant, with its source."""
    return await vin_capability.decode(vin, deps=deps, caller=caller, year=year, provider=provider)
