"""The assistant with an LLM: the real agent against an OpenAI stand-in over real HTTP.

The assistant is built by `build_assistant` from `Settings`, on the embedded
PostgreSQL (each test in a rolled-back transaction) and Redis (a flushed test
database). The LLM is `tests/standins/openai_api.py` on loopback, speaking the
chat-completions wire format (streamed when the caller streams tokens, in one piece
for `ask`); each test scripts the model's replies and then reads what the client sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from standins import serving
from standins.openai_api import (
    OpenAIStandIn,
    Reply,
    ToolCall,
    failure,
    json_tool_call,
    text,
    tool_call,
    tool_calls,
)

from agent.answer import AnswerEvent, TokenEvent, ToolCallEvent, ToolResultEvent
from agent.assistant import Asker, GraphAssistant
from agent.bootstrap import build_assistant
from agent.i18n import t
from tools.bootstrap import Infrastructure, build_tool_deps
from tools.providers.kv import RedisKvStore
from tools.settings import AgentSettings, Settings
from tools.storage.user_repo import get_or_create_user
from tools.storage.vin_repo import list_history

pytestmark = pytest.mark.integration

API_KEY = "test-key"
MODEL = "gpt-4o-mini"
ACCORD = "1HGCM82633A004352"
ACCORD_TITLE = "2003 HONDA Accord EX-V6"
F150 = "1FTMW1T88MFA00001"  # a real VIN the user never wrote in these conversations
TOOL_NAMES = [
    "decode_vin",
    "decode_vins",
    "get_vin_history",
    "start_bulk_decode",
    "get_job_status",
    "search_specs",
    "get_specs",
    "compare_vehicles",
    "find_recalls",
]
# Generous for answers that come; the "slow" fault holds its reply past a much shorter one.
TIMEOUT_S = 2.0
SHORT_TIMEOUT_S = 0.3

MakeAssistant = Callable[..., GraphAssistant]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vinbot-data")


@pytest.fixture(scope="module")
async def llm_server() -> AsyncIterator[tuple[OpenAIStandIn, str]]:
    standin = OpenAIStandIn(slow_s=3.0)
    async with serving(standin.app) as url:
        yield standin, f"{url}/v1"
        standin.release()


@pytest.fixture
def llm(llm_server: tuple[OpenAIStandIn, str]) -> Iterator[tuple[OpenAIStandIn, str]]:
    """The stand-in with an empty script and nothing received."""
    llm_server[0].reset()
    yield llm_server
    llm_server[0].release()  # nothing held may outlive its test


@pytest.fixture
def standin(llm: tuple[OpenAIStandIn, str]) -> OpenAIStandIn:
    return llm[0]


@pytest.fixture
async def make_assistant(
    llm: tuple[OpenAIStandIn, str],
    pg_url: str,
    redis_url: str,
    db_engine: AsyncEngine,
    db_sessions: async_sessionmaker[AsyncSession],
    kv: RedisKvStore,
    data_dir: Path,
) -> AsyncIterator[MakeAssistant]:
    """Build the assistant as a composition root does, on the test's database and Redis."""
    async with httpx.AsyncClient() as http:
        infra = Infrastructure(
            database_url=pg_url,
            redis_url=redis_url,
            engine=db_engine,
            sessions=db_sessions,
            kv=kv,
            http=http,
        )

        def make(direct: bool = True, **agent: Any) -> GraphAssistant:
            settings = Settings(
                DATABASE_URL=pg_url,
                REDIS_URL=redis_url,
                OPENAI_API_KEY=API_KEY,
                OPENAI_BASE_URL=llm[1],
                data_dir=data_dir,
                llm_model=MODEL,
                agent=AgentSettings(**{"planner_first": False, "llm_timeout_s": TIMEOUT_S, **agent}),
            )
            return build_assistant(settings, build_tool_deps(settings, infra), direct=direct)

        yield make


def asker(name: str) -> Asker:
    return Asker(external_id=f"test:{name}", channel="test")


