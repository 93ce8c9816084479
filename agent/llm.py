"""Chat models for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp).

Two ways to get tool calls:

* ``native``: the server returns OpenAI `tool_calls` (OpenAI, and servers whose model
  writes its template's tool-call format).
* ``json``: the server is asked for JSON matching a schema (`response_format` with a
  `json_schema`): one object naming a tool and its arguments, or a reply. Models such as
  Qwen2.5-Coder behind llama.cpp write tool calls as JSON text instead of `tool_calls`;
  this mode turns that text into real tool calls. For the answer turn (after tool
  results) the schema is dropped, so the model writes prose and cannot call again.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from langgraph.constants import TAG_NOSTREAM
from pydantic import Field, SecretStr

from tools.settings import Settings

_JSON_BLOCK = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
# The inner model's own tokens stay out of LangGraph's "messages" stream: this model streams
# what the user should see, so the tool-choice turn's raw JSON never shows and the answer
# turn's tokens arrive once, not twice.
_QUIET = RunnableConfig(tags=[TAG_NOSTREAM])
# OpenAI's structured-output parser fails with AttributeError when a 200's body is not a
# completion (an HTML error page): raised as ValueError, like LangChain's own parse errors.
_NOT_A_COMPLETION = "The model server's response was not a chat completion."


def build_chat_model(settings: Settings) -> BaseChatModel:
    """Return the configured LLM (native tool calls, or the JSON-schema mode)."""
    api_key = settings.openai_api_key or SecretStr("not-needed")  # local servers often need no key
    model = ChatOpenAI(
        model=settings.llm_model,
        api_key=api_key,
        base_url=settings.openai_base_url,
        temperature=settings.agent.llm_temperature,
        max_completion_tokens=settings.agent.llm_max_tokens,
        timeout=settings.agent.llm_timeout_s,
        # The HTTP read timeout restarts on every byte, keep-alive comments included, so a
        # stream that stalls behind keep-alives is bounded only by the gap between chunks.
        stream_chunk_timeout=settings.agent.llm_timeout_s,
        max_retries=1,
        # Not `streaming=True`: the model streams when a caller streams tokens (LangGraph's
        # "messages" mode attaches a streaming handler), and answers in one piece otherwise.
        stream_usage=True,
    )
    if settings.agent.llm_tool_mode == "json":
        return JsonToolCallingModel(inner=model)
    return model


class JsonToolCallingModel(BaseChatModel):
    """Get tool calls from a model that writes them as JSON text (see the module docstring)."""

    inner: BaseChatModel
    tool_schemas: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "vinbot-json-tool-calling"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Remember the tools; they become a JSON schema instead of `tools` in the request."""
        schemas = [convert_to_openai_tool(t)["function"] for t in tools]
        return self.model_copy(update={"tool_schemas": schemas})

    def _schema(self) -> dict[str, Any]:
        options: list[dict[str, Any]] = [
            {
                "type": "object",
                "properties": {
                    "tool": {"const": s["name"]},
                    "arguments": s.get("parameters", {"type": "object"}),
                },
                "required": ["tool", "arguments"],
                "additionalProperties": False,
            }
            for s in self.tool_schemas
        ]
        options.append(
            {
                "type": "object",
                "properties": {"tool": {"const": "none"}, "reply": {"type": "string", "maxLength": 2000}},
                "required": ["tool", "reply"],
                "additionalProperties": False,
            }
        )
        return {"oneOf": options}

    def _instructions(self) -> str:
        lines = [
            "Answer with one JSON object only.",
            'To call a tool: {"tool": "<name>", "arguments": {...}}.',
            'To reply to the user: {"tool": "none", "reply": "..."}.',
            "Tools:",
        ]
        for s in self.tool_schemas:
            summary = (s.get("description") or "").strip().splitlines()[:1]
            lines.append(f"- {s['name']}: {summary[0]}" if summary else f"- {s['name']}")
        return "\n".join(lines)

    def _with_instructions(self, messages: list[BaseMessage]) -> list[BaseMessage]:
        """Put the JSON instructions in the leading system message.

        Many local chat templates (llama.cpp's Jinja ones among them) accept only one
        system message, and only first, so the instructions join it rather than
        adding a second.
        """
        instructions = self._instructions()
        if messages and isinstance(messages[0], SystemMessage) and isinstance(messages[0].content, str):
            first = messages[0]
            merged = first.model_copy(update={"content": f"{first.content}\n\n{instructions}"})
            return [merged, *messages[1:]]
        return [SystemMessage(instructions), *messages]

    def _answer_turn(self, messages: list[BaseMessage]) -> bool:
        return bool(messages) and isinstance(messages[-1], ToolMessage)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._answer_turn(messages) or not self.tool_schemas:
            message = self.inner.invoke(messages, stop=stop, config=_QUIET)
            return ChatResult(generations=[ChatGeneration(message=message)])
        try:
            response = self.inner.invoke(
                self._with_instructions(messages), stop=stop, config=_QUIET, **self._format_kwargs()
            )
        except AttributeError as e:
            raise ValueError(_NOT_A_COMPLETION) from e
        return ChatResult(generations=[ChatGeneration(message=parse_json_tool_call(response))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._answer_turn(messages) or not self.tool_schemas:
            message = await self.inner.ainvoke(messages, stop=stop, config=_QUIET)
            return ChatResult(generations=[ChatGeneration(message=message)])
        try:
            response = await self.inner.ainvoke(
                self._with_instructions(messages), stop=stop, config=_QUIET, **self._format_kwargs()
            )
        except AttributeError as e:
            raise ValueError(_NOT_A_COMPLETION) from e
        return ChatResult(generations=[ChatGeneration(message=parse_json_tool_call(response))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        result = self._generate(messages, stop=stop)
        yield _as_chunk(result.generations[0].message)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self._answer_turn(messages) or not self.tool_schemas:
            async for chunk in self.inner.astream(messages, stop=stop, config=_QUIET):
                yield ChatGenerationChunk(message=chunk)
            return
        result = await self._agenerate(messages, stop=stop)
        yield _as_chunk(result.generations[0].message)

    def _format_kwargs(self) -> dict[str, Any]:
        # The tool-choice turn is parsed whole, so it is not streamed: this also keeps
        # OpenAI's streaming structured-output helper, which asserts on a stream that
        # carried no chunk (a 200 with an HTML body), out of the path.
        return {
            "stream": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "turn", "schema": self._schema(), "strict": False},
            },
        }


def parse_json_tool_call(message: BaseMessage) -> AIMessage:
    """Turn `{"tool": ..., "arguments": ...}` (or a fenced `{"name", "arguments"}` block) into a tool call.

    Text that is not such JSON is kept as the reply, so a model that ignores the
    schema still answers.
    """
    text = message.content if isinstance(message.content, str) else json.dumps(message.content)
    usage = getattr(message, "usage_metadata", None)
    metadata = getattr(message, "response_metadata", {})
    candidates = [text.strip(), *_JSON_BLOCK.findall(text)]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        name = data.get("tool") or data.get("name")
        if name == "none":
            return AIMessage(str(data.get("reply", "")), usage_metadata=usage, response_metadata=metadata)
        args = data.get("arguments", data.get("args", {}))
        if isinstance(args, str):  # some models write the arguments as a JSON string
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                continue
        if isinstance(name, str) and isinstance(args, dict):
            call = {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
            return AIMessage("", tool_calls=[call], usage_metadata=usage, response_metadata=metadata)
    return AIMessage(text, usage_metadata=usage, response_metadata=metadata)


def _as_chunk(message: BaseMessage) -> ChatGenerationChunk:
    ai = message if isinstance(message, AIMessage) else AIMessage(str(message.content))
    chunk = AIMessageChunk(
        content=ai.content,
        tool_call_chunks=[
            {
                "name": c["name"],
                "args": json.dumps(c["args"]),
                "id": c["id"],
                "index": i,
                "type": "tool_call_chunk",
            }
            for i, c in enumerate(ai.tool_calls)
        ],
        usage_metadata=ai.usage_metadata,
        response_metadata=ai.response_metadata,
    )
    return ChatGenerationChunk(message=chunk)
