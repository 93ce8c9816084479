"""A stand-in for the two NHTSA vPIC endpoints vinbot calls, in vPIC's wire format.

* ``GET /api/vehicles/DecodeVinValuesExtended/{vin}?format=json[&modelyear=YYYY]``
* ``POST /api/vehicles/DecodeVINValuesBatch/`` with the form body ``format=json&DATA=VIN,YEAR;VIN2``

Answers are decoded by the offline vPIC decoder (ultravin) and rendered as vPIC renders
its flat results: one object per VIN keyed by compact element codes, every value a
string, "" where vPIC has nothing, inside the ``Count/Message/SearchCriteria/Results``
envelope. `fail` makes it misbehave the ways the live service does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

import ultravin
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

MESSAGE = (
    "Results returned successfully. NOTE: Any missing decoded values should be interpreted as NHTSA does "
    "not have data on the specific variable. Missing value should NOT be interpreted as an indication that "
    "a feature or technology is unavailable for a vehicle."
)

Fault = Literal[
    "slow",  # hold the answer until released (or `slow_s`), so the client times out
    "error",  # 500 with IIS's HTML error page
    "html",  # 200 with an HTML maintenance page
    "truncated",  # 200 with JSON cut in half
    "rate_limited",  # 429 with Retry-After
    "no_results",  # 200 JSON without "Results"
    "short",  # 200 JSON with one result missing
    "bad_request",  # 400
]

_MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>vPIC - Site Maintenance</title></head>"
    "<body><h1>The site is under maintenance</h1><p>Please try again later.</p></body></html>"
)
_SERVER_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Runtime Error</title></head>"
    "<body><h1>Server Error in '/api' Application.</h1></body></html>"
)


@dataclass
class Hit:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]


def vpic_result(vin: str, year: int | None = None) -> dict[str, str]:
    """Return vPIC's flat result for `vin`, decoded offline."""
    row = ultravin.decode(vin, year=year)
    result = {meta["code"]: "" for meta in ultravin.ELEMENTS.values()}
    for variable, value in row["attributes"].items():
        code = ultravin.ELEMENTS[variable]["code"] if variable in ultravin.ELEMENTS else variable
        result[code] = "; ".join(value) if isinstance(value, list) else str(value)
    result["VIN"] = vin
    return dict(sorted(result.items()))


@dataclass
class VpicStandIn:
    """The stand-in's behaviour and what it saw. Reset it between tests."""

    slow_s: float = 5.0
    hits: list[Hit] = field(default_factory=list)
    reorder_batch: bool = False
    _fault: Fault | None = None
    _fault_times: int | None = None
    _retry_after: str = "1"
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget hits and faults; release anything still held."""
        self._release.set()
        self._release = asyncio.Event()
        self.hits.clear()
        self.reorder_batch = False
        self._fault = None
        self._fault_times = None

    def release(self) -> None:
        """Let held ("slow") requests finish."""
        self._release.set()

    def fail(self, fault: Fault, *, times: int | None = None, retry_after: str = "1") -> None:
        """Misbehave for the next `times` requests (None: until reset)."""
        self._fault = fault
        self._fault_times = times
        self._retry_after = retry_after

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(
            routes=[
                Route("/api/vehicles/DecodeVinValuesExtended/{vin}", self._decode, methods=["GET"]),
                Route("/api/vehicles/DecodeVINValuesBatch/", self._batch, methods=["POST"]),
            ]
        )

    def _take_fault(self) -> Fault | None:
        if self._fault is None:
            return None
        if self._fault_times is not None:
            if self._fault_times <= 0:
                return None
            self._fault_times -= 1
        return self._fault

    async def _decode(self, request: Request) -> Response:
        self.hits.append(Hit("GET", request.url.path, dict(request.query_params), {}))
        vin = request.path_params["vin"]
        year = request.query_params.get("modelyear")
        fault = self._take_fault()
        if (early := await self._fault_response(fault)) is not None:
            return early
        results = [vpic_result(vin, int(year) if year else None)]
        # vPIC's single-VIN Count is the number of variables, not of results.
        return self._envelope(fault, results, count=len(results[0]), criteria=f"VIN(s): {vin}")

    async def _batch(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.hits.append(Hit("POST", request.url.path, dict(request.query_params), form))
        fault = self._take_fault()
        if (early := await self._fault_response(fault)) is not None:
            return early
        data = form.get("DATA", form.get("data", ""))
        results = []
        for entry in filter(None, (e.strip() for e in data.split(";"))):
            vin, _, year = entry.partition(",")
            results.append(vpic_result(vin.strip(), int(year) if year.strip() else None))
        if self.reorder_batch:
            results.reverse()
        return self._envelope(fault, results, count=len(results), criteria="")

    async def _fault_response(self, fault: Fault | None) -> Response | None:
        if fault == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.slow_s)
        if fault == "error":
            return HTMLResponse(_SERVER_ERROR_PAGE, status_code=500)
        if fault == "html":
            return HTMLResponse(_MAINTENANCE_PAGE)
        if fault == "rate_limited":
            return PlainTextResponse(
                "Too Many Requests", status_code=429, headers={"Retry-After": self._retry_after}
            )
        if fault == "bad_request":
            return HTMLResponse("<h1>Bad Request</h1>", status_code=400)
        return None

    def _envelope(
        self, fault: Fault | None, results: list[dict[str, str]], *, count: int, criteria: str
    ) -> Response:
        body: dict[str, object] = {"Count": count, "Message": MESSAGE, "SearchCriteria": criteria}
        if fault != "no_results":
            body["Results"] = results[:-1] if fault == "short" else results
        if fault == "truncated":
            text = json.dumps(body)
            return Response(text[: len(text) // 2], media_type="application/json; charset=utf-8")
        return JSONResponse(body)