async def history_of(sessions: async_sessionmaker[AsyncSession], name: str) -> list[str]:
    async with sessions() as session:
        user = await get_or_create_user(session, f"test:{name}")
        return [entry.vin for entry in await list_history(session, user.id)]


# ---------------------------------------------------------------- the stand-in itself


async def test_stand_in_answers_in_the_chat_completion_shape_when_the_openai_client_calls_it(llm) -> None:
    standin, base_url = llm
    call = ToolCall("decode_vin", {"vin": ACCORD})
    standin.plan(tool_calls(call, prompt_tokens=31, completion_tokens=7))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=TIMEOUT_S)
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"decode {ACCORD}"}]
    )
    await client.close()
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    [sent] = choice.message.tool_calls or []
    assert sent.type == "function"
    assert sent.id == call.id
    assert (sent.function.name, json.loads(sent.function.arguments)) == ("decode_vin", {"vin": ACCORD})
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (31, 7)
    assert completion.usage.total_tokens == 38
    assert standin.received[0].authorization == f"Bearer {API_KEY}"


async def test_stand_in_streams_deltas_then_usage_when_the_client_asks_for_a_stream(llm) -> None:
    standin, base_url = llm
    standin.plan(
        tool_call("decode_vin", {"vin": ACCORD}, prompt_tokens=12, completion_tokens=5),
        text("It is a 2003 Honda Accord.", prompt_tokens=40, completion_tokens=8),
    )
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=TIMEOUT_S)
    messages: Any = [{"role": "user", "content": f"decode {ACCORD}"}]
    options: Any = {"include_usage": True}
    chunks = [
        c
        async for c in await client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options=options
        )
    ]
    text_chunks = [
        c async for c in await client.chat.completions.create(model=MODEL, messages=messages, stream=True)
    ]
    await client.close()

    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    deltas = [d for c in chunks for choice in c.choices for d in choice.delta.tool_calls or []]
    assert deltas[0].id is not None
    assert deltas[0].function is not None
    assert deltas[0].function.name == "decode_vin"
    assert {d.index for d in deltas} == {0}
    assert all(d.id is None for d in deltas[1:])
    pieces = [d.function.arguments for d in deltas[1:] if d.function and d.function.arguments]
    assert len(pieces) > 1  # the arguments arrive split over several deltas
    assert json.loads("".join(pieces)) == {"vin": ACCORD}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 5)

    words = [c.choices[0].delta.content for c in text_chunks if c.choices[0].delta.content]
    assert len(words) > 1
    assert "".join(words) == "It is a 2003 Honda Accord."
    assert text_chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in text_chunks)  # no usage chunk unless asked for
    assert [r.streamed for r in standin.received] == [True, True]


# ---------------------------------------------------------------- native tool calls


async def test_model_answer_follows_the_decode_when_the_model_calls_decode_vin_with_the_users_vin(
    standin, make_assistant, db_sessions
) -> None:
    standin.plan(
        tool_call("decode_vin", {"vin": ACCORD}, prompt_tokens=410, completion_tokens=22),
        text(
            "That VIN is a 2003 Honda Accord EX-V6 built in the USA.", prompt_tokens=530, completion_tokens=17
        ),
    )
    assistant = make_assistant()
    answer = await assistant.ask(f"What car is {ACCORD}?", conversation_id="test:native", asker=asker("ann"))

    assert answer.answer == "That VIN is a 2003 Honda Accord EX-V6 built in the USA."
    assert answer.planner == f"llm:{MODEL}"
    assert [(c.name, c.args, c.ok) for c in answer.tool_calls] == [("decode_vin", {"vin": ACCORD}, True)]
    assert [(s.record_id, s.title) for s in answer.sources] == [(ACCORD, ACCORD_TITLE)]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (410 + 530, 22 + 17)
    assert answer.usage.estimated_cost_usd > 0
    assert answer.truncated is False
    assert await history_of(db_sessions, "ann") == [ACCORD]

    first, second = standin.received
    assert first.authorization == f"Bearer {API_KEY}"
    assert first.body["model"] == MODEL
    assert not first.streamed  # `ask` needs no tokens, so the model answers in one piece
    assert "stream_options" not in first.body  # usage comes in the completion itself
    assert first.tool_names == TOOL_NAMES
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[1]["content"] == f"What car is {ACCORD}?"
    # The tool result went back to the model, tied to its call.
    call_id = second.messages[2]["tool_calls"][0]["id"]
    [result] = second.tool_results()
    assert result["tool_call_id"] == call_id
    assert json.loads(result["content"])["title"] == ACCORD_TITLE
    assert standin.unplanned == 0


