"""The offline planner's direct turns (`agent.direct`) against the compiled graph they stand in for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fakes import offline_toolkit
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langgraph.errors import GraphRecursionError
from pydantic import Field

from agent.context import RunContext
from agent.direct import OfflineTurns
from agent.graph import OFFLINE, build_graph
from agent.planner_offline import OfflinePlanner
from tools.errors import ProviderUnavailable

ACCORD = "1HGCM82633A004352"
MUSTANG = "1FA6P0HD6E5365568"
CONTEXT = RunContext(user_id=1, conversation_id="api:direct", channel="api", language="es")


class ScriptedPlanner(OfflinePlanner):
    """An offline planner that answers with scripted messages, then plans as usual."""

    script: list[AIMessage] = Field(default_factory=list)

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        return self.script.pop(0) if self.script else super().respond(messages)


class BrokenPlanner(OfflinePlanner):
    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        raise KeyError("a bug in a rule")


def call(name: str, args: dict[str, Any], call_id: str = "call_1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@pytest.fixture(scope="module")
def tools() -> list:
    return offline_toolkit()


async def graph_parts(planner: OfflinePlanner, tools: list, messages: list[AnyMessage], **kw: Any) -> list:
    graph = build_graph(planner, tools, system_prompt="test", planner_name=OFFLINE)
    parts = []
    async for part in graph.astream(
        {"messages": messages, "planner": None},
        config={"recursion_limit": kw.get("recursion_limit", 12)},
        context=CONTEXT,
        stream_mode=["messages", "updates"] if kw.get("tokens") else ["updates"],
    ):
        parts.append(part)
    return parts


async def direct_parts(planner: OfflinePlanner, tools: list, messages: list[AnyMessage], **kw: Any) -> list:
    turns = OfflineTurns(planner, tools, system_prompt="test")
    return [
        part
        async for part in turns.astream(
            messages,
            context=CONTEXT,
            recursion_limit=kw.get("recursion_limit", 12),
            tokens=kw.get("tokens", False),
        )
    ]


def updates(parts: list) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The nodes' updates, each message reduced to what the assistant reads of it."""
    seen = []
    for mode, chunk in parts:
        if mode != "updates":
            continue
        for node, update in chunk.items():
            rows = []
            for m in update.get("messages", []):
                if isinstance(m, AIMessage):
                    rows.append(("ai", m.content, m.tool_calls, m.response_metadata.get("language")))
                elif isinstance(m, ToolMessage):
                    rows.append(("tool", m.content, m.tool_call_id, m.name, m.status, _artifact(m.artifact)))
            seen.append((node, update.get("planner"), rows))
    return seen


def _artifact(artifact: Any) -> Any:
    if isinstance(artifact, dict):
        return {k: v for k, v in artifact.items() if k != "duration_ms"}
    return artifact


def tokens(parts: list) -> list[str]:
    """The token texts, as `GraphAssistant` picks them: the agent node's message chunks."""
    return [
        chunk[0].content
        for mode, chunk in parts
        if mode == "messages"
        and isinstance(chunk[0], AIMessageChunk)
        and chunk[1].get("langgraph_node") == "agent"
        and chunk[0].content
    ]


CONVERSATIONS = [
    [HumanMessage(f"what car is {ACCORD.lower()}?")],
    [HumanMessage("hola")],
    [HumanMessage(f"decode {ACCORD} and {MUSTANG}")],
    [HumanMessage("what's the weather tomorrow?")],
    [HumanMessage("décode 1HGCM82633AOO4352")],
]


@pytest.mark.parametrize("messages", CONVERSATIONS, ids=lambda m: m[0].content[:20])
async def test_direct_turn_yields_the_graphs_updates_when_the_offline_planner_runs_it(
    tools, messages
) -> None:
    planner = OfflinePlanner()
    assert updates(await direct_parts(planner, tools, messages)) == updates(
        await graph_parts(planner, tools, messages)
    )


async def test_follow_up_is_answered_from_the_earlier_decode_when_run_directly(tools) -> None:
    planner = OfflinePlanner()
    first = [HumanMessage(f"decode {ACCORD}")]
    earlier = [
        m
        for _, chunk in await direct_parts(planner, tools, first)
        for u in chunk.values()
        for m in u["messages"]
    ]
    follow_up = [*first, *earlier, HumanMessage("and its engine?")]
    direct = updates(await direct_parts(planner, tools, follow_up))
    assert direct == updates(await graph_parts(planner, tools, follow_up))
    assert "V6" in direct[-1][2][0][1]


