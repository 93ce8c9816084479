"""JSON tool mode: tool calls written as JSON text become real tool calls.

Local models such as Qwen2.5-Coder behind llama.cpp write `{"tool": ..., "arguments": ...}`
(under a JSON schema) or a fenced `{"name", "arguments"}` block instead of OpenAI
`tool_calls`; `parse_json_tool_call` and `JsonToolCallingModel` turn that into tool calls.
"""

from __future__ import annotations

import json
from typing import Any

from fakes import offline_toolkit
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from agent.llm import JsonToolCallingModel, parse_json_tool_call

ACCORD = "1HGCM82633A004352"
USAGE = {"input_tokens": 120, "output_tokens": 14, "total_tokens": 134}
DECODE_ACCORD = json.dumps({"tool": "decode_vin", "arguments": {"vin": ACCORD}})


class RecordingChatModel(GenericFakeChatModel):
    """Answers with the scripted messages in order and records each call's messages and kwargs."""

    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.calls.append((list(messages), dict(kwargs)))
        return super()._generate(messages, *args, **kwargs)


def toolkit() -> list[BaseTool]:
    return offline_toolkit()


def ai(content: str) -> AIMessage:
    return AIMessage(content, usage_metadata=USAGE, response_metadata={"model_name": "qwen2.5-coder"})


# ---------------------------------------------------------------- parse_json_tool_call


def test_tool_object_becomes_a_tool_call_when_the_content_is_tool_and_arguments() -> None:
    message = parse_json_tool_call(ai(DECODE_ACCORD))
    assert message.content == ""
    [call] = message.tool_calls
    assert (call["name"], call["args"], call["type"]) == ("decode_vin", {"vin": ACCORD}, "tool_call")
    assert str(call["id"]).startswith("call_")


def test_usage_and_metadata_are_kept_when_a_tool_call_is_parsed() -> None:
    message = parse_json_tool_call(ai(json.dumps({"tool": "get_vin_history", "arguments": {"limit": 3}})))
    assert message.usage_metadata == USAGE
    assert message.response_metadata["model_name"] == "qwen2.5-coder"


def test_each_parsed_call_gets_its_own_id_when_the_same_call_is_parsed_twice() -> None:
    first, second = parse_json_tool_call(ai(DECODE_ACCORD)), parse_json_tool_call(ai(DECODE_ACCORD))
    assert first.tool_calls[0]["id"] != second.tool_calls[0]["id"]


def test_fenced_name_arguments_block_becomes_a_tool_call_when_the_model_explains_first() -> None:
    content = (
        "To find out which car this is, I will decode the VIN.\n"
        "```json\n"
        f'{{"name": "decode_vin", "arguments": {{"vin": "{ACCORD}"}}}}\n'
        "```\n"
    )
    message = parse_json_tool_call(ai(content))
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("decode_vin", {"vin": ACCORD})]
    assert message.content == ""


def test_unlabelled_fence_is_parsed_when_the_block_has_no_language_tag() -> None:
    content = f'```\n{{"name": "decode_vins", "arguments": {{"vins": ["{ACCORD}"]}}}}\n```'
    message = parse_json_tool_call(ai(content))
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("decode_vins", {"vins": [ACCORD]})]


def test_arguments_are_decoded_when_the_model_writes_them_as_a_json_string() -> None:
    content = json.dumps({"name": "decode_vin", "arguments": json.dumps({"vin": ACCORD})})
    message = parse_json_tool_call(ai(content))
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("decode_vin", {"vin": ACCORD})]


def test_reply_becomes_the_answer_when_the_tool_is_none() -> None:
    message = parse_json_tool_call(ai(json.dumps({"tool": "none", "reply": "Hello! Send me a VIN."})))
    assert message.content == "Hello! Send me a VIN."
    assert message.tool_calls == []
    assert message.usage_metadata == USAGE


def test_prose_is_kept_as_the_answer_when_the_content_is_not_json() -> None:
    prose = "I can decode VINs. Which vehicle do you mean? {not json}"
    message = parse_json_tool_call(ai(prose))
    assert message.content == prose
    assert message.tool_calls == []


def test_json_that_names_no_tool_is_kept_as_text_when_it_is_not_a_tool_call() -> None:
    for content in (
        '["decode_vin"]',
        '{"tool": 42, "arguments": {}}',
        '{"name": "decode_vin", "arguments": 7}',
    ):
        message = parse_json_tool_call(ai(content))
        assert (message.content, message.tool_calls) == (content, [])


# ---------------------------------------------------------------- JsonToolCallingModel