async def test_turns_without_tokens_send_the_graphs_requests_and_store_its_messages_when_run_directly(
    standin, make_assistant, db_sessions
) -> None:
    # `ask` runs the LLM's turns in `agent.direct.ModelTurns`; `direct=False` runs them in the graph.
    seen = []
    for direct in (True, False):
        standin.reset()
        name = f"direct-{direct}"
        conversation = f"test:{name}"
        assistant = make_assistant(direct=direct)
        answers = []
        for question, replies in (
            (
                f"What car is {ACCORD}?",
                [
                    tool_calls(ToolCall("decode_vin", {"vin": ACCORD}, id="call_1"), prompt_tokens=410),
                    text("A 2003 Honda Accord EX-V6.", prompt_tokens=530, completion_tokens=8),
                ],
            ),
            ("and its engine?", [text("A 3.0 L V6.", prompt_tokens=600, completion_tokens=6)]),
        ):
            standin.plan(*replies)
            answer = await assistant.ask(question, conversation_id=conversation, asker=asker(name))
            answers.append(
                answer.model_dump(
                    exclude={
                        "latency_ms": True,
                        "conversation_id": True,
                        "tool_calls": {"__all__": {"duration_ms"}},
                    }
                )
            )
        async with db_sessions() as session:
            stored = (
                await session.execute(
                    sql(
                        "SELECT role, content, tool_calls, tool_call_id, tool_name, language, planner, "
                        "input_tokens, output_tokens, estimated_cost_usd FROM messages "
                        "WHERE conversation_id = :c ORDER BY id"
                    ),
                    {"c": conversation},
                )
            ).all()
        seen.append(([r.body for r in standin.received], answers, [tuple(row) for row in stored]))
    assert seen[0] == seen[1]
    bodies, answers, stored = seen[0]
    assert len(bodies) == 3
    assert [a["answer"] for a in answers] == ["A 2003 Honda Accord EX-V6.", "A 3.0 L V6."]
    assert [row[0] for row in stored] == ["user", "assistant", "tool", "assistant", "user", "assistant"]


async def test_stream_yields_tokens_in_order_and_ends_with_the_answer_when_the_model_writes_it(
    standin, make_assistant
) -> None:
    final = "Your VIN 1HGCM82633A004352 is a 2003 Honda Accord EX-V6."
    standin.plan(tool_call("decode_vin", {"vin": ACCORD}), text(final))
    assistant = make_assistant()
    events = [
        e
        async for e in assistant.stream(
            f"decode {ACCORD} please", conversation_id="test:stream", asker=asker("bo")
        )
    ]

    kinds = [type(e) for e in events]
    assert kinds[:2] == [ToolCallEvent, ToolResultEvent]
    assert kinds[-1] is AnswerEvent
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 3
    assert "".join(tokens) == final
    assert kinds.index(TokenEvent) > kinds.index(ToolResultEvent)
    last = events[-1]
    assert isinstance(last, AnswerEvent)
    assert last.answer.answer == final
    assert last.answer.planner == f"llm:{MODEL}"


