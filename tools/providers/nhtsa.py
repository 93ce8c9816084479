"""The live NHTSA vPIC API as a `VinDecoder`.

Wire format (vPIC's public API, https://vpic.nhtsa.dot.gov/api/):

* one VIN: ``GET {base_url}/vehicles/DecodeVinValuesExtended/{vin}?format=json[&modelyear=YYYY]``
* a batch: ``POST {base_url}/vehicles/DecodeVINValuesBatch/`` with the form body
  ``format=json&DATA=VIN,YEAR;VIN2;...`` (at most 50 VINs a call)

Both answer ``{"Count": .., "Message": .., "SearchCriteria": .., "Results": [{..}]}``,
one flat result per VIN, keyed by vPIC's compact element codes (``ModelYear``,
``DisplacementL``, ``ErrorCode``, ``SuggestedVIN``, ...) plus a few extras (``VIN``,
``MakeID``). ``Count`` is not the number of results (a single decode reports the
number of variables), so results are counted, never ``Count``. The compact codes are
turned back into vPIC variable names with `ultravin.ELEMENTS`, so every provider
feeds `vehicle_from_vpic` the same keys.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

import httpx
import ultravin

from tools.domain.vehicle import DecodedVehicle, DecodeSource, RawValue, vehicle_from_vpic
from tools.domain.vin import mask_vin
from tools.errors import BadProviderResponse
from tools.providers.base import DecodeRequest
from tools.providers.http import DEFAULT_MAX_RETRY_AFTER_S, RetryPolicy, send_with_retries
from tools.settings import NhtsaSettings

logger = logging.getLogger(__name__)

PROVIDER = "nhtsa"
# vPIC does not report which data release answered; the live API is always the latest.
DATA_VERSION = "vPIC live"
# vPIC refuses batches larger than this.
MAX_BATCH = 50

# ELEMENTS maps a vPIC variable name to its metadata, including the compact code
# the flat endpoints use as the key ("Model Year" -> "ModelYear").
_VARIABLE_BY_CODE: dict[str, str] = {meta["code"]: variable for variable, meta in ultravin.ELEMENTS.items()}


class NhtsaVinDecoder:
    """Decode VINs with NHTSA's live vPIC API.

    Single decodes use `DecodeVinValuesExtended`; batches use `DecodeVINValuesBatch`
    in chunks of `settings.batch_size`. Both are reads, so both are retried within
    the settings' budget. Failures become `ProviderError`s, which a
    `FallbackVinDecoder` turns into an offline decode.
    """

    name = PROVIDER

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: NhtsaSettings,
        *,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    ) -> None:
        self._http = http
        self._base_url = settings.base_url.rstrip("/")
        self._batch_size = min(settings.batch_size, MAX_BATCH)
        self._policy = RetryPolicy.from_settings(settings, max_retry_after_s=max_retry_after_s)
        self._source = DecodeSource(provider=PROVIDER, data_version=DATA_VERSION)

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode one VIN.

        Raises:
            ProviderUnavailable: vPIC did not answer within the retry budget.
            RateLimited: vPIC asked us to wait too long.
            BadProviderResponse: vPIC answered something unreadable.
        """
        params = {"format": "json"}
        if request.year is not None:
            params["modelyear"] = str(request.year)
        response = await send_with_retries(
            self._http,
            PROVIDER,
            "GET",
            f"{self._base_url}/vehicles/DecodeVinValuesExtended/{request.vin.value}",
            policy=self._policy,
            what=f"decode {request.vin.masked}",
            params=params,
        )
        (result,) = self._results(response, expected=1)
        echoed = result.get("VIN")
        if isinstance(echoed, str) and echoed.strip() and echoed.strip().upper() != request.vin.value:
            raise BadProviderResponse(PROVIDER)
        return self._vehicle(request, result)

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode VINs in batch calls; the result is in request order.

        Chunks are sent one after another: vPIC is a free public service.

        Raises:
            ProviderUnavailable: vPIC did not answer within the retry budget.
            RateLimited: vPIC asked us to wait too long.
            BadProviderResponse: vPIC answered something unreadable, or not one
                result per VIN.
        """
        decoded: list[DecodedVehicle] = []
        for start in range(0, len(requests), self._batch_size):
            decoded.extend(await self._decode_chunk(requests[start : start + self._batch_size]))
        return decoded

    async def _decode_chunk(self, chunk: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        entries = [r.vin.value if r.year is None else f"{r.vin.value},{r.year}" for r in chunk]
        response = await send_with_retries(
            self._http,
            PROVIDER,
            "POST",
            f"{self._base_url}/vehicles/DecodeVINValuesBatch/",
            policy=self._policy,
            what=f"batch of {len(chunk)} (first {mask_vin(chunk[0].vin.value)})",
            data={"format": "json", "DATA": ";".join(entries)},
        )
        results = self._results(response, expected=len(chunk))
        # vPIC answers in request order, but matching by VIN keeps a reordered
        # or duplicated answer from pinning one car's data on another's VIN.
        by_vin: dict[str, list[Mapping[str, object]]] = defaultdict(list)
        for result in results:
            vin = result.get("VIN")
            if not isinstance(vin, str):
                raise BadProviderResponse(PROVIDER)
            by_vin[vin.strip().upper()].append(result)
        decoded: list[DecodedVehicle] = []
        for request in chunk:
            matches = by_vin.get(request.vin.value)
            if not matches:
                logger.debug("nhtsa batch answer lacks %s", request.vin.masked)
                raise BadProviderResponse(PROVIDER)
            decoded.append(self._vehicle(request, matches.pop(0)))
        return decoded

    def _results(self, response: httpx.Response, *, expected: int) -> list[Mapping[str, object]]:
        if not response.is_success:
            logger.debug("nhtsa answered HTTP %d", response.status_code)
            raise BadProviderResponse(PROVIDER)
        try:
            body = response.json()
        except ValueError as e:  # HTML error pages, truncated JSON, bad UTF-8
            raise BadProviderResponse(PROVIDER) from e
        results = body.get("Results") if isinstance(body, dict) else None
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise BadProviderResponse(PROVIDER)
        if len(results) != expected:
            logger.debug("nhtsa sent %d results for %d VINs", len(results), expected)
            raise BadProviderResponse(PROVIDER)
        return results

    def _vehicle(self, request: DecodeRequest, result: Mapping[str, object]) -> DecodedVehicle:
        return vehicle_from_vpic(
            request.vin.value,
            _attributes(result),
            check_digit_valid=request.vin.check_digit_valid,
            source=self._source,
        )


def _attributes(result: Mapping[str, object]) -> dict[str, RawValue]:
    """Rename compact keys to vPIC variable names; unknown keys are kept as they are."""
    attributes: dict[str, RawValue] = {}
    for key, value in result.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadProviderResponse(PROVIDER)
        attributes[_VARIABLE_BY_CODE.get(key, key)] = value if isinstance(value, str) else str(value)
    return attributes
