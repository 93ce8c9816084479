"""The offline planner's turns, run without the graph: plan, call the tools, answer.

A turn the offline planner takes (every turn when no LLM is configured; with an LLM, the
turns it recognises with certainty, and the fallback when the LLM fails) needs none of
the graph's machinery: the planner answers in microseconds and calls at most a few tools.
`OfflineTurns.astream` runs the same loop as the compiled graph of `agent.graph`
(START -> agent -> tools -> agent ... -> END) and yields the same `(mode, chunk)` parts
as `CompiledStateGraph.astream`, so `GraphAssistant` reads both alike:

- the agent step gets the same messages (the system prompt carrying the run's language,
  then the conversation) and returns the same message as the planner's `ainvoke`;
- the tools are the same bound toolkit tools, called as LangGraph's `ToolNode` calls them
  (`ToolRuntime` injected with the state and the run context, arguments validated by their
  schemas, a validation error becoming an error `ToolMessage`, anything else propagating);
- the step budget is LangGraph's `recursion_limit`: running out raises `GraphRecursionError`.

This cuts the server's CPU per offline turn several-fold (see bench/README.md, ask bench).

`ModelTurns` runs the LLM's turns the same way when no tokens are streamed (`Assistant.ask`:
the JSON `/ask`, the Telegram bot, the CLI): the agent step is the bound model's `ainvoke`
on the same messages, as the graph's agent node calls it, and the model is asked for the
same requests. Streamed turns (`Assistant.stream`, whose tokens come from LangGraph's
"messages" mode) still run through the graph.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.errors import GraphRecursionError
from langgraph.prebuilt.tool_node import INVALID_TOOL_NAME_ERROR_TEMPLATE, ToolInvocationError
from pydantic import BaseModel, ValidationError

from agent.context import RunContext
from agent.graph import LLM_FAILURES, OFFLINE
from agent.planner_offline import OfflinePlanner, token_pieces
from tools.errors import ProviderUnavailable

StreamPart = tuple[str, Any]
"""One part as `CompiledStateGraph.astream` yields it with a list of stream modes."""

Router = Callable[[Sequence[AnyMessage]], bool]
"""Tell whether the offline planner takes a turn (the conversation ends with the user's message)."""

_AGENT_METADATA = {"langgraph_node": "agent"}


Respond = Callable[[list[AnyMessage]], Awaitable[AIMessage]]
"""The agent step: the planner's answer to the system prompt and the conversation."""


class _DirectLoop:
    """The graph's loop (agent -> tools -> agent ... -> END) over the bound tools, without the graph."""

    def __init__(self, tools: Sequence[BaseTool], *, system_prompt: str) -> None:
        self._tools = {t.name: t for t in tools}
        self._system_prompt = system_prompt
        # The tools whose function asks for the runtime, as ToolNode injects it (by parameter).
        self._wants_runtime = {
            t.name for t in tools if "runtime" in _parameters(getattr(t, "coroutine", None) or t._run)
        }
        self._plain = {t.name: plain for t in tools if (plain := _PlainTool.of(t)) is not None}

    async def _loop(
        self,
        respond: Respond,
        messages: Sequence[AnyMessage],
        *,
        planner: str,
        context: RunContext,
        recursion_limit: int,
        tokens: bool,
    ) -> AsyncIterator[StreamPart]:
        system = SystemMessage(self._system_prompt, additional_kwargs={"language": context.language})
        state: list[AnyMessage] = list(messages)
        steps = 0
        while True:
            if steps >= recursion_limit:
                raise GraphRecursionError(f"Recursion limit of {recursion_limit} reached")
            steps += 1
            try:
                response = await respond([system, *state])
            except LLM_FAILURES as e:
                raise ProviderUnavailable("llm", "The language model did not answer properly.") from e
            if tokens and not response.tool_calls and isinstance(response.content, str):
                for piece in token_pieces(response.content):
                    yield "messages", (AIMessageChunk(content=piece), _AGENT_METADATA)
            state.append(response)
            yield "updates", {"agent": {"messages": [response], "planner": planner}}
            if not response.tool_calls:
                return
            if steps >= recursion_limit:
                raise GraphRecursionError(f"Recursion limit of {recursion_limit} reached")
            steps += 1
            results = await self._call_tools(response, state, context, planner)
            state.extend(results)
            yield "updates", {"tools": {"messages": results}}

    async def _call_tools(
        self, response: AIMessage, state: list[AnyMessage], context: RunContext, planner: str
    ) -> list[AnyMessage]:
        graph_state = {"messages": list(state), "planner": planner}
        calls = [self._call_tool(call, graph_state, context) for call in response.tool_calls]
        if len(calls) == 1:
            return [await calls[0]]
        return list(await asyncio.gather(*calls))

    async def _call_tool(self, call: ToolCall, state: dict[str, Any], context: RunContext) -> ToolMessage:
        tool = self._tools.get(call["name"])
        if tool is None:
            content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
                requested_tool=call["name"], available_tools=", ".join(self._tools)
            )
            return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")
        args = dict(call["args"])
        if tool.name in self._wants_runtime:
            args["runtime"] = ToolRuntime(
                state=state,
                context=context,
                config={},
                stream_writer=_ignore,
                tool_call_id=call["id"],
                store=None,
                tools=list(self._tools.values()),
            )
        plain = self._plain.get(tool.name)
        try:
            if plain is not None and call["id"] is not None:
                result = await plain.call(args, call["id"])
            else:
                result = await tool.ainvoke({**call, "args": args, "type": "tool_call"})
        except ValidationError as e:
            # As ToolNode reports it: only the errors of arguments the planner chose.
            errors = [err for err in e.errors() if err["loc"] and err["loc"][0] != "runtime"]
            message = ToolInvocationError(call["name"], e, call["args"], errors).message
            return ToolMessage(message, name=call["name"], tool_call_id=call["id"], status="error")
        if not isinstance(result, ToolMessage):  # pragma: no cover - every bound tool answers a call so
            raise TypeError(f"tool {call['name']} returned {type(result).__name__}, not a ToolMessage")
        return result


