"""The HTTP edge without infrastructure: error mapping, request validation, SSE framing.

The app runs in memory (httpx's ASGITransport, no sockets) with its lifespan
yielding fake services: a scripted assistant, a counting limiter and a health probe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from agent.answer import (
    AgentEvent,
    Answer,
    AnswerEvent,
    Language,
    SourceRef,
    TokenEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolResultEvent,
)
from agent.assistant import Asker
from api import errors as api_errors
from api.app import create_app
from api.deps import Services
from api.sse import KEEP_ALIVE, event_stream_response
from tools import errors as tool_errors
from tools.errors import (
    AppError,
    BadProviderResponse,
    InvalidInput,
    InvalidVin,
    NotAllowed,
    ProviderUnavailable,
    RateLimited,
    UnsupportedComparison,
    VehicleNotFound,
)
from tools.providers.base import Limit, LimitCheck, LimitDecision
from tools.settings import LimitSettings, Settings
from tools.vin import VinDeps

CONVERSATION = re.compile(r"^api:[0-9a-f]{32}$")
SOURCE = SourceRef(provider="offline", dataset="NHTSA vPIC (offline copy)", record_id="1HGCM82633A004352")
CALL = ToolCallRecord(name="decode_vin", args={"vin": "1HGCM82633A004352"}, duration_ms=4.2)


# ---------------------------------------------------------------- fakes


class Boom(Exception):
    """A bug: something no handler expects. Its text must never reach a client."""


@dataclass
class FakeAssistant:
    """An `Assistant` that answers from a script and records who asked."""

    text: str = "That is a 2003 HONDA Accord."
    fail_before: BaseException | None = None
    fail_after: BaseException | None = None  # raised mid-stream, after the tool events
    calls: list[tuple[str, str, Asker, Language | None]] = field(default_factory=list)
    limiter: FakeLimiter | None = None  # spends the asker's limits first, as the `Assistant` contract says

    def answer(self, conversation_id: str, language: Language | None) -> Answer:
        return Answer(
            answer=self.text,
            language=language or "en",
            conversation_id=conversation_id,
            sources=[SOURCE],
            tool_calls=[CALL],
            planner="offline",
        )

    async def ask(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> Answer:
        answer: Answer | None = None
        async for event in self.stream(text, conversation_id=conversation_id, asker=asker, language=language):
            if isinstance(event, AnswerEvent):
                answer = event.answer
        assert answer is not None
        return answer

    async def stream(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> AsyncIterator[AgentEvent]:
        if self.limiter is not None and asker.limits:
            await self.limiter.acquire_all(asker.limits)
        self.calls.append((text, conversation_id, asker, language))
        if self.fail_before is not None:
            raise self.fail_before
        yield ToolCallEvent(name="decode_vin", args={"vin": "1HGCM82633A004352"})
        yield ToolResultEvent(name="decode_vin", ok=True, duration_ms=4.2)
        if self.fail_after is not None:
            raise self.fail_after
        for word in self.text.split(" "):
            yield TokenEvent(text=word + " ")
        yield AnswerEvent(answer=self.answer(conversation_id, language))


@dataclass
class FakeLimiter:
    """A `RateLimiter` that admits `allow` calls, then denies with `retry_after`."""

    allow: int = 1_000
    retry_after: float = 2.2
    keys: list[tuple[str, Limit]] = field(default_factory=list)

    async def hit(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        return await self.hit_all([LimitCheck(key, limit, cost)])

    async def hit_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        self.keys += [(c.key, c.limit) for c in checks]
        if len(self.keys) > self.allow:
            return LimitDecision(False, 0, self.retry_after, self.retry_after)
        return LimitDecision(True, self.allow - len(self.keys), 0.0, 0.0)

    async def acquire(self, key: str, limit: Limit, *, cost: int = 1) -> LimitDecision:
        return await self.acquire_all([LimitCheck(key, limit, cost)])

    async def acquire_all(self, checks: Sequence[LimitCheck]) -> LimitDecision:
        decision = await self.hit_all(checks)
        if not decision.allowed:
            raise RateLimited(checks[0].key, decision.retry_after)
        return decision

    async def refund_all(self, checks: Sequence[LimitCheck]) -> None:
        raise AssertionError("no request here fails after spending its quota")


@dataclass
class FakeHealth:
    checks: dict[str, bool] = field(default_factory=lambda: {"database": True, "cache": True, "agent": True})

    async def __call__(self) -> Mapping[str, bool]:
        return self.checks


def make_services(
    assistant: FakeAssistant | None = None,
    limiter: FakeLimiter | None = None,
    health: FakeHealth | None = None,
    requests_per_minute: int = 30,
) -> Services:
    settings = Settings(
        _env_file=None,
        env="test",
        limits=LimitSettings(anonymous_requests_per_minute=requests_per_minute),
    )
    limiter = limiter or FakeLimiter()
    assistant = assistant or FakeAssistant()
    assistant.limiter = limiter
    return Services(
        settings=settings,
        assistant=assistant,
        limiter=limiter,
        vin=VinDeps(decoders={}),
        sessions=async_sessionmaker(),
        health=health or FakeHealth(),
    )


class WithLifespanState:
    """Give each request a copy of the lifespan state, as uvicorn does (ASGITransport does not)."""

    def __init__(self, app: Any, state: Mapping[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["state"] = dict(self.state)
        await self.app(scope, receive, send)


@asynccontextmanager
async def serving(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    @asynccontextmanager
    async def open_services(settings: Settings, build: Any) -> AsyncIterator[Services]:
        yield services

    app = create_app(services.settings, services_factory=open_services)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=WithLifespanState(app, state or {}), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in body.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next(line[len("event: ") :] for line in lines if line.startswith("event: "))
        data = "".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data)))
    return events


SSE = {"Accept": "text/event-stream"}


# ---------------------------------------------------------------- the mapping itself


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidVin("Not a VIN.", reason="too_short", raw="123"), 422),
        (InvalidInput("Bad year."), 422),
        (UnsupportedComparison("Need two."), 422),
        (NotAllowed("Premium only."), 403),
        (VehicleNotFound("No such vehicle."), 404),
        (RateLimited("ip:1.2.3.4:requests:minute", 2.2), 429),
        (ProviderUnavailable("nhtsa"), 503),
        (BadProviderResponse("autodev"), 503),
        (AppError("Something app-level."), 400),
    ],
)
def test_each_error_code_maps_to_its_status_when_rendered(error: AppError, status: int) -> None:
    response = api_errors.error_response(error)
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert body["error"] == error.code
    assert body["message"] == error.public_message


def test_no_error_class_of_the_tree_maps_to_500_when_rendered() -> None:
    def subclasses(cls: type[AppError]) -> Iterator[type[AppError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    classes = set(subclasses(AppError))
    assert classes >= {InvalidVin, RateLimited, ProviderUnavailable, NotAllowed}
    for cls in classes:
        if cls.__module__ != tool_errors.__name__:
            continue
        assert cls.code in api_errors.STATUS_BY_CODE, cls
        assert api_errors.STATUS_BY_CODE[cls.code] < 500 or cls.code.startswith(("provider", "bad_provider"))


@pytest.mark.parametrize(
    ("retry_after", "header"), [(2.2, "3"), (3.0, "3"), (0.0, "1"), (0.2, "1"), (59.01, "60")]
)
def test_retry_after_is_whole_seconds_rounded_up_when_rate_limited(retry_after: float, header: str) -> None:
    response = api_errors.error_response(RateLimited("quota", retry_after))
    assert response.headers["Retry-After"] == header
    assert json.loads(bytes(response.body))["retry_after"] == pytest.approx(retry_after, abs=1e-3)


def test_invalid_vin_body_carries_reason_and_suggestions_when_rendered() -> None:
    error = InvalidVin(
        "Letters O are not used.", reason="forbidden_letters", suggestions=["1HGCM82633A004352"]
    )
    body = json.loads(bytes(api_errors.error_response(error).body))
    assert body == {
        "error": "invalid_vin",
        "message": "Letters O are not used.",
        "reason": "forbidden_letters",
        "suggestions": ["1HGCM82633A004352"],
    }


# ---------------------------------------------------------------- POST /ask as JSON


async def test_answer_comes_back_with_a_new_conversation_id_when_the_client_sends_none() -> None:
    assistant = FakeAssistant()
    async with serving(make_services(assistant)) as client:
        response = await client.post("/ask", json={"message": "what car is 1HGCM82633A004352?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert CONVERSATION.match(body["conversation_id"])
    assert body["answer"] == "That is a 2003 HONDA Accord."
    assert body["sources"][0]["dataset"] == "NHTSA vPIC (offline copy)"
    assert body["tool_calls"][0]["name"] == "decode_vin"
    text, conversation_id, asker, language = assistant.calls[0]
    assert text == "what car is 1HGCM82633A004352?"
    assert conversation_id == body["conversation_id"]
    per_ip = LimitCheck("ip:127.0.0.1:requests:minute", Limit(30, timedelta(minutes=1)))
    # The id was minted for this request: its user cannot exist yet.
    expected = Asker(external_id=f"anon:{conversation_id}", channel="api", limits=(per_ip,), new_user=True)
    assert asker == expected
    assert language is None


async def test_the_given_conversation_and_language_are_used_when_the_client_sends_them() -> None:
    assistant = FakeAssistant()
    given = "api:" + "ab" * 16
    async with serving(make_services(assistant)) as client:
        response = await client.post(
            "/ask", json={"message": "y su motor?", "conversation_id": given, "language": "es"}
        )
    assert response.status_code == 200
    assert response.json()["conversation_id"] == given
    assert response.json()["language"] == "es"
    assert assistant.calls[0][1:3] == (
        given,
        Asker(f"anon:{given}", "api", limits=assistant.calls[0][2].limits),
    )
    assert assistant.calls[0][3] == "es"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "hi", "conversation_id": "tg:42"}, "conversation_id"),
        ({"message": "hi", "conversation_id": "api:" + "AB" * 16}, "conversation_id"),
        ({"message": "hi", "conversation_id": "api:" + "ab" * 15}, "conversation_id"),
        ({"message": ""}, "message"),
        ({}, "message"),
        ({"message": "hi", "language": "it"}, "language"),
        ({"message": "hi", "user_id": 2}, "user_id"),
    ],
)
async def test_bad_bodies_get_422_invalid_input_naming_the_field_when_posted(
    body: dict[str, Any], field: str
) -> None:
    assistant = FakeAssistant()
    async with serving(make_services(assistant)) as client:
        response = await client.post("/ask", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid_input"
    assert field in error["message"]
    assert any(d["loc"][-1] == field for d in error["details"])
    assert assistant.calls == []


async def test_a_body_that_is_not_json_gets_422_invalid_input_when_posted() -> None:
    async with serving(make_services()) as client:
        response = await client.post(
            "/ask", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_input"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidInput("Please write a question."), 422, "invalid_input"),
        (NotAllowed("This conversation belongs to someone else."), 403, "not_allowed"),
        (RateLimited("user:7:messages:minute", 12.5), 429, "rate_limited"),
        (ProviderUnavailable("llm"), 503, "provider_unavailable"),
    ],
)
async def test_assistant_errors_keep_their_code_and_status_when_asked_as_json(
    error: AppError, status: int, code: str
) -> None:
    async with serving(make_services(FakeAssistant(fail_before=error))) as client:
        response = await client.post("/ask", json={"message": "hello"})
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["message"] == error.public_message
    if status == 429:
        assert response.headers["Retry-After"] == "13"


async def test_per_ip_limit_answers_429_with_retry_after_when_spent() -> None:
    limiter = FakeLimiter(allow=2, retry_after=41.3)
    assistant = FakeAssistant()
    async with serving(make_services(assistant, limiter, requests_per_minute=2)) as client:
        statuses = [(await client.post("/ask", json={"message": "hi"})).status_code for _ in range(2)]
        denied = await client.post("/ask", json={"message": "hi"})
    assert statuses == [200, 200]
    assert denied.status_code == 429
    assert denied.headers["Retry-After"] == "42"
    assert denied.json()["error"] == "rate_limited"
    assert len(assistant.calls) == 2
    key, limit = limiter.keys[0]
    assert key == "ip:127.0.0.1:requests:minute"
    assert limit == Limit(2, timedelta(minutes=1))


async def test_unexpected_errors_become_a_bare_500_logged_once_when_the_assistant_has_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "postgresql://vinbot:hunter2@db/vinbot"
    with caplog.at_level(logging.ERROR):
        async with serving(make_services(FakeAssistant(fail_before=Boom(secret)))) as client:
            response = await client.post("/ask", json={"message": "hello"}, headers={"X-Request-ID": "req-1"})
    assert response.status_code == 500
    assert response.json() == dict(api_errors.INTERNAL_ERROR)
    assert "hunter2" not in response.text
    assert response.headers["X-Request-ID"] == "req-1"
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], Boom)]
    assert len(logged) == 1


# ---------------------------------------------------------------- POST /ask as Server-Sent Events


async def test_stream_sends_tool_events_then_tokens_and_ends_with_the_answer_when_accepted() -> None:
    async with serving(make_services()) as client:
        response = await client.post("/ask", json={"message": "what car?"}, headers=SSE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:2] == ["tool_call", "tool_result"]
    assert set(names[2:-1]) == {"token"}
    assert names[-1] == "answer"
    assert "".join(data["text"] for name, data in events if name == "token").strip() == (
        "That is a 2003 HONDA Accord."
    )
    answer = events[-1][1]
    assert CONVERSATION.match(answer["conversation_id"])
    assert answer["sources"][0]["record_id"] == "1HGCM82633A004352"
    assert events[0][1] == {"type": "tool_call", "name": "decode_vin", "args": {"vin": "1HGCM82633A004352"}}


async def test_stream_errors_before_the_first_event_get_their_http_status_when_accepted() -> None:
    assistant = FakeAssistant(fail_before=RateLimited("user:7:messages:minute", 5.0))
    async with serving(make_services(assistant)) as client:
        response = await client.post("/ask", json={"message": "hi"}, headers=SSE)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "rate_limited"


async def test_stream_ends_with_an_error_event_when_the_assistant_fails_midway() -> None:
    assistant = FakeAssistant(fail_after=ProviderUnavailable("nhtsa"))
    async with serving(make_services(assistant)) as client:
        response = await client.post("/ask", json={"message": "hi"}, headers=SSE)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["tool_call", "tool_result", "error"]
    assert events[-1][1] == ProviderUnavailable("nhtsa").to_dict()


async def test_stream_hides_internals_when_the_assistant_has_a_bug_midway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assistant = FakeAssistant(fail_after=Boom("Traceback: secret internals"))
    with caplog.at_level(logging.ERROR):
        async with serving(make_services(assistant)) as client:
            response = await client.post("/ask", json={"message": "hi"}, headers=SSE)
    events = sse_events(response.text)
    assert events[-1] == ("error", dict(api_errors.INTERNAL_ERROR))
    assert "secret" not in response.text
    assert len([r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], Boom)]) == 1


async def test_stream_sends_keep_alive_comments_when_the_assistant_is_slow() -> None:
    async def slow() -> AsyncIterator[AgentEvent]:
        yield TokenEvent(text="Hel")
        await asyncio.sleep(0.08)
        yield TokenEvent(text="lo")

    response = await event_stream_response(slow(), heartbeat_s=0.02)
    chunks = [
        chunk if isinstance(chunk, str) else bytes(chunk).decode() async for chunk in response.body_iterator
    ]
    assert chunks[0].startswith("event: token\n")
    assert KEEP_ALIVE in chunks
    assert chunks[-1] == 'event: token\ndata: {"type":"token","text":"lo"}\n\n'


async def test_stream_stops_the_assistant_when_the_client_goes_away() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[AgentEvent]:
        try:
            while True:
                yield TokenEvent(text="x")
                await asyncio.sleep(0.01)
        finally:
            stopped.set()

    response = await event_stream_response(endless(), heartbeat_s=1)
    frames = response.body_iterator
    assert isinstance(frames, AsyncIterator)
    await anext(frames)
    await frames.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(stopped.wait(), 1)


# ---------------------------------------------------------------- health, ids, docs, page


async def test_healthz_is_200_when_every_part_is_ready() -> None:
    async with serving(make_services()) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": True, "cache": True, "agent": True},
        "down": [],
    }


async def test_healthz_is_503_naming_the_part_when_one_is_down() -> None:
    health = FakeHealth({"database": True, "cache": False, "agent": True})
    async with serving(make_services(health=health)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["down"] == ["cache"]


async def test_healthz_spends_no_per_ip_quota_when_probed() -> None:
    limiter = FakeLimiter(allow=0)
    async with serving(make_services(limiter=limiter)) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert limiter.keys == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123.x:y_z", True), ("bad id with spaces", False), ("x" * 200, False), (None, False)],
)
async def test_request_id_is_echoed_only_when_acceptable(sent: str | None, kept: bool) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}
    async with serving(make_services()) as client:
        response = await client.get("/healthz", headers=headers)
    returned = response.headers["X-Request-ID"]
    assert (returned == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", returned)


async def test_unknown_routes_and_methods_get_json_errors_when_called() -> None:
    async with serving(make_services()) as client:
        missing = await client.get("/nope")
        wrong_method = await client.get("/ask")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


async def test_openapi_documents_the_endpoints_and_the_error_shape_when_fetched() -> None:
    async with serving(make_services()) as client:
        docs = await client.get("/docs")
        schema = (await client.get("/openapi.json")).json()
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert {"/ask", "/healthz", "/api/v1/vin/{vin}"} <= set(schema["paths"])
    ask = schema["paths"]["/ask"]["post"]["responses"]
    assert {"200", "422", "429"} <= set(ask)
    assert "text/event-stream" in ask["200"]["content"]
    assert "ErrorResponse" in schema["components"]["schemas"]


async def test_chat_page_and_its_assets_are_served_with_a_strict_policy_when_requested() -> None:
    async with serving(make_services()) as client:
        page = await client.get("/")
        script = await client.get("/static/app.js")
        style = await client.get("/static/style.css")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'name="viewport"' in page.text
    assert script.status_code == 200
    assert style.status_code == 200
    assert "innerHTML" not in script.text  # model text is rendered with textContent only
    assert "http://" not in script.text
    assert "https://" not in script.text


def test_page_strings_exist_in_all_four_languages() -> None:
    from api.routes.web import WEB_DIR

    script = (WEB_DIR / "app.js").read_text(encoding="utf-8")
    blocks = re.findall(r"\n    (en|es|fr|de): \{\n(.*?)\n    \},", script, re.S)
    keys = {lang: set(re.findall(r"^\s+(\w+):", body, re.M)) for lang, body in blocks}
    assert set(keys) == {"en", "es", "fr", "de"}
    assert keys["es"] == keys["en"] == keys["fr"] == keys["de"]
