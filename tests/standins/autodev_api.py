"""A stand-in for Auto.dev's VIN decode endpoint, in its documented wire format.

``GET /vin/{vin}`` with ``Authorization: Bearer <key>`` answers the object shown in
https://docs.auto.dev/v2/reference/decodeVin (vin, vinValid, wmi, origin, squishVin,
checkDigit, checksum, type, make, model, trim, style, vehicle{vin, year, make, model,
manufacturer}), filled from the offline vPIC decoder. Errors use the documented
``{status, error, code, path, requestId}`` shape (https://docs.auto.dev/v2/reference/errors);
the 401 and 5xx ``code`` values are our guesses, the adapter does not read them.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Literal

import ultravin
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.domain.vin import has_valid_check_digit

Fault = Literal["error", "unavailable", "forbidden"]


@dataclass
class Hit:
    """One request the stand-in received."""

    path: str
    authorization: str | None


def autodev_body(vin: str) -> dict[str, object]:
    """Return Auto.dev's decode answer for `vin`, filled from the offline decoder."""
    attributes = ultravin.decode(vin)["attributes"]

    def value(name: str) -> str:
        raw = attributes.get(name, "")
        return "; ".join(raw) if isinstance(raw, list) else str(raw)

    year = value("Model Year")
    return {
        "vin": vin,
        "vinValid": bool(value("Make")),
        "wmi": vin[:3],
        "origin": value("Plant Country").title(),
        "squishVin": vin[:8] + vin[9:11],
        "checkDigit": vin[8],
        "checksum": has_valid_check_digit(vin),
        "type": "Active",
        "make": value("Make").title(),
        "model": value("Model"),
        "trim": value("Trim"),
        "style": "",
        "vehicle": {
            "vin": vin,
            "year": int(year) if year.isdigit() else None,
            "make": value("Make").title(),
            "model": value("Model"),
            "manufacturer": value("Manufacturer Name"),
        },
    }


def _error(status: int, message: str, code: str, path: str) -> JSONResponse:
    body = {
        "status": status,
        "error": message,
        "code": code,
        "path": path,
        "requestId": uuid.uuid4().hex[:16],
    }
    return JSONResponse(body, status_code=status)


@dataclass
class AutodevStandIn:
    """The stand-in's behaviour and what it saw. Reset it between tests."""

    api_key: str
    delay_s: float = 0.0
    not_found: set[str] = field(default_factory=set)
    hits: list[Hit] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _fault: Fault | None = None

    def reset(self) -> None:
        """Forget hits, faults and settings."""
        self.delay_s = 0.0
        self.not_found.clear()
        self.hits.clear()
        self.in_flight = self.max_in_flight = 0
        self._fault = None

    def fail(self, fault: Fault) -> None:
        """Misbehave until reset."""
        self._fault = fault

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(routes=[Route("/vin/{vin}", self._decode, methods=["GET"])])

    async def _decode(self, request: Request) -> Response:
        path = request.url.path
        self.hits.append(Hit(path, request.headers.get("authorization")))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return self._answer(request, path)
        finally:
            self.in_flight -= 1

    def _answer(self, request: Request, path: str) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Invalid or missing API key", "UNAUTHORIZED", path)
        if self._fault == "forbidden":
            return _error(403, "This API key may not use this endpoint", "FORBIDDEN", path)
        if self._fault == "error":
            return _error(500, "Internal server error", "INTERNAL_ERROR", path)
        if self._fault == "unavailable":
            return _error(503, "Service temporarily unavailable", "SERVICE_UNAVAILABLE", path)
        vin = request.path_params["vin"]
        if vin in self.not_found:
            return _error(404, "No vehicle data found for the provided VIN", "VIN_NOT_FOUND", path)
        return JSONResponse(autodev_body(vin))