class OfflineTurns(_DirectLoop):
    """Run the offline planner's turns directly over the bound tools."""

    def __init__(
        self,
        planner: OfflinePlanner,
        tools: Sequence[BaseTool],
        *,
        system_prompt: str,
        route: Router | None = None,
        fallback_only: bool = False,
    ) -> None:
        """Bind the planner to the tools.

        Args:
            planner: The offline planner.
            tools: The toolkit's tools (the graph's `ToolNode` gets the same list).
            system_prompt: The system prompt the graph sends (the planner reads its language).
            route: Which turns the planner takes; None takes every turn (no LLM configured).
            fallback_only: Take no turn (the LLM plans them all, `planner_first` off); only
                answer when the LLM fails.
        """
        super().__init__(tools, system_prompt=system_prompt)
        self._planner = planner
        self._route = route
        self._fallback_only = fallback_only

    async def takes(self, messages: Sequence[AnyMessage]) -> bool:
        """Tell whether the offline planner takes this turn (loads its vocabulary first)."""
        if self._fallback_only:
            return False
        if self._route is None:
            return True
        await self._planner.load_vocabulary()
        return self._route(messages)

    async def astream(
        self,
        messages: Sequence[AnyMessage],
        *,
        context: RunContext,
        recursion_limit: int,
        tokens: bool,
    ) -> AsyncIterator[StreamPart]:
        """Run the turn; yield `("updates", {node: update})` and, with `tokens`, `("messages", ...)`.

        Raises:
            GraphRecursionError: The step budget ran out before the planner answered.
            ProviderUnavailable: The planner failed (as the graph's agent node reports it).
        """
        await self._planner.load_vocabulary()
        async for part in self._loop(
            self._respond,
            messages,
            planner=OFFLINE,
            context=context,
            recursion_limit=recursion_limit,
            tokens=tokens,
        ):
            yield part

    async def _respond(self, messages: list[AnyMessage]) -> AIMessage:
        return self._planner.respond(messages)


