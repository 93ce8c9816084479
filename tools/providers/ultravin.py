"""The offline vPIC decoder: the whole NHTSA vPIC database inside the `ultravin` package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ultravin

from tools.domain.vehicle import (
    DecodedVehicle,
    DecodeSource,
    vehicle_from_owned_vpic,
    vehicle_from_vpic,
)
from tools.errors import BadProviderResponse
from tools.providers.base import DecodeRequest

# The only variables whose value ultravin leaves empty ("") in the data release it ships: decoding
# every VIN of `ultravin.sweep()` (one per row of every data table, 588,506), of `pairwise()` and
# of `seeded()` (4.2 million decodes, year hints included) found no other, and a test sweeps the
# data again, so a release that empties another variable fails it before it ships here. Only these
# are looked at to keep `raw` free of empty values (a pass over all ~70 would cost ~7,000
# instructions a VIN).
EMPTY_VARIABLES = ("Suggested VIN", "Possible Values", "Additional Error Text", "Model")


class UltravinDecoder:
    """Decode VINs locally, with no network, as vPIC's own procedure does.

    A decode costs tens of microseconds, less than a cache round trip, so this
    decoder is never wrapped in a cache. It runs in the event loop thread: a
    thread hop would cost more than the work.
    """

    name = "offline"

    def __init__(self) -> None:
        self._data_version = f"vPIC {ultravin.provenance()['data_month'].replace('_', '-')}"
        self._source = DecodeSource(provider="offline", data_version=self._data_version)

    @property
    def data_version(self) -> str:
        """The vPIC data release the package carries, e.g. `vPIC 2026-10`."""
        return self._data_version

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode one VIN."""
        return self.decode_sync(request)

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode many VINs; the result is in request order."""
        if len(requests) == 1:  # one VIN, as the agent's tool and `GET /api/v1/vin` ask: no batch lists
            return [self.decode_sync(requests[0])]
        return self.decode_many_sync(requests)

    def decode_sync(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode one VIN without an event loop (for worker processes and benchmarks)."""
        vin, year = request
        try:
            row = ultravin.decode(vin.value) if year is None else ultravin.decode(vin.value, year=year)
        except (ValueError, TypeError) as e:
            raise BadProviderResponse("offline", "The offline decoder could not read this VIN.") from e
        return vehicle_from_owned_vpic(
            row["vin"], row["attributes"], row["check_digit_valid"], self._source, EMPTY_VARIABLES
        )

    def decode_many_sync(
        self, requests: Sequence[DecodeRequest], *, keep_raw: bool = True
    ) -> list[DecodedVehicle]:
        """Decode many VINs without an event loop (`keep_raw=False`: leave `raw` empty)."""
        rows = _decode_rows(requests)
        if not keep_raw:
            return [self._to_vehicle_without_raw(row) for row in rows]
        # ultravin documents its values: `str`, or `list[str]` for the multi-valued notes, and
        # every decode returns a new dict, which nothing else holds: it becomes `raw` as it is.
        # `check_digit_valid` is documented a `bool` (anything else would be validated).
        source, empty = self._source, EMPTY_VARIABLES
        return [
            vehicle_from_owned_vpic(row["vin"], row["attributes"], row["check_digit_valid"], source, empty)
            for row in rows
        ]

    def decode_rows_sync(self, requests: Sequence[DecodeRequest]) -> list[dict[str, Any]]:
        """Decode many VINs into ultravin's rows (`vin`, `check_digit_valid`, `attributes`, ...), in order.

        For callers that render the attributes themselves (`job_repo.VpicRenderer`, with `source`).
        """
        return _decode_rows(requests)

    @property
    def source(self) -> DecodeSource:
        """The `DecodeSource` of this decoder's vehicles."""
        return self._source

    def _to_vehicle_without_raw(self, row: Mapping[str, Any]) -> DecodedVehicle:
        return vehicle_from_vpic(
            row["vin"],
            row["attributes"],
            check_digit_valid=bool(row["check_digit_valid"]),
            source=self._source,
            trusted=True,
            keep_raw=False,
        )


def _decode_rows(requests: Sequence[DecodeRequest]) -> list[dict[str, Any]]:
    """Decode each request with `ultravin.decode`, in order.

    Not `ultravin.decode_batch`: it returns the same rows, but on our small machines
    (2 CPUs shared by the API, the workers and the database) its decode threads cost
    more CPU and more wall time than they save (bench/README.md, decode_bench), and
    bulk workers already run one process per CPU.
    """
    decode = ultravin.decode
    try:
        # Without the keyword when there is no hint (as `decode_sync`): parsing it costs ~300
        # instructions a VIN.
        return [decode(vin.value) if year is None else decode(vin.value, year=year) for vin, year in requests]
    except (ValueError, TypeError) as e:
        raise BadProviderResponse("offline", "The offline decoder could not read these VINs.") from e