async def test_direct_turn_streams_the_graphs_tokens_when_tokens_are_asked_for(tools) -> None:
    planner = OfflinePlanner()
    messages = [HumanMessage(f"what car is {ACCORD}?")]
    direct = await direct_parts(planner, tools, messages, tokens=True)
    assert tokens(direct) == tokens(await graph_parts(planner, tools, messages, tokens=True))
    final = updates(direct)[-1][2][0][1]
    assert "".join(tokens(direct)) == final
    assert len(tokens(direct)) > 5


async def test_step_budget_raises_as_the_graph_does_when_the_planner_keeps_calling_tools(tools) -> None:
    messages = [HumanMessage(f"decode {ACCORD}")]
    for limit in (1, 2, 5):
        endless = [call("decode_vin", {"vin": ACCORD}, f"call_{i}") for i in range(20)]
        direct_nodes: list[str] = []
        graph_nodes: list[str] = []
        with pytest.raises(GraphRecursionError):
            await _direct_nodes(ScriptedPlanner(script=list(endless)), tools, messages, limit, direct_nodes)
        with pytest.raises(GraphRecursionError):
            await _graph_nodes(ScriptedPlanner(script=list(endless)), tools, messages, limit, graph_nodes)
        assert direct_nodes == graph_nodes
        assert len(direct_nodes) == limit


async def _direct_nodes(planner: OfflinePlanner, tools: list, messages: list, limit: int, into: list) -> None:
    turns = OfflineTurns(planner, tools, system_prompt="t")
    async for _, chunk in turns.astream(messages, context=CONTEXT, recursion_limit=limit, tokens=False):
        into += list(chunk)


async def _graph_nodes(planner: OfflinePlanner, tools: list, messages: list, limit: int, into: list) -> None:
    graph = build_graph(planner, tools, system_prompt="t", planner_name=OFFLINE)
    async for _, chunk in graph.astream(
        {"messages": messages, "planner": None},
        config={"recursion_limit": limit},
        context=CONTEXT,
        stream_mode=["updates"],
    ):
        into += list(chunk)


async def test_bad_arguments_come_back_as_toolnodes_error_message_when_run_directly(tools) -> None:
    messages = [HumanMessage(f"decode {ACCORD}")]
    bad = [call("decode_vin", {"model_year": "soon"}), AIMessage("Which VIN?")]
    unknown = [call("delete_everything", {}), AIMessage("No.")]
    for script in (bad, unknown):
        direct = updates(await direct_parts(ScriptedPlanner(script=list(script)), tools, messages))
        graph = updates(await graph_parts(ScriptedPlanner(script=list(script)), tools, messages))
        assert direct == graph
        assert direct[1][2][0][4] == "error"


async def test_planner_failure_becomes_provider_unavailable_as_in_the_graph(tools) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await direct_parts(BrokenPlanner(), tools, [HumanMessage("hello")])
    assert info.value.provider == "llm"


async def test_routed_turns_only_are_taken_when_a_router_is_given(tools) -> None:
    planner = OfflinePlanner()
    every = OfflineTurns(planner, tools, system_prompt="t")
    routed = OfflineTurns(planner, tools, system_prompt="t", route=lambda m: "VIN" in str(m[-1].content))
    fallback = OfflineTurns(planner, tools, system_prompt="t", fallback_only=True)
    question = [HumanMessage("is this VIN ok?")]
    other = [HumanMessage("tell me a story")]
    assert await every.takes(other)
    assert await routed.takes(question)
    assert not await routed.takes(other)
    assert not await fallback.takes(question)


async def test_toolkit_tools_answer_as_their_ainvoke_does_when_called_plainly(tools) -> None:
    from langchain.tools import ToolRuntime

    from agent.direct import _PlainTool

    plain = {t.name: _PlainTool.of(t) for t in tools}
    assert all(p is not None for p in plain.values())  # every toolkit tool skips LangChain's machinery
    state = {"messages": [HumanMessage(f"decode {ACCORD}, or 1HGCM82633AOO4352")], "planner": OFFLINE}
    for args in ({"vin": ACCORD}, {"vin": ACCORD, "model_year": 2003}, {"vin": "1HGCM82633AOO4352"}):
        answers = []
        for how in ("plain", "ainvoke"):
            runtime = ToolRuntime(
                state=state,
                context=CONTEXT,
                config={},
                stream_writer=lambda _: None,
                tool_call_id="call_1",
                store=None,
                tools=tools,
            )
            given = {**args, "runtime": runtime}
            decode = next(t for t in tools if t.name == "decode_vin")
            if how == "plain":
                message = await plain["decode_vin"].call(given, "call_1")  # type: ignore[union-attr]
            else:
                message = await decode.ainvoke(
                    {"name": "decode_vin", "args": given, "id": "call_1", "type": "tool_call"}
                )
            answers.append(
                (
                    message.content,
                    _artifact(message.artifact),
                    message.name,
                    message.tool_call_id,
                    message.status,
                )
            )
        assert answers[0] == answers[1]