async def test_invented_vin_is_refused_and_not_decoded_when_the_model_calls_a_vin_the_user_never_wrote(
    standin, make_assistant, db_sessions
) -> None:
    standin.plan(
        tool_call("decode_vin", {"vin": F150}),
        text("Please send me the VIN you want decoded."),
    )
    assistant = make_assistant()
    answer = await assistant.ask(
        "Tell me about my truck's engine", conversation_id="test:invented", asker=asker("cy")
    )

    assert answer.answer == "Please send me the VIN you want decoded."
    [record] = answer.tool_calls
    assert (record.name, record.ok, record.error) == ("decode_vin", False, "vin_not_in_conversation")
    assert answer.sources == []
    [result] = standin.received[1].tool_results()
    assert json.loads(result["content"])["error"] == "vin_not_in_conversation"
    assert F150 not in json.dumps(standin.received[1].tool_results())  # no decode of it went back
    assert await history_of(db_sessions, "cy") == []


# ---------------------------------------------------------------- planner first


async def test_offline_planner_answers_without_the_llm_when_planner_first_sees_a_plain_vin(
    standin, make_assistant
) -> None:
    assistant = make_assistant(planner_first=True)
    answer = await assistant.ask(f"decode {ACCORD}", conversation_id="test:pf-vin", asker=asker("di"))

    assert standin.received == []
    assert answer.planner == "offline"
    assert [c.name for c in answer.tool_calls] == ["decode_vin"]
    assert [s.record_id for s in answer.sources] == [ACCORD]
    assert "Accord" in answer.answer
    assert answer.usage.input_tokens == 0


async def test_llm_answers_when_planner_first_sees_an_open_question(standin, make_assistant) -> None:
    standin.plan(text("AWD suits mixed roads; 4WD suits deep snow and off-road."))
    assistant = make_assistant(planner_first=True)
    answer = await assistant.ask(
        "Is AWD or 4WD better for snow?", conversation_id="test:pf-open", asker=asker("ed")
    )

    assert len(standin.received) == 1
    assert answer.planner == f"llm:{MODEL}"
    assert answer.answer == "AWD suits mixed roads; 4WD suits deep snow and off-road."
    assert answer.tool_calls == []


# ---------------------------------------------------------------- JSON tool mode


async def test_tool_runs_when_the_model_writes_the_call_as_json_in_json_tool_mode(
    standin, make_assistant, db_sessions
) -> None:
    standin.plan(
        json_tool_call("decode_vin", {"vin": ACCORD}, prompt_tokens=300, completion_tokens=20),
        text("It is a 2003 Honda Accord EX-V6.", prompt_tokens=380, completion_tokens=12),
    )
    assistant = make_assistant(llm_tool_mode="json")
    answer = await assistant.ask(f"what is {ACCORD}?", conversation_id="test:json", asker=asker("fy"))

    assert answer.answer == "It is a 2003 Honda Accord EX-V6."
    assert answer.planner == f"llm:{MODEL}"
    assert [(c.name, c.args, c.ok) for c in answer.tool_calls] == [("decode_vin", {"vin": ACCORD}, True)]
    assert [s.record_id for s in answer.sources] == [ACCORD]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (680, 32)
    assert await history_of(db_sessions, "fy") == [ACCORD]

    choose, write = standin.received
    fmt = choose.body["response_format"]
    assert fmt["type"] == "json_schema"
    branches = fmt["json_schema"]["schema"]["oneOf"]
    assert [b["properties"]["tool"]["const"] for b in branches] == [*TOOL_NAMES, "none"]
    assert "tools" not in choose.body
    assert [m["role"] for m in choose.messages] == ["system", "user"]
    assert '{"tool": "none", "reply": "..."}' in choose.messages[0]["content"]
    # The answer turn is free prose: no schema, and the tool result is in the messages.
    assert "response_format" not in write.body
    [result] = write.tool_results()
    assert json.loads(result["content"])["title"] == ACCORD_TITLE


async def test_stream_shows_no_raw_json_when_the_model_writes_tool_calls_as_json(
    standin, make_assistant
) -> None:
    standin.plan(json_tool_call("decode_vin", {"vin": ACCORD}), text("A 2003 Honda Accord EX-V6."))
    assistant = make_assistant(llm_tool_mode="json")
    events = [
        e
        async for e in assistant.stream(
            f"what is {ACCORD}?", conversation_id="test:json-stream", asker=asker("gu")
        )
    ]
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert tokens == "A 2003 Honda Accord EX-V6."
    assert [e.name for e in events if isinstance(e, ToolCallEvent)] == ["decode_vin"]