def test_schema_has_one_branch_per_tool_and_a_reply_branch_when_tools_are_bound() -> None:
    tools = toolkit()
    bound = JsonToolCallingModel(inner=RecordingChatModel(messages=iter([]))).bind_tools(tools)
    assert isinstance(bound, JsonToolCallingModel)
    schema = bound._schema()
    assert set(schema) == {"oneOf"}
    branches = schema["oneOf"]
    assert [b["properties"]["tool"] for b in branches] == [
        {"const": "decode_vin"},
        {"const": "decode_vins"},
        {"const": "get_vin_history"},
        {"const": "start_bulk_decode"},
        {"const": "get_job_status"},
        {"const": "search_specs"},
        {"const": "get_specs"},
        {"const": "compare_vehicles"},
        {"const": "find_recalls"},
        {"const": "none"},
    ]
    for branch, spec in zip(branches, tools, strict=False):
        assert branch["type"] == "object"
        assert branch["required"] == ["tool", "arguments"]
        assert branch["additionalProperties"] is False
        assert branch["properties"]["arguments"] == convert_to_openai_tool(spec)["function"]["parameters"]
    assert branches[0]["properties"]["arguments"]["required"] == ["vin"]
    reply = branches[-1]
    assert reply["required"] == ["tool", "reply"]
    assert reply["properties"]["reply"]["type"] == "string"
    assert reply["additionalProperties"] is False


def test_bind_tools_returns_a_bound_copy_when_the_original_has_no_tools() -> None:
    model = JsonToolCallingModel(inner=RecordingChatModel(messages=iter([])))
    bound = model.bind_tools(toolkit())
    assert model.tool_schemas == []
    assert isinstance(bound, JsonToolCallingModel)
    assert [s["name"] for s in bound.tool_schemas] == [
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


async def test_tool_choice_turn_asks_for_the_schema_and_returns_a_tool_call_when_tools_are_bound() -> None:
    inner = RecordingChatModel(messages=iter([ai(DECODE_ACCORD)]))
    model = JsonToolCallingModel(inner=inner).bind_tools(toolkit())
    response = await model.ainvoke([SystemMessage("You are vinbot."), HumanMessage(f"what car is {ACCORD}?")])
    assert isinstance(response, AIMessage)
    assert [(c["name"], c["args"]) for c in response.tool_calls] == [("decode_vin", {"vin": ACCORD})]
    [(sent, kwargs)] = inner.calls
    fmt = kwargs["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "turn"
    assert len(fmt["json_schema"]["schema"]["oneOf"]) == 10
    # One system message, first, holding the prompt and then the JSON instructions.
    assert [type(m) for m in sent] == [SystemMessage, HumanMessage]
    assert isinstance(sent[0].content, str)
    assert sent[0].content.startswith("You are vinbot.")
    assert '{"tool": "none", "reply": "..."}' in sent[0].content
    assert "- decode_vin: Decode one VIN" in sent[0].content


async def test_instructions_come_first_when_there_is_no_system_message() -> None:
    inner = RecordingChatModel(messages=iter([ai(json.dumps({"tool": "none", "reply": "Hi!"}))]))
    model = JsonToolCallingModel(inner=inner).bind_tools(toolkit())
    response = await model.ainvoke([HumanMessage("hello")])
    assert response.content == "Hi!"
    [(sent, _)] = inner.calls
    assert isinstance(sent[0], SystemMessage)
    assert str(sent[0].content).startswith("Answer with one JSON object only.")


async def test_answer_turn_drops_the_schema_and_keeps_prose_when_the_last_message_is_a_tool_result() -> None:
    inner = RecordingChatModel(messages=iter([ai('It is a 2003 Honda Accord EX-V6 {"vin": "yes"}.')]))
    model = JsonToolCallingModel(inner=inner).bind_tools(toolkit())
    call = {"name": "decode_vin", "args": {"vin": ACCORD}, "id": "call_1", "type": "tool_call"}
    history = [
        SystemMessage("You are vinbot."),
        HumanMessage(f"what car is {ACCORD}?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"title": "2003 HONDA Accord EX-V6"}', tool_call_id="call_1"),
    ]
    response = await model.ainvoke(history)
    assert response.content == 'It is a 2003 Honda Accord EX-V6 {"vin": "yes"}.'
    assert response.tool_calls == []
    [(sent, kwargs)] = inner.calls
    assert "response_format" not in kwargs
    assert sent == history


async def test_parsed_tool_call_streams_as_one_chunk_when_the_model_is_streamed() -> None:
    inner = RecordingChatModel(messages=iter([ai(DECODE_ACCORD)]))
    model = JsonToolCallingModel(inner=inner).bind_tools(toolkit())
    chunks = [c async for c in model.astream([HumanMessage(f"decode {ACCORD}")])]
    # The whole call arrives in the first chunk (langchain-core may add an empty closing one).
    assert [(c["name"], c["args"]) for c in chunks[0].tool_calls] == [("decode_vin", {"vin": ACCORD})]
    assert chunks[0].usage_metadata == USAGE
    assert all(not c.content and not c.tool_call_chunks for c in chunks[1:])


async def test_instructions_list_a_tool_without_description_when_its_docstring_is_empty() -> None:
    @tool("ping")
    def ping() -> str:
        """Ping."""
        return "pong"

    ping.description = ""
    inner = RecordingChatModel(messages=iter([ai(json.dumps({"tool": "ping", "arguments": {}}))]))
    model = JsonToolCallingModel(inner=inner).bind_tools([ping])
    response = await model.ainvoke([HumanMessage("ping")])
    assert [c["name"] for c in response.tool_calls] == ["ping"]
    assert "- ping" in str(inner.calls[0][0][0].content)
