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
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import BaseTool
from langgraph.errors import GraphRecursionError
from langgraph.prebuilt.tool_node import INVALID_TOOL_NAME_ERROR_TEMPLATE, ToolInvocationError
from pydantic import ValidationError

from agent.context import RunContext
from agent.graph import LLM_FAILURES, OFFLINE
from agent.planner_offline import OfflinePlanner, token_pieces
from tools.errors import ProviderUnavailable

StreamPart = tuple[str, Any]
"""One part as `CompiledStateGraph.astream` yields it with a list of stream modes."""

Router = Callable[[Sequence[AnyMessage]], bool]
"""Tell whether the offline planner takes a turn (the conversation ends with the user's message)."""

_AGENT_METADATA = {"langgraph_node": "agent"}


class OfflineTurns:
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
        self._planner = planner
        self._tools = {t.name: t for t in tools}
        self._system_prompt = system_prompt
        self._route = route
        self._fallback_only = fallback_only
        # The tools whose function asks for the runtime, as ToolNode injects it (by parameter).
        self._wants_runtime = {
            t.name for t in tools if "runtime" in _parameters(getattr(t, "coroutine", None) or t._run)
        }

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
        system = SystemMessage(self._system_prompt, additional_kwargs={"language": context.language})
        state: list[AnyMessage] = list(messages)
        steps = 0
        while True:
            if steps >= recursion_limit:
                raise GraphRecursionError(f"Recursion limit of {recursion_limit} reached")
            steps += 1
            try:
                response = self._planner.respond([system, *state])
            except LLM_FAILURES as e:
                raise ProviderUnavailable("llm", "The language model did not answer properly.") from e
            if tokens and not response.tool_calls and isinstance(response.content, str):
                for piece in token_pieces(response.content):
                    yield "messages", (AIMessageChunk(content=piece), _AGENT_METADATA)
            state.append(response)
            yield "updates", {"agent": {"messages": [response], "planner": OFFLINE}}
            if not response.tool_calls:
                return
            if steps >= recursion_limit:
                raise GraphRecursionError(f"Recursion limit of {recursion_limit} reached")
            steps += 1
            results = await self._call_tools(response, state, context)
            state.extend(results)
            yield "updates", {"tools": {"messages": results}}

    async def _call_tools(
        self, response: AIMessage, state: list[AnyMessage], context: RunContext
    ) -> list[AnyMessage]:
        graph_state = {"messages": list(state), "planner": OFFLINE}
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
        try:
            result = await tool.ainvoke({**call, "args": args, "type": "tool_call"})
        except ValidationError as e:
            # As ToolNode reports it: only the errors of arguments the planner chose.
            errors = [err for err in e.errors() if err["loc"] and err["loc"][0] != "runtime"]
            message = ToolInvocationError(call["name"], e, call["args"], errors).message
            return ToolMessage(message, name=call["name"], tool_call_id=call["id"], status="error")
        if not isinstance(result, ToolMessage):  # pragma: no cover - every bound tool answers a call so
            raise TypeError(f"tool {call['name']} returned {type(result).__name__}, not a ToolMessage")
        return result


def _parameters(function: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(function).parameters)


def _ignore(_: Any) -> None:
    """The stream writer of a direct run: nothing streams custom output."""
