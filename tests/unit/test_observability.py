import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from tools.observability import (
    bind_context,
    configure_logging,
    current_context,
    init_sentry,
    log_context,
    mask_vin,
    redact,
    scrub_event,
)

VIN = "1HGCM82633A004352"
MASKED_VIN = "***********004352"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
DB_URL = "postgresql://u:s3cr3tpw@h/db"
DSN = "https://public@127.0.0.1/1"

logger = logging.getLogger("tests.observability")


class RecordingTransport(Transport):
    """A Sentry transport that keeps envelopes in memory instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[Any]:
        return [event for envelope in self.envelopes if (event := envelope.get_event()) is not None]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    saved_level = root.level
    saved_noisy = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    for handler in root.handlers[:]:
        if handler not in saved_handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved_level)
    for name, level in saved_noisy.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def text_log(restore_logging: None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="text", stream=stream)
    return stream


@pytest.fixture
def json_log(restore_logging: None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    """Return this module's records from `stream` (libraries such as asyncio log too)."""
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [record for record in records if record["logger"] == logger.name]


def text_lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if f" {logger.name}: " in line]


@pytest.fixture
def transport() -> Iterator[RecordingTransport]:
    recorder = RecordingTransport()
    with sentry_sdk.isolation_scope():
        yield recorder
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"GET https://api.telegram.org/bot{BOT_TOKEN}/getMe", BOT_TOKEN),
        ("Authorization: Bearer eyJhbGciOi.payload-part.sig_nature", "eyJhbGciOi"),
        ("openai key sk-proj-Abcdefghijklmnop1234567890", "Abcdefghijklmnop"),
        ("stripe sk_live_51HabcDEF123 and sk_test_51Hxyz789", "51Habc"),
        ("stripe sk_test_51Hxyz789zz", "51Hxyz"),
        ("webhook whsec_AbCdEf123456", "AbCdEf123456"),
        ("POST /login?user=ann&password=hunter2&next=/", "hunter2"),
        ("token=abc123def&vin=ok", "abc123def"),
        ("https://x.test/cb?api_key=zz9-Key&key=k3y_value", "zz9-Key"),
        ("https://x.test/cb?api_key=zz9-Key&key=k3y_value", "k3y_value"),
        (f"connecting to {DB_URL}", "s3cr3tpw"),
        ("redis://:redispass@localhost:6379/0", "redispass"),
        ("settings {'openai_api_key': 'plain-secret-value'}", "plain-secret-value"),
    ],
)
def test_secret_is_redacted_when_text_contains_it(text: str, secret: str) -> None:
    redacted = redact(text)

    assert secret not in redacted
    assert "[REDACTED]" in redacted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"decode {VIN} now", f"decode {MASKED_VIN} now"),
        (VIN.lower(), "***********004352".lower()),
        (f"vin={VIN},", f"vin={MASKED_VIN},"),
        (f"{VIN}/{VIN}", f"{MASKED_VIN}/{MASKED_VIN}"),
    ],
)
def test_vin_keeps_only_its_last_six_characters_when_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1HGCM82633A0043529",  # 18 characters: not a VIN
        "1HGCM82633A00435",  # 16 characters
        "1HGCM82633AO04352",  # contains O, outside the VIN alphabet
        "request 5f2b8c1e9d7a4b3c8e6f1a2b3c4d5e6f",  # a uuid hex is 32 characters
    ],
)
def test_text_is_unchanged_when_it_holds_no_vin_or_secret(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    text = f"{VIN} {BOT_TOKEN} {DB_URL} Bearer abc"

    assert redact(redact(text)) == redact(text)


def test_mask_vin_keeps_last_six() -> None:
    assert mask_vin(VIN) == MASKED_VIN
    assert mask_vin("ABC") == "ABC"  # not a VIN: nothing to hide


# ---------------------------------------------------------------- logging


def test_vin_and_secrets_are_masked_when_logged_as_text(text_log: io.StringIO) -> None:
    logger.info("decoding %s via %s using %s", VIN, f"https://api.telegram.org/bot{BOT_TOKEN}/x", DB_URL)

    output = text_log.getvalue()
    assert VIN not in output
    assert MASKED_VIN in output
    assert BOT_TOKEN not in output
    assert "s3cr3tpw" not in output
    assert "INFO" in output
    assert "tests.observability: decoding" in output


def test_vin_and_secrets_are_masked_when_logged_as_json(json_log: io.StringIO) -> None:
    logger.warning("payment %s for %s", "sk_live_51HabcDEF123", VIN)

    (line,) = json_lines(json_log)
    assert line["message"] == f"payment sk_live_[REDACTED] for {MASKED_VIN}"
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.observability"
    assert line["exc"] is None
    assert set(line) == {"ts", "level", "logger", "message", "request_id", "conversation_id", "tool", "exc"}


def test_traceback_is_redacted_when_exception_is_logged(json_log: io.StringIO) -> None:
    try:
        raise RuntimeError(f"cannot reach {DB_URL} for {VIN}")
    except RuntimeError:
        logger.exception("decode failed")

    (line,) = json_lines(json_log)
    exc = line["exc"]
    assert isinstance(exc, str)
    assert "Traceback" in exc
    assert "RuntimeError" in exc
    assert "s3cr3tpw" not in exc
    assert VIN not in exc
    assert MASKED_VIN in exc


def test_traceback_is_redacted_when_exception_is_logged_as_text(text_log: io.StringIO) -> None:
    try:
        raise RuntimeError(f"bad token {BOT_TOKEN}")
    except RuntimeError:
        logger.exception("send failed")

    output = text_log.getvalue()
    assert "Traceback" in output
    assert BOT_TOKEN not in output


def test_context_ids_appear_in_json_and_are_restored_on_exit(json_log: io.StringIO) -> None:
    with log_context(request_id="req-1", conversation_id="tg:42"):
        logger.info("outer")
        with log_context(tool="decode_vin"):
            logger.info("inner")
        logger.info("outer again")
    logger.info("outside")

    ids = [(line["request_id"], line["conversation_id"], line["tool"]) for line in json_lines(json_log)]
    assert ids == [
        ("req-1", "tg:42", None),
        ("req-1", "tg:42", "decode_vin"),
        ("req-1", "tg:42", None),
        (None, None, None),
    ]


def test_context_ids_appear_in_text_only_when_set(text_log: io.StringIO) -> None:
    logger.info("plain")
    with log_context(request_id="req-7", tool="compare_vehicles"):
        logger.info("tagged")

    plain, tagged = text_lines(text_log)
    assert "request_id" not in plain
    assert tagged.endswith("tagged [request_id=req-7 tool=compare_vehicles]")


async def test_context_ids_do_not_leak_between_concurrent_tasks(json_log: io.StringIO) -> None:
    both_inside = asyncio.Barrier(2)

    async def handle(request_id: str) -> None:
        with log_context(request_id=request_id, conversation_id=f"api:{request_id}"):
            await both_inside.wait()
            logger.info("handling %s", request_id)
            await asyncio.sleep(0)
            logger.info("done %s", request_id)

    async def bound_task() -> None:
        bind_context(request_id="bound")
        await asyncio.sleep(0)
        logger.info("handling bound")

    await asyncio.gather(handle("a"), handle("b"), bound_task())

    lines = json_lines(json_log)
    assert len(lines) == 5
    for line in lines:
        message = line["message"]
        assert isinstance(message, str)
        request_id = message.rsplit(" ", 1)[1]
        assert line["request_id"] == request_id
        if request_id != "bound":
            assert line["conversation_id"] == f"api:{request_id}"
    assert current_context() == {"request_id": None, "conversation_id": None, "tool": None}


def test_configure_logging_is_idempotent(restore_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    before = len(root.handlers)

    configure_logging(fmt="text", stream=first)
    configure_logging(fmt="json", stream=second)
    logger.info("once")

    assert len(root.handlers) == before + 1
    assert first.getvalue() == ""
    assert [line["message"] for line in json_lines(second)] == ["once"]


@pytest.mark.parametrize(("env", "is_json"), [("prod", True), ("dev", False), ("test", False)])
def test_auto_format_is_json_only_in_prod(restore_logging: None, env: str, is_json: bool) -> None:
    stream = io.StringIO()
    configure_logging(env=env, stream=stream)
    logger.info("hello")

    assert stream.getvalue().startswith("{") is is_json


def test_level_filters_records_and_http_clients_log_warnings_only(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(level="warning", fmt="json", stream=stream)
    logger.info("dropped")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/x", BOT_TOKEN)
    logger.warning("kept")

    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("httpcore").level == logging.WARNING
    assert [line["message"] for line in json_lines(stream)] == ["kept"]


def test_configure_logging_rejects_unknown_level(restore_logging: None) -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging(level="loud", stream=io.StringIO())


# ---------------------------------------------------------------- Sentry


def test_scrub_event_masks_every_part_and_drops_sensitive_headers() -> None:
    event = {
        "message": f"failed for {VIN}",
        "logentry": {"message": "failed for %s", "params": [VIN]},
        "request": {
            "url": f"https://example.test/hook?token={BOT_TOKEN}",
            "query_string": "api_key=abc123&vin=" + VIN,
            "headers": {
                "Authorization": "Bearer abc",
                "Cookie": "session=1",
                "X-Api-Key": "k",
                "X-Telegram-Bot-Api-Secret-Token": "tg-secret",
                "User-Agent": "pytest",
            },
            "data": {"vin": VIN, "note": DB_URL},
            "env": {"HTTP_AUTHORIZATION": "Bearer abc"},
        },
        "extra": {"vins": [VIN, ("x-api-key", "pair-secret")]},
        "contexts": {"job": {"url": DB_URL}},
        "breadcrumbs": {"values": [{"message": f"decode {VIN}", "data": {"url": DB_URL}}]},
    }

    scrubbed: Any = scrub_event(event, {})  # type: ignore[arg-type]

    dumped = json.dumps(scrubbed)
    for secret in (VIN, BOT_TOKEN, "s3cr3tpw", "abc123", "tg-secret", "session=1", "pair-secret"):
        assert secret not in dumped
    request = scrubbed["request"]
    assert request["headers"] == {
        "Authorization": "[Filtered]",
        "Cookie": "[Filtered]",
        "X-Api-Key": "[Filtered]",
        "X-Telegram-Bot-Api-Secret-Token": "[Filtered]",
        "User-Agent": "pytest",
    }
    assert request["data"]["vin"] == MASKED_VIN
    assert scrubbed["logentry"]["params"] == [MASKED_VIN]


def _decode_through_broken_provider(vehicle: str) -> None:
    endpoint = f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage"
    database = DB_URL
    raise ConnectionError(f"cannot decode {vehicle}: {endpoint} and {database} are down")


def test_sentry_event_is_scrubbed_when_sent_through_local_transport(transport: RecordingTransport) -> None:
    assert init_sentry(DSN, env="test", release="test", transport=transport, default_integrations=False)
    assert sentry_sdk.get_client().should_send_default_pii() is False
    sentry_sdk.add_breadcrumb(message=f"decoding {VIN}", data={"db": DB_URL})

    try:
        _decode_through_broken_provider(VIN)
    except ConnectionError as e:
        sentry_sdk.capture_exception(e)
    sentry_sdk.flush()

    (event,) = transport.events()
    dumped = json.dumps(event)
    assert VIN not in dumped
    assert BOT_TOKEN not in dumped
    assert "s3cr3tpw" not in dumped
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ConnectionError"
    assert MASKED_VIN in exception["value"]
    assert "postgresql://[REDACTED]@h/db" in exception["value"]
    frame = exception["stacktrace"]["frames"][-1]
    assert frame["function"] == "_decode_through_broken_provider"
    assert MASKED_VIN in frame["vars"]["vehicle"]
    assert "[REDACTED]" in frame["vars"]["endpoint"]
    assert "[REDACTED]" in frame["vars"]["database"]
    (crumb,) = event["breadcrumbs"]["values"]
    assert crumb["message"] == f"decoding {MASKED_VIN}"
    assert event["environment"] == "test"


@pytest.mark.parametrize("dsn", [None, ""])
def test_init_sentry_returns_false_and_sends_nothing_without_dsn(
    transport: RecordingTransport, dsn: str | None
) -> None:
    assert init_sentry(dsn, env="test", transport=transport, default_integrations=False) is False

    sentry_sdk.capture_message(f"decode {VIN}")
    sentry_sdk.flush()

    assert not sentry_sdk.get_client().is_active()
    assert transport.envelopes == []