async def test_json_reply_is_the_answer_when_the_model_chooses_no_tool_in_json_tool_mode(
    standin, make_assistant
) -> None:
    standin.plan(text(json.dumps({"tool": "none", "reply": "Hi! Send me a VIN to decode."})))
    assistant = make_assistant(llm_tool_mode="json")
    answer = await assistant.ask("Is AWD good in snow?", conversation_id="test:json-none", asker=asker("ha"))
    assert answer.answer == "Hi! Send me a VIN to decode."
    assert answer.tool_calls == []
    assert answer.planner == f"llm:{MODEL}"


# ---------------------------------------------------------------- a failing model


def fallback_checks(answer: Any) -> None:
    assert answer.planner.startswith("offline")
    assert answer.answer.endswith(t("llm_unavailable_note", "en"))
    assert [c.name for c in answer.tool_calls] == ["decode_vin"]  # the offline planner decoded it
    assert [s.record_id for s in answer.sources] == [ACCORD]
    assert "Accord" in answer.answer


@pytest.mark.parametrize(
    ("fault", "requests"),
    [
        ("error", 2),  # a 500 is retried once (max_retries=1), then given up
        ("garbage", 1),  # a 200 whose body is an HTML page
        ("cut", 1),  # the stream drops mid-answer
    ],
)
async def test_offline_planner_answers_with_a_note_when_the_model_response_fails(
    standin, make_assistant, fault, requests
) -> None:
    standin.fail(fault)
    assistant = make_assistant()
    answer = await assistant.ask(
        f"what is {ACCORD}?", conversation_id=f"test:fail-{fault}", asker=asker(fault)
    )
    fallback_checks(answer)
    assert len(standin.received) == requests


async def test_offline_planner_answers_with_a_note_when_the_model_is_slower_than_the_timeout(
    standin, make_assistant
) -> None:
    standin.fail("slow")
    assistant = make_assistant(llm_timeout_s=SHORT_TIMEOUT_S)
    answer = await assistant.ask(f"what is {ACCORD}?", conversation_id="test:slow", asker=asker("slow"))
    fallback_checks(answer)
    assert len(standin.received) == 2  # the timeout is retried once


async def test_offline_planner_answers_with_a_note_when_the_stream_stalls_behind_keep_alives(
    standin, make_assistant
) -> None:
    standin.fail("stall")
    assistant = make_assistant(llm_timeout_s=SHORT_TIMEOUT_S)
    answer = await assistant.ask(f"what is {ACCORD}?", conversation_id="test:stall", asker=asker("stall"))
    fallback_checks(answer)
    # Given up on the stall by our own timeout: the stand-in had not cut the stream yet.
    assert standin.stalls_cut == 0


async def test_offline_planner_answers_when_the_model_fails_after_its_tool_call(
    standin, make_assistant
) -> None:
    standin.plan(tool_call("decode_vin", {"vin": ACCORD}), failure("garbage"))
    assistant = make_assistant()
    answer = await assistant.ask(f"what is {ACCORD}?", conversation_id="test:fail-late", asker=asker("ivy"))
    fallback_checks(answer)


@pytest.mark.parametrize(
    "reply",
    [
        failure("garbage"),
        failure("error"),
        # The JSON was cut at the token limit: the structured-output helper refuses it.
        Reply(content='{"tool": "decode_vin", "argum', finish_reason="length"),
    ],
    ids=["garbage", "error", "length"],
)
async def test_offline_planner_answers_with_a_note_when_the_model_fails_in_json_tool_mode(
    standin, make_assistant, reply
) -> None:
    standin.plan(reply, reply)
    assistant = make_assistant(llm_tool_mode="json")
    answer = await assistant.ask(f"what is {ACCORD}?", conversation_id="test:json-fail", asker=asker("jo"))
    fallback_checks(answer)
