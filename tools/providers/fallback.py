"""Fall back to another decoder when the primary one fails, and say so in the result."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tools.domain.vehicle import DecodedVehicle
from tools.errors import ProviderError
from tools.providers.base import DecodeRequest, VinDecoder

logger = logging.getLogger(__name__)


class FallbackVinDecoder:
    """Try `primary`; on any `ProviderError` answer from `fallback` instead.

    The answer's `source` names the provider that answered, marks it as a
    fallback and keeps the reason (the primary's error code), so every transport
    can tell the user that the live service was not used.
    """

    def __init__(self, primary: VinDecoder, fallback: VinDecoder) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def name(self) -> str:
        """The primary provider's name: the decoder the caller asked for."""
        return self.primary.name

    async def decode(self, request: DecodeRequest) -> DecodedVehicle:
        """Decode with the primary provider, or the fallback when it fails."""
        try:
            return await self.primary.decode(request)
        except ProviderError as e:
            logger.warning(
                "%s failed (%s); falling back to %s", self.primary.name, e.code, self.fallback.name
            )
            return self._mark(await self.fallback.decode(request), e)

    async def decode_many(self, requests: Sequence[DecodeRequest]) -> list[DecodedVehicle]:
        """Decode a batch with the primary provider, or all of it with the fallback."""
        try:
            return await self.primary.decode_many(requests)
        except ProviderError as e:
            logger.warning(
                "%s failed for a batch of %d (%s); falling back to %s",
                self.primary.name,
                len(requests),
                e.code,
                self.fallback.name,
            )
            return [self._mark(v, e) for v in await self.fallback.decode_many(requests)]

    def _mark(self, vehicle: DecodedVehicle, error: ProviderError) -> DecodedVehicle:
        return vehicle.with_source(
            vehicle.source.model_copy(
                update={
                    "fallback": True,
                    "fallback_reason": f"{self.primary.name}: {error.code}",
                    "requested_provider": self.primary.name,
                }
            )
        )
