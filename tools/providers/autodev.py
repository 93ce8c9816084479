"""Auto.dev's VIN decode API as a `VinDecoder`.

Wire format, from Auto.dev's API reference (https://docs.auto.dev/v2/reference/decodeVin
and https://docs.auto.dev/v2/reference/errors):

* request: ``GET {base_url}/vin/{vin}`` (base ``https://api.auto.dev``) with the header
  ``Authorization: Bearer <API key>``
* 200: a JSON object such as::

      {"vin": "3GCUDHEL3NG668790", "vinValid": true, "wmi": "3GC", "origin": "Mexico",
       "squishVin": "3GCUDHELNG", "checkDigit": "3", "checksum": true, "type": "Active",
       "make": "Chevrolet", "model": "Silverado 1500", "trim": "ZR2",
       "style": "4x4 4dr Crew Cab 5.8 ft. SB",
       "vehicle": {"vin": "3GCUDHEL3NG668790", "year": 2022, "make": "Chevrolet",
                   "model": "Silverado 1500", "manufacturer": "General Motors de Mexico"}}

* errors: ``{"status": 404, "error": "No vehicle data found for the provided VIN",
  "code": "VIN_NOT_FOUND", "path": "/vin/...", "requestId": "..."}`` (same shape for
  400 ``INVALID_VIN_FORMAT``, 401, 402, 429, 5xx).

Only the fields above are documented. Third-party clients also read ``body``,
``engine``, ``drive``, ``transmission`` and ``fuel`` as top-level strings when present;
they are mapped when they are strings and ignored otherwise. The top-level ``type``
is not a vehicle type (the documented example says "Active"), so the vehicle type
comes from ``vehicle.type`` only.

A VIN Auto.dev has no data for (404 ``VIN_NOT_FOUND``) is an answer, not a failure:
it becomes an invalid `DecodedVehicle`, as vPIC's undecodable VINs do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import httpx

from tools.domain.vehicle import DecodedVehicle, DecodeIssue, DecodeSource, Plant, RawValue, Transmission
from tools.errors import BadProviderResponse, ProviderError
from tools.providers.base import DecodeRequest
from tools.providers.http import DEFAULT_MAX_RETRY_AFTER_S, RetryPolicy, send_with_retries
from tools.settings import AutodevSettings

logger = logging.getLogger(__name__)

PROVIDER = "autodev"
DEFAULT_CONCURRENCY = 4


class AutodevVinDecoder:
    """Decode VINs with Auto.dev (premium tier; needs an API key).

    Auto.dev has no batch endpoint, so `decode_many` sends one request per VIN,
    at most `concurrency` at a time. The API key travels only in the
    `Authorization` header; it never appears in URLs, errors or logs.
    """

    name = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: AutodevSettings,
        api_key: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    ) -> None:
        if not api_key.strip():
            raise ValueError("Auto.dev needs an API key")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._http = http
        self._base_url = settings.base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key.strip()}", "Accept": "application/json"}
        self._concurrency = concurrency
        self._policy = RetryPolicy.from_settings(settings, max_retry_after_s=max_retry_after_s)
        self._source = DecodeSource(provider=PROVIDER)

    def __repr__(self) -> str:
        return f"AutodevVinDecoder(base_url={self._base_url!r})"

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode one VIN.

        Auto.dev takes no model-year hint; `request.year` is not sent.

        Raises:
            ProviderUnavailable: Auto.dev did not answer within the retry budget.
            RateLimited: Auto.dev asked us to wait too long.
            BadProviderResponse: the key was rejected, or the answer was unreadable.
        """
        response = await send_with_retries(
            self._http,
            PROVIDER,
            "GET",
            f"{self._base_url}/vin/{request.vin.value}",
            policy=self._policy,
            what=f"decode {request.vin.masked}",
            headers=self._headers,
        )
        status = response.status_code
        if status in (401, 403):
            raise BadProviderResponse(
                PROVIDER,
                f"Auto.dev refused our API key (HTTP {status}); it is missing, wrong, expired "
                "or not allowed to decode VINs.",
            )
        if status == 404 and _error_code(response) == "VIN_NOT_FOUND":
            return self._not_found(request, response)
        if not response.is_success:
            logger.debug("autodev answered HTTP %d for %s", status, request.vin.masked)
            raise BadProviderResponse(PROVIDER)
        try:
            payload = response.json()
        except ValueError as e:
            raise BadProviderResponse(PROVIDER) from e
        if not isinstance(payload, dict):
            raise BadProviderResponse(PROVIDER)
        return self._vehicle(request, payload)

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode VINs one request each, a few at a time; the result is in request order.

        The first failure cancels the requests still running and is raised.

        Raises:
            ProviderError: as `decode` does.
        """
        limit = asyncio.Semaphore(self._concurrency)

        async def one(request: DecodeRequest) -> DecodedVehicle:
            async with limit:
                return await self.decode(request)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(r)) for r in requests]
        except BaseExceptionGroup as eg:
            # Callers handle one ProviderError, not a group; anything else is a bug.
            provider_errors, others = eg.split(ProviderError)
            if provider_errors is not None and others is None:
                raise _first(provider_errors) from eg
            raise
        return [t.result() for t in tasks]

    def _vehicle(self, request: DecodeRequest, payload: Mapping[str, object]) -> DecodedVehicle:
        vin_valid = payload.get("vinValid")
        vehicle = payload.get("vehicle", {})
        echoed = payload.get("vin")
        if not isinstance(vin_valid, bool) or not isinstance(vehicle, dict):
            raise BadProviderResponse(PROVIDER)
        if isinstance(echoed, str) and echoed.strip() and echoed.strip().upper() != request.vin.value:
            raise BadProviderResponse(PROVIDER)
        make = _text(payload.get("make"), vehicle.get("make"))
        errors: tuple[DecodeIssue, ...] = ()
        if not vin_valid:
            errors = (DecodeIssue(code="VIN_INVALID", message="Auto.dev reports this VIN as not valid."),)
        return DecodedVehicle(
            vin=request.vin.value,
            valid=vin_valid and make is not None,
            check_digit_valid=request.vin.check_digit_valid,
            make=make,
            manufacturer=_text(vehicle.get("manufacturer")),
            model=_text(payload.get("model"), vehicle.get("model")),
            model_year=_year(vehicle.get("year"), payload.get("year")),
            trim=_text(payload.get("trim"), vehicle.get("trim")),
            body_class=_text(payload.get("body")),
            vehicle_type=_text(vehicle.get("type")),
            drive_type=_text(payload.get("drive")),
            transmission=Transmission(style=_text(payload.get("transmission"))),
            plant=Plant(country=_text(payload.get("origin"))),
            errors=errors,
            source=self._source,
            raw=_flat_strings(payload),
        )

    def _not_found(self, request: DecodeRequest, response: httpx.Response) -> DecodedVehicle:
        message = "No vehicle data found for the provided VIN"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"].strip():
            message = body["error"].strip()
        return DecodedVehicle(
            vin=request.vin.value,
            valid=False,
            check_digit_valid=request.vin.check_digit_valid,
            errors=(DecodeIssue(code="VIN_NOT_FOUND", message=message),),
            source=self._source,
        )


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _text(*values: object) -> str | None:
    """Return the first non-blank string among `values`."""
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _year(*values: object) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def _flat_strings(payload: Mapping[str, object]) -> dict[str, RawValue]:
    return {k: v for k, v in payload.items() if isinstance(v, str) and v.strip()}


def _first(errors: BaseExceptionGroup[ProviderError]) -> ProviderError:
    first = errors.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
