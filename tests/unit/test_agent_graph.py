"""The graph's wiring with a scripted chat model: tools run, identity comes from context."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import offline_toolkit
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.errors import GraphRecursionError

from agent.context import RunContext
from agent.graph import build_graph
from tools.errors import ProviderUnavailable

ACCORD = "1HGCM82633A004352"
CONTEXT = RunContext(user_id=1, conversation_id="api:test", channel="api")


class ScriptedModel(GenericFakeChatModel):
    """Answers with the scripted messages in order; tools are known by name."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self


class FailingModel(ScriptedModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        raise json.JSONDecodeError("garbage", "<html>", 0)


def call(name: str, args: dict[str, Any], call_id: str = "call_1") -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@pytest.fixture
def tools() -> list:
    return offline_toolkit()


async def run(model: ScriptedModel, tools: list, text: str, **kw: Any) -> list:
    graph = build_graph(model, tools, system_prompt="test", planner_name="llm:test")
    result = await graph.ainvoke({"messages": [HumanMessage(text)], "planner": None}, context=CONTEXT, **kw)
    return result["messages"]


async def test_model_answer_follows_the_tool_result_when_the_model_calls_decode_vin(tools) -> None:
    model = ScriptedModel(
        messages=iter([call("decode_vin", {"vin": ACCORD}), AIMessage("A 2003 Honda Accord.")])
    )
    messages = await run(model, tools, f"what car is {ACCORD.lower()}?")
    tool_message = next(m for m in messages if isinstance(m, ToolMessage))
    assert json.loads(tool_message.content)["title"] == "2003 HONDA Accord EX-V6"
    assert tool_message.artifact["ok"] is True
    assert tool_message.artifact["sources"][0]["record_id"] == ACCORD
    assert messages[-1].content == "A 2003 Honda Accord."


async def test_invented_vin_is_refused_when_the_user_never_wrote_it(tools) -> None:
    model = ScriptedModel(
        messages=iter([call("decode_vin", {"vin": "1J2345678901234567"}), AIMessage("Please send the VIN.")])
    )
    messages = await run(model, tools, "what tools do you have?")
    result = json.loads(next(m for m in messages if isinstance(m, ToolMessage)).content)
    assert result["error"] == "vin_not_in_conversation"


async def test_invalid_vin_comes_back_as_json_the_model_can_act_on_when_it_has_o_for_zero(tools) -> None:
    model = ScriptedModel(
        messages=iter([call("decode_vin", {"vin": "1HGCM82633AOO4352"}), AIMessage("Typo?")])
    )
    messages = await run(model, tools, "decode 1HGCM82633AOO4352")
    result = json.loads(next(m for m in messages if isinstance(m, ToolMessage)).content)
    assert result["error"] == "invalid_vin"
    assert result["suggestions"] == [ACCORD]


async def test_step_budget_stops_the_loop_when_the_model_keeps_calling_tools(tools) -> None:
    endless = (call("decode_vin", {"vin": ACCORD}, f"call_{i}") for i in range(100))
    with pytest.raises(GraphRecursionError):
        await run(ScriptedModel(messages=endless), tools, f"decode {ACCORD}", config={"recursion_limit": 6})


async def test_malformed_model_output_becomes_provider_unavailable_when_the_model_fails(tools) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        await run(FailingModel(messages=iter([])), tools, "hello")
    assert info.value.provider == "llm"
