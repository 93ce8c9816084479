"""The VIN capability: decode one or many VINs for a user, within their limits.

Plain async Python with typed inputs and outputs; the agent, the API, the bot and
the terminal all call these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tools.domain.vehicle import DecodedVehicle, construct_all, fields_set_for
from tools.domain.vin import SHOWN_INPUT_CHARS, Vin, clip_input
from tools.errors import AppError, InvalidInput, InvalidVin, NotAllowed
from tools.providers.base import DecodeRequest, Limit, LimitCheck, RateLimiter, VinDecoder
from tools.settings import LimitSettings, Tier
from tools.storage import vin_repo
from tools.storage.session import single_statements

logger = logging.getLogger(__name__)

MAX_VINS_PER_CALL = 1_000  # larger lists go through bulk jobs
PREMIUM_PROVIDERS = frozenset({"autodev"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: set by the transport from its own authentication, never by the model."""

    user_id: int
    tier: Tier = "free"
    channel: str = "cli"


@dataclass(frozen=True)
class VinDeps:
    """What the VIN capability needs, built once per process by `tools.bootstrap`."""

    decoders: Mapping[str, VinDecoder]
    default_provider: str = "offline"
    limiter: RateLimiter | None = None
    limits: LimitSettings = field(default_factory=LimitSettings)
    sessions: async_sessionmaker[AsyncSession] | None = None


class VinResult(BaseModel):
    """The outcome for one input line: a decode, or the reason it could not be decoded."""

    model_config = ConfigDict(frozen=True)

    line: int
    input: str
    vehicle: DecodedVehicle | None = None
    error: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        """True when the VIN decoded to a valid vehicle."""
        return self.vehicle is not None and self.vehicle.valid


# The fields a decoded line sets (`error` stays None), as validating them would record.
_DECODED_FIELDS = fields_set_for(VinResult, ("line", "input", "vehicle"))
_new_request = tuple.__new__  # `DecodeRequest(vin, year)` in one C call: one request per VIN
_parse_vin = Vin.parse  # bound once, not once per VIN


async def decode(
    raw: str,
    *,
    deps: VinDeps,
    caller: Caller | None = None,
    year: int | None = None,
    provider: str | None = None,
) -> DecodedVehicle:
    """Decode one VIN.

    Raises:
        InvalidVin: the text is not a VIN; the error carries suggestions.
        InvalidInput: the year hint is out of range.
        NotAllowed: the provider is not enabled or not in the caller's tier.
        RateLimited: the caller's decode quota is spent.
    """
    # `_decode_valid` for one VIN, as the agent's tool asks, without its lists, its coroutine and
    # (with no hint) the `_check_year` call: ~9,000 instructions less per decode (bench/README.md).
    vin = _parse_vin(raw)
    request = _new_request(DecodeRequest, (vin, None if year is None else _check_year(year)))
    decoder = _choose_decoder(deps, caller, provider)
    if caller is not None and deps.limiter is not None:
        await _spend_quota(deps.limiter, deps.limits, caller, 1)
    (vehicle,) = await decoder.decode_many([request])
    if not (vehicle.check_digit_valid and vehicle.vin == vin.value):  # most decodes: no call
        vehicle = _with_local_suggestions(vin, vehicle)
    if caller is not None and deps.sessions is not None:
        await _record_history(deps.sessions, caller, [vehicle])
    return vehicle


async def decode_many(
    raws: Sequence[str],
    *,
    deps: VinDeps,
    caller: Caller | None = None,
    year: int | None = None,
    years: Sequence[int | None] | None = None,
    provider: str | None = None,
) -> list[VinResult]:
    """Decode several VINs; every input gets a result, in input order.

    Invalid VINs (and inputs with an impossible year hint) get their error, with
    suggestions, and cost no quota; the rest are decoded in one batch. `year`
    applies to all; `years` gives one hint per input.

    Raises:
        InvalidInput: too many VINs for one call, or `year` out of range.
        NotAllowed: the provider is not enabled or not in the caller's tier.
        RateLimited: the caller's decode quota is spent.
    """
    if len(raws) > MAX_VINS_PER_CALL:
        raise InvalidInput(f"At most {MAX_VINS_PER_CALL} VINs per request; use a bulk job for more.")
    if years is not None and len(years) != len(raws):
        raise InvalidInput("Give one year hint per VIN, or none.")
    requests, invalid = _requests(raws, _check_year(year), years)
    if not requests:
        return [invalid[index] for index in range(len(raws))]
    vehicles = await _decode_valid(requests, deps=deps, caller=caller, provider=provider)
    if invalid:  # the decoded lines' numbers and inputs, without the invalid ones
        lines: Iterable[int] = [index + 1 for index in range(len(raws)) if index not in invalid]
        decoded_raws: Sequence[str] = [raw for index, raw in enumerate(raws) if index not in invalid]
    else:
        lines, decoded_raws = range(1, len(raws) + 1), raws
    # Each value has its field's type already (the vehicle is built by the decoder), so the
    # results are built without validating them again; VINs are short: no call to clip them.
    decoded = construct_all(
        VinResult,
        [
            {
                "line": line,
                "input": raw if len(raw) <= SHOWN_INPUT_CHARS else clip_input(raw),
                "vehicle": vehicle,
                "error": None,
            }
            for line, raw, vehicle in zip(lines, decoded_raws, vehicles, strict=True)
        ],
        _DECODED_FIELDS,
    )
    if not invalid:
        return decoded
    in_order = iter(decoded)
    return [invalid[index] if index in invalid else next(in_order) for index in range(len(raws))]


