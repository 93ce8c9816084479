"""The agent graph: a model decides, tools act, until the model answers.

    START -> agent --(tool calls)--> tools -> agent --(no tool calls)--> END

`build_graph` compiles a new graph from injected parts; nothing is compiled at import.
With `offline` and `route` given, the offline planner handles the turns `route`
recognises with certainty (a VIN, a greeting, "what did I look up"), so those turns
cost no LLM round trip; the LLM plans everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, SystemMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.runtime import Runtime

from agent.context import RunContext
from tools.errors import ProviderUnavailable

OFFLINE = "offline"

# What a failing or malformed model response raises inside the OpenAI client and
# LangChain's parsing of it. These become ProviderUnavailable("llm"); anything else is a bug.
# OpenAIError, not just APIError: the structured-output helpers used in JSON tool mode raise
# LengthFinishReasonError / ContentFilterFinishReasonError, which are not APIErrors.
# ValueError (JSONDecodeError included): LangChain raises it for a 200 whose body is not a
# completion ("Unexpected response type") or a stream that carried no chunk ("No generations").
# TimeoutError: langchain-openai's StreamChunkTimeoutError, a stream stalled between chunks.
LLM_FAILURES: tuple[type[BaseException], ...] = (
    openai.OpenAIError,
    ValueError,
    KeyError,
    TypeError,
    TimeoutError,
)


class AgentState(TypedDict):
    """The graph's state for one turn: the messages, and which planner plans this turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    planner: str | None


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    system_prompt: str,
    planner_name: str,
    offline: BaseChatModel | None = None,
    route: Callable[[Sequence[AnyMessage]], bool] | None = None,
    prepare_route: Callable[[], Awaitable[object]] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent graph.

    Args:
        model: The planner of the turns `route` does not take.
        tools: The bound tools.
        system_prompt: The system prompt (a versioned constant of `agent.prompts`).
        planner_name: The name answers give for `model` (`offline`, `llm:<model>`).
        offline: The offline planner, for the turns `route` recognises with certainty.
        route: Tell whether the offline planner takes the turn.
        prepare_route: Awaited before `route` on each turn (loads what routing reads, such as the
            makes and models of the vehicle data; cached by its owner).
    """
    bound = model.bind_tools(list(tools))
    offline_bound = offline.bind_tools(list(tools)) if offline is not None else None

    async def agent(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        messages = state["messages"]
        planner = state.get("planner")
        if planner is None:
            if prepare_route is not None and route is not None:
                await prepare_route()
            use_offline = offline_bound is not None and route is not None and route(messages)
            planner = OFFLINE if use_offline else planner_name
        chat = offline_bound if planner == OFFLINE and offline_bound is not None else bound
        context = runtime.context
        system = SystemMessage(
            system_prompt, additional_kwargs={"language": context.language if context else None}
        )
        try:
            response = await chat.ainvoke([system, *messages])
        except LLM_FAILURES as e:
            raise ProviderUnavailable("llm", "The language model did not answer properly.") from e
        return {"messages": [response], "planner": planner}

    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()