class ModelTurns(_DirectLoop):
    """Run the LLM's turns directly over the bound tools (turns whose tokens are not streamed)."""

    def __init__(
        self, model: BaseChatModel, tools: Sequence[BaseTool], *, system_prompt: str, planner_name: str
    ) -> None:
        """Bind the model to the tools, as `agent.graph.build_graph` binds it.

        Args:
            model: The chat model (`agent.llm.build_chat_model`).
            tools: The toolkit's tools (the graph's `ToolNode` gets the same list).
            system_prompt: The system prompt the graph sends.
            planner_name: The name answers give for the model (`llm:<model>`).
        """
        super().__init__(tools, system_prompt=system_prompt)
        self._chat = model.bind_tools(list(tools))
        self._planner_name = planner_name

    async def astream(
        self, messages: Sequence[AnyMessage], *, context: RunContext, recursion_limit: int
    ) -> AsyncIterator[StreamPart]:
        """Run the turn; yield `("updates", {node: update})` as the graph's "updates" mode does.

        Raises:
            GraphRecursionError: The step budget ran out before the model answered.
            ProviderUnavailable: The model failed or answered malformed output.
        """
        async for part in self._loop(
            self._respond,
            messages,
            planner=self._planner_name,
            context=context,
            recursion_limit=recursion_limit,
            tokens=False,
        ):
            yield part

    async def _respond(self, messages: list[AnyMessage]) -> AIMessage:
        response = await self._chat.ainvoke(messages)
        if not isinstance(response, AIMessage):  # pragma: no cover - a chat model answers an AIMessage
            raise TypeError(f"the model answered {type(response).__name__}, not an AIMessage")
        return response


class _PlainTool:
    """A toolkit tool called as `BaseTool.ainvoke` calls it, without LangChain's per-call machinery.

    For a tool made by `@tool(args_schema=..., response_format="content_and_artifact")` over a
    coroutine (every toolkit tool): the arguments are validated by the schema and passed with
    the injected runtime, the coroutine answers `(content, artifact)`, and the `ToolMessage` is
    the one `ainvoke` returns; errors propagate as from `ainvoke`. What is skipped is
    LangChain's bookkeeping around it, ~0.6 ms of CPU per call (a callback manager, the
    coroutine's type hints read anew, a task to run it in): the tools report no callbacks.
    """

    def __init__(self, tool: StructuredTool, schema: type[BaseModel]) -> None:
        self._tool = tool
        self._schema = schema
        self._fields = tuple(schema.model_fields)
        self._wants_runtime = tool.coroutine is not None and "runtime" in _parameters(tool.coroutine)

    @classmethod
    def of(cls, tool: BaseTool) -> _PlainTool | None:
        """Return the plain form of `tool`, or None when it needs `ainvoke`'s machinery."""
        schema = tool.args_schema
        if (
            not isinstance(tool, StructuredTool)
            or tool.coroutine is None
            or tool.response_format != "content_and_artifact"
            or not isinstance(schema, type)
            or not issubclass(schema, BaseModel)
            or tool.callbacks is not None
            or tool.handle_validation_error
            or tool.handle_tool_error
            or {"args", "kwargs", "config", "callbacks", "run_manager"} & set(schema.model_fields)
            or not set(_parameters(tool.coroutine)) <= {*schema.model_fields, "runtime"}
        ):
            return None
        return cls(tool, schema)

    async def call(self, args: dict[str, Any], tool_call_id: str) -> ToolMessage:
        """Validate `args` (the injected `runtime` among them) and run the tool.

        Raises:
            ValidationError: The arguments do not fit the schema (as `ainvoke` raises it).
        """
        validated = self._schema.model_validate(args)
        kwargs = {name: getattr(validated, name) for name in self._fields}
        if self._wants_runtime:  # injected by the caller, as ToolNode injects it
            kwargs["runtime"] = args["runtime"]
        coroutine = self._tool.coroutine
        if coroutine is None:  # pragma: no cover - checked in `of`
            raise TypeError(f"tool {self._tool.name} has no coroutine")
        response = await coroutine(**kwargs)
        if not isinstance(response, tuple) or len(response) != 2:
            raise ValueError(  # as `BaseTool.arun` words it
                "Since response_format='content_and_artifact' a two-tuple of the message content and "
                f"raw tool output is expected. Instead, generated response is of type: {type(response)}."
            )
        content, artifact = response
        if not isinstance(content, str):  # pragma: no cover - every toolkit tool answers text (`ToolOutput`)
            raise TypeError(f"tool {self._tool.name} answered {type(content).__name__}, not text")
        return ToolMessage(
            content, artifact=artifact, tool_call_id=tool_call_id, name=self._tool.name, status="success"
        )


def _parameters(function: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(function).parameters)


def _ignore(_: Any) -> None:
    """The stream writer of a direct run: nothing streams custom output."""
