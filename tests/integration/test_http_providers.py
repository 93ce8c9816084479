"""The HTTP decoders against their providers' real wire formats.

Two kinds of evidence: vcrpy cassettes holding real vPIC decodes and Auto.dev's
documented answers (replayed, never recorded: `record_mode="none"`), and stand-in
servers on loopback that misbehave on request (slow, 5xx, garbage, 429), to prove the
retry budget and the fallback to the offline decoder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import vcr
from standins import serving
from standins.autodev_api import AutodevStandIn
from standins.vpic_api import VpicStandIn

from tools.domain.vin import Vin
from tools.errors import BadProviderResponse, ProviderUnavailable, RateLimited
from tools.providers.autodev import AutodevVinDecoder
from tools.providers.base import DecodeRequest
from tools.providers.fallback import FallbackVinDecoder
from tools.providers.http import parse_retry_after
from tools.providers.nhtsa import NhtsaVinDecoder
from tools.providers.ultravin import UltravinDecoder
from tools.settings import AutodevSettings, NhtsaSettings

pytestmark = pytest.mark.integration

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
REPLAY = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization"],
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
)
API_KEY = "sk_ad_test_0123456789abcdef"
# Generous for answers that come (a cold offline decode in the stand-in takes ~0.1 s),
# short where the stand-in holds its answer on purpose.
TIMEOUT_S = 2.0
SHORT_TIMEOUT_S = 0.15

# Real VINs with real vPIC decodes (see ../shared/data/vpic_recorded_responses.jsonl).
F150 = "1FTMW1T88MFA00001"
BMW_BAD_CHECK_DIGIT = "WBA3A5C51CF256987"
TIGUAN = "3VV3B7AXXNM077525"
ACCORD = "1HGCM82633A004352"
ACURA_TL = "19UUA56633A055128"


def req(vin: str, year: int | None = None) -> DecodeRequest:
    return DecodeRequest(Vin.parse(vin), year)


def nhtsa_settings(base_url: str = "https://vpic.nhtsa.dot.gov/api", **overrides: object) -> NhtsaSettings:
    values: dict[str, object] = {"timeout_s": TIMEOUT_S, "retries": 2, "retry_backoff_s": 0.01, **overrides}
    return NhtsaSettings(base_url=base_url, **values)  # type: ignore[arg-type]


def autodev_settings(base_url: str = "https://api.auto.dev", **overrides: object) -> AutodevSettings:
    values: dict[str, object] = {"timeout_s": TIMEOUT_S, "retries": 2, "retry_backoff_s": 0.01, **overrides}
    return AutodevSettings(base_url=base_url, **values)  # type: ignore[arg-type]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(scope="module")
def offline() -> UltravinDecoder:
    return UltravinDecoder()


@pytest.fixture(scope="module")
async def vpic_server() -> AsyncIterator[tuple[VpicStandIn, str]]:
    standin = VpicStandIn()
    async with serving(standin.app) as url:
        yield standin, f"{url}/api"
        standin.release()


@pytest.fixture
def vpic(vpic_server: tuple[VpicStandIn, str]) -> Iterator[VpicStandIn]:
    standin, _ = vpic_server
    standin.reset()
    yield standin
    standin.release()


@pytest.fixture
def vpic_url(vpic_server: tuple[VpicStandIn, str]) -> str:
    return vpic_server[1]


@pytest.fixture(scope="module")
async def autodev_server() -> AsyncIterator[tuple[AutodevStandIn, str]]:
    standin = AutodevStandIn(api_key=API_KEY)
    async with serving(standin.app) as url:
        yield standin, url


@pytest.fixture
def autodev(autodev_server: tuple[AutodevStandIn, str]) -> AutodevStandIn:
    standin, _ = autodev_server
    standin.reset()
    return standin


@pytest.fixture
def autodev_url(autodev_server: tuple[AutodevStandIn, str]) -> str:
    return autodev_server[1]


def same_vehicle(a, b) -> None:
    """Compare decodes field by field, ignoring where they came from."""
    keep = {"source", "raw"}
    assert a.model_dump(exclude=keep) == b.model_dump(exclude=keep)


# ---------------------------------------------------------------- NHTSA: recorded vPIC answers


async def test_nhtsa_decodes_recorded_vpic_answer_with_model_year(http) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings())
    with REPLAY.use_cassette("nhtsa_decode.yaml") as cassette:
        vehicle = await decoder.decode(req(F150, 2021))

    assert cassette.play_count == 1
    assert (vehicle.make, vehicle.model, vehicle.model_year, vehicle.trim) == (
        "FORD",
        "F-150",
        2021,
        "SuperCrew-SSV",
    )
    assert vehicle.engine.displacement_l == 3.5
    assert vehicle.engine.cylinders == 6
    assert vehicle.engine.hp == 375
    assert vehicle.drive_type == "4WD/4-Wheel Drive/4x4"
    assert vehicle.manufacturer == "FORD MOTOR COMPANY, USA"
    assert vehicle.plant.city == "DEARBORN"
    assert vehicle.valid
    assert vehicle.check_digit_valid
    assert vehicle.errors == ()
    assert vehicle.source.provider == "nhtsa"
    assert vehicle.source.fallback is False
    assert vehicle.source.data_version
    # Compact codes are renamed to vPIC variable names; unknown ones stay as they are.
    assert vehicle.raw["Model Year"] == "2021"
    assert "ModelYear" not in vehicle.raw
    assert vehicle.raw["MakeID"] == "460"


async def test_nhtsa_keeps_check_digit_warning_when_vpic_reports_error_1(http) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings())
    with REPLAY.use_cassette("nhtsa_decode.yaml"):
        vehicle = await decoder.decode(req(BMW_BAD_CHECK_DIGIT))

    assert (vehicle.make, vehicle.model, vehicle.model_year) == ("BMW", "328i", 2012)
    assert [e.code for e in vehicle.errors] == ["1"]
    assert "Check Digit" in vehicle.errors[0].message
    assert vehicle.check_digit_valid is False
    assert vehicle.valid is True  # error 1 is a warning: non-North-American VINs may fail it


async def test_nhtsa_decode_without_year_sends_no_modelyear(http) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings())
    with REPLAY.use_cassette("nhtsa_decode.yaml") as cassette:
        vehicle = await decoder.decode(req(TIGUAN))

    # The cassette matches on the query too: a stray `modelyear` would find no recording.
    assert cassette.play_count == 1
    assert (vehicle.make, vehicle.model, vehicle.model_year) == ("VOLKSWAGEN", "Tiguan", 2022)


async def test_nhtsa_batch_is_sent_in_chunks_and_answered_in_request_order(http) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings(batch_size=2))
    vins = ["ZACCJABT0FPB71014", "1FTFW1ET5EKE52261", "1C4KMJ5UX4E218177"]
    with REPLAY.use_cassette("nhtsa_decode_batch.yaml") as cassette:
        vehicles = await decoder.decode_many([req(v) for v in vins])

    assert cassette.play_count == 2
    assert cassette.all_played
    assert [v.vin for v in vehicles] == vins
    assert [v.make for v in vehicles] == ["JEEP", "FORD", "CHRYSLER"]
    assert [[e.code for e in v.errors] for v in vehicles] == [[], ["1"], ["5", "14"]]
    assert [v.valid for v in vehicles] == [True, True, False]  # 5 = errors in some positions
    # The check digit verdict is ours: vPIC excused this VIN's check digit (an OEM exception).
    assert vehicles[0].check_digit_valid is False


# ---------------------------------------------------------------- NHTSA: stand-in vPIC


async def test_nhtsa_decodes_like_the_offline_decoder_through_the_standin(
    http, vpic, vpic_url, offline
) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url))

    vehicle = await decoder.decode(req(F150, 2021))

    assert vpic.hits[0].query == {"format": "json", "modelyear": "2021"}
    same_vehicle(vehicle, await offline.decode(req(F150, 2021)))
    assert vehicle.source.provider == "nhtsa"


async def test_nhtsa_batch_sends_vpic_data_format(http, vpic, vpic_url, offline) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url))
    requests = [req(F150, 2021), req(TIGUAN), req(ACCORD, 2003)]

    vehicles = await decoder.decode_many(requests)

    assert [(h.method, h.form) for h in vpic.hits] == [
        ("POST", {"format": "json", "DATA": f"{F150},2021;{TIGUAN};{ACCORD},2003"})
    ]
    for vehicle, expected in zip(vehicles, await offline.decode_many(requests), strict=True):
        same_vehicle(vehicle, expected)


async def test_nhtsa_batch_matches_results_by_vin_when_vpic_reorders_them(http, vpic, vpic_url) -> None:
    vpic.reorder_batch = True
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url))

    vehicles = await decoder.decode_many([req(F150), req(TIGUAN), req(ACCORD)])

    assert [(v.vin, v.make) for v in vehicles] == [(F150, "FORD"), (TIGUAN, "VOLKSWAGEN"), (ACCORD, "HONDA")]


async def test_nhtsa_batch_of_nothing_makes_no_call(http, vpic, vpic_url) -> None:
    assert await NhtsaVinDecoder(http, nhtsa_settings(vpic_url)).decode_many([]) == []
    assert vpic.hits == []


@pytest.mark.parametrize(("fault", "retries"), [("error", 2), ("slow", 1), ("rate_limited", 2)])
async def test_nhtsa_gives_up_after_the_retry_budget_when_vpic_keeps_failing(
    http, vpic, vpic_url, fault, retries
) -> None:
    vpic.fail(fault, retry_after="0")
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retries=retries, timeout_s=SHORT_TIMEOUT_S))

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        await decoder.decode(req(F150))

    assert len(vpic.hits) == retries + 1
    assert caught.value.provider == "nhtsa"
    assert isinstance(caught.value.__cause__, httpx.HTTPError)
    assert time.monotonic() - started < SHORT_TIMEOUT_S * (retries + 1) + 1.0


async def test_nhtsa_batch_gives_up_after_the_retry_budget_when_vpic_times_out(http, vpic, vpic_url) -> None:
    vpic.fail("slow")
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retries=1, timeout_s=SHORT_TIMEOUT_S))

    with pytest.raises(ProviderUnavailable) as caught:
        await decoder.decode_many([req(F150), req(TIGUAN)])

    assert [h.method for h in vpic.hits] == ["POST", "POST"]
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


async def test_nhtsa_recovers_when_vpic_fails_less_often_than_the_budget(http, vpic, vpic_url) -> None:
    vpic.fail("error", times=2)
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retries=2))

    vehicle = await decoder.decode(req(TIGUAN))

    assert vehicle.make == "VOLKSWAGEN"
    assert len(vpic.hits) == 3


async def test_nhtsa_waits_as_long_as_retry_after_asks(http, vpic, vpic_url) -> None:
    vpic.fail("rate_limited", times=1, retry_after="1")
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retry_backoff_s=0.0))

    started = time.monotonic()
    vehicle = await decoder.decode(req(TIGUAN))

    assert vehicle.make == "VOLKSWAGEN"
    assert len(vpic.hits) == 2
    assert time.monotonic() - started >= 0.95


async def test_nhtsa_raises_rate_limited_when_retry_after_exceeds_the_cap(http, vpic, vpic_url) -> None:
    vpic.fail("rate_limited", retry_after="120")
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url), max_retry_after_s=5)

    with pytest.raises(RateLimited) as caught:
        await decoder.decode(req(TIGUAN))

    assert caught.value.retry_after == 120
    assert len(vpic.hits) == 1


@pytest.mark.parametrize("fault", ["html", "truncated", "no_results", "short", "bad_request"])
async def test_nhtsa_rejects_unreadable_answers_without_retrying(http, vpic, vpic_url, fault) -> None:
    vpic.fail(fault)
    decoder = NhtsaVinDecoder(http, nhtsa_settings(vpic_url))

    with pytest.raises(BadProviderResponse) as caught:
        await decoder.decode(req(TIGUAN))
    with pytest.raises(BadProviderResponse):
        await decoder.decode_many([req(TIGUAN), req(ACCORD)])

    assert len(vpic.hits) == 2
    assert caught.value.provider == "nhtsa"


async def test_nhtsa_is_unavailable_when_nothing_listens(http, unused_tcp_port) -> None:
    decoder = NhtsaVinDecoder(http, nhtsa_settings(f"http://127.0.0.1:{unused_tcp_port}/api", retries=1))

    with pytest.raises(ProviderUnavailable) as caught:
        await decoder.decode(req(TIGUAN))

    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# ---------------------------------------------------------------- fallback to the offline decoder


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("slow", "provider_unavailable"),
        ("error", "provider_unavailable"),
        ("rate_limited", "provider_unavailable"),
        ("html", "bad_provider_response"),
        ("truncated", "bad_provider_response"),
    ],
)
async def test_decode_falls_back_to_offline_and_says_so_when_vpic_fails(
    http, vpic, vpic_url, offline, fault, code
) -> None:
    vpic.fail(fault, retry_after="0")
    decoder = FallbackVinDecoder(
        NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retries=1, timeout_s=SHORT_TIMEOUT_S)), offline
    )

    vehicle = await decoder.decode(req(F150, 2021))

    assert vehicle.source.fallback is True
    assert vehicle.source.provider == "offline"
    assert vehicle.source.requested_provider == "nhtsa"
    assert vehicle.source.fallback_reason == f"nhtsa: {code}"
    assert (vehicle.make, vehicle.model, vehicle.model_year) == ("FORD", "F-150", 2021)
    same_vehicle(vehicle, await offline.decode(req(F150, 2021)))


@pytest.mark.parametrize(
    ("fault", "code"), [("slow", "provider_unavailable"), ("short", "bad_provider_response")]
)
async def test_decode_many_falls_back_to_offline_and_says_so_when_vpic_fails(
    http, vpic, vpic_url, offline, fault, code
) -> None:
    vpic.fail(fault)
    decoder = FallbackVinDecoder(
        NhtsaVinDecoder(http, nhtsa_settings(vpic_url, retries=1, timeout_s=SHORT_TIMEOUT_S)), offline
    )
    requests = [req(F150, 2021), req(TIGUAN), req(ACURA_TL)]

    vehicles = await decoder.decode_many(requests)

    assert [v.vin for v in vehicles] == [F150, TIGUAN, ACURA_TL]
    for vehicle, expected in zip(vehicles, await offline.decode_many(requests), strict=True):
        assert vehicle.source.fallback is True
        assert vehicle.source.provider == "offline"
        assert vehicle.source.fallback_reason == f"nhtsa: {code}"
        same_vehicle(vehicle, expected)


# ---------------------------------------------------------------- Auto.dev: documented answers


async def test_autodev_maps_the_documented_answer(http) -> None:
    decoder = AutodevVinDecoder(http, autodev_settings(), API_KEY)
    with REPLAY.use_cassette("autodev_decode.yaml") as cassette:
        vehicle = await decoder.decode(req("3GCUDHEL3NG668790"))

    assert cassette.play_count == 1
    assert (vehicle.make, vehicle.model, vehicle.model_year, vehicle.trim) == (
        "Chevrolet",
        "Silverado 1500",
        2022,
        "ZR2",
    )
    assert vehicle.manufacturer == "General Motors de Mexico"
    assert vehicle.plant.country == "Mexico"
    assert vehicle.valid
    assert vehicle.check_digit_valid
    assert vehicle.source.provider == "autodev"
    assert vehicle.source.fallback is False
    assert vehicle.raw["style"] == "4x4 4dr Crew Cab 5.8 ft. SB"
    assert vehicle.raw["squishVin"] == "3GCUDHELNG"
    assert all(isinstance(v, str) for v in vehicle.raw.values())


async def test_autodev_vin_not_found_is_an_invalid_decode_not_an_error(http) -> None:
    decoder = AutodevVinDecoder(http, autodev_settings(), API_KEY)
    with REPLAY.use_cassette("autodev_decode.yaml"):
        vehicle = await decoder.decode(req(ACCORD))

    assert vehicle.valid is False
    assert [e.code for e in vehicle.errors] == ["VIN_NOT_FOUND"]
    assert vehicle.make is None
    assert vehicle.source.provider == "autodev"


# ---------------------------------------------------------------- Auto.dev: stand-in


async def test_autodev_sends_the_key_as_a_bearer_token(http, autodev, autodev_url) -> None:
    decoder = AutodevVinDecoder(http, autodev_settings(autodev_url), API_KEY)

    vehicle = await decoder.decode(req(ACCORD))

    assert autodev.hits[0].authorization == f"Bearer {API_KEY}"
    assert autodev.hits[0].path == f"/vin/{ACCORD}"
    assert (vehicle.make, vehicle.model, vehicle.model_year) == ("Honda", "Accord", 2003)
    assert API_KEY not in repr(decoder)


@pytest.mark.parametrize("key_problem", ["wrong", "forbidden"])
async def test_autodev_rejected_key_is_a_bad_response_that_never_shows_the_key(
    http, autodev, autodev_url, caplog, key_problem
) -> None:
    key = "sk_ad_wrong_key_42" if key_problem == "wrong" else API_KEY
    if key_problem == "forbidden":
        autodev.fail("forbidden")
    decoder = AutodevVinDecoder(http, autodev_settings(autodev_url), key)

    with caplog.at_level(logging.DEBUG), pytest.raises(BadProviderResponse) as caught:
        await decoder.decode(req(ACCORD))

    assert len(autodev.hits) == 1  # not retried
    assert "API key" in caught.value.public_message
    for text in (str(caught.value), caught.value.public_message, repr(caught.value), caplog.text):
        assert key not in text


@pytest.mark.parametrize("fault", ["error", "unavailable"])
async def test_autodev_gives_up_after_the_retry_budget_on_5xx(http, autodev, autodev_url, fault) -> None:
    autodev.fail(fault)
    decoder = AutodevVinDecoder(http, autodev_settings(autodev_url, retries=2), API_KEY)

    with pytest.raises(ProviderUnavailable) as caught:
        await decoder.decode(req(ACCORD))

    assert len(autodev.hits) == 3
    assert caught.value.provider == "autodev"


async def test_autodev_decode_many_runs_at_most_four_at_once_in_request_order(
    http, autodev, autodev_url
) -> None:
    autodev.delay_s = 0.03
    decoder = AutodevVinDecoder(http, autodev_settings(autodev_url), API_KEY)
    vins = [F150, TIGUAN, ACCORD, ACURA_TL, "1FTFW1ET5EKE52261", "2T1BURHE0JC060752", "19UUA5645XA000927"] * 2

    vehicles = await decoder.decode_many([req(v) for v in vins])

    assert [v.vin for v in vehicles] == vins
    assert len(autodev.hits) == len(vins)
    assert autodev.max_in_flight == 4


async def test_autodev_decode_many_raises_the_provider_error_when_one_fails(
    http, autodev, autodev_url
) -> None:
    autodev.fail("error")
    decoder = AutodevVinDecoder(http, autodev_settings(autodev_url, retries=0), API_KEY)

    with pytest.raises(ProviderUnavailable):
        await decoder.decode_many([req(F150), req(TIGUAN)])


async def test_autodev_falls_back_to_offline_when_it_fails(http, autodev, autodev_url, offline) -> None:
    autodev.fail("unavailable")
    decoder = FallbackVinDecoder(AutodevVinDecoder(http, autodev_settings(autodev_url), API_KEY), offline)

    vehicles = await decoder.decode_many([req(ACCORD), req(TIGUAN)])

    assert [v.source.provider for v in vehicles] == ["offline", "offline"]
    assert {v.source.fallback_reason for v in vehicles} == {"autodev: provider_unavailable"}


# ---------------------------------------------------------------- Retry-After parsing


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