def _requests(
    raws: Sequence[str], shared_year: int | None, years: Sequence[int | None] | None
) -> tuple[list[DecodeRequest], dict[int, VinResult]]:
    """Parse each input: the requests of the valid ones, in order, and the others' results by index."""
    requests: list[DecodeRequest] = []
    invalid: dict[int, VinResult] = {}
    append, parse, new_request = requests.append, _parse_vin, _new_request
    for index, raw in enumerate(raws):
        try:
            vin = parse(raw)  # first: a line that is no VIN reports that, whatever its hint
            append(
                new_request(DecodeRequest, (vin, shared_year if years is None else _check_year(years[index])))
            )
        except (InvalidVin, InvalidInput) as e:
            invalid[index] = VinResult(line=index + 1, input=clip_input(raw), error=e.to_dict())
    return requests, invalid


async def _decode_valid(
    requests: Sequence[DecodeRequest], *, deps: VinDeps, caller: Caller | None, provider: str | None
) -> list[DecodedVehicle]:
    decoder = _choose_decoder(deps, caller, provider)
    if caller is not None and deps.limiter is not None:
        await _spend_quota(deps.limiter, deps.limits, caller, len(requests))
    vehicles = await decoder.decode_many(requests)
    # A decode whose check digit holds, of the VIN asked for, needs no local suggestions: most
    # of them, so that test runs here, without a call per VIN.
    vehicles = [
        v if v.check_digit_valid and v.vin == r.vin.value else _with_local_suggestions(r.vin, v)
        for r, v in zip(requests, vehicles, strict=True)
    ]
    if caller is not None and deps.sessions is not None:
        await _record_history(deps.sessions, caller, vehicles)
    return vehicles


async def _record_history(
    sessions: async_sessionmaker[AsyncSession], caller: Caller, vehicles: list[DecodedVehicle]
) -> None:
    # One statement, committed on its own: no BEGIN and COMMIT round trips around it.
    async with single_statements(sessions) as db:
        await vin_repo.record_history(db, caller.user_id, vehicles, channel=caller.channel)


def _choose_decoder(deps: VinDeps, caller: Caller | None, provider: str | None) -> VinDecoder:
    name = provider or deps.default_provider
    if name in PREMIUM_PROVIDERS and caller is not None and caller.tier != "premium":
        raise NotAllowed(f"The {name} provider is part of the premium plan.")
    decoder = deps.decoders.get(name)
    if decoder is None:
        enabled = ", ".join(sorted(deps.decoders))
        raise NotAllowed(f"The {name} provider is not enabled here (available: {enabled}).")
    return decoder


async def _spend_quota(limiter: RateLimiter, limits: LimitSettings, caller: Caller, count: int) -> None:
    per_minute = Limit(limits.decodes_per_minute, timedelta(minutes=1))
    per_day = Limit(limits.decodes_per_day(caller.tier), timedelta(days=1))
    if count > per_day.limit:
        raise InvalidInput(f"Your plan allows {per_day.limit} decodes a day; use a bulk job for large lists.")
    # Both limits are spent together or not at all, so a denied call costs nothing.
    await limiter.acquire_all(
        [
            LimitCheck(f"user:{caller.user_id}:decodes:day", per_day, count),
            LimitCheck(f"user:{caller.user_id}:decodes:minute", per_minute, min(count, per_minute.limit)),
        ]
    )


def _with_local_suggestions(vin: Vin, vehicle: DecodedVehicle) -> DecodedVehicle:
    """Add our own look-alike suggestions to a decode the provider gave none.

    Its callers call it only when the decode's check digit failed or its VIN is not the one
    asked for: every provider reports the check digit of the VIN it was given (ultravin
    computes it, the others copy `Vin.check_digit_valid`), so most decodes need no call.
    """
    if vehicle.suggestions:
        return vehicle
    local = vin.suggestions()
    return vehicle.with_suggestions(local) if local else vehicle


def _check_year(year: int | None) -> int | None:
    if year is None:
        return None
    latest = datetime.now(UTC).year + 2
    if not 1980 <= year <= latest:
        raise InvalidInput(f"The model year must be between 1980 and {latest}.")
    return year


__all__ = ["AppError", "Caller", "VinDeps", "VinResult", "decode", "decode_many"]
