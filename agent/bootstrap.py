"""Build the `Assistant` from settings and the tools' dependencies (composition roots only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from langchain_core.messages import AnyMessage

from agent import prompts
from agent.assistant import AssistantConfig, GraphAssistant
from agent.direct import ModelTurns, OfflineTurns
from agent.graph import OFFLINE, build_graph
from agent.llm import build_chat_model
from agent.planner_offline import OfflinePlanner, VocabularyLoader, route
from agent.tokens import encoding_for, ensure_tiktoken_offline
from agent.toolkit import make_toolkit
from tools.bootstrap import ToolDeps
from tools.domain.spec_query import Vocabulary
from tools.settings import Settings
from tools.specs import EPA


def confidently_routed(messages: Sequence[AnyMessage], planner: OfflinePlanner | None = None) -> bool:
    """Tell whether the offline planner recognises this turn with certainty.

    Args:
        messages: The conversation, ending with the user's message.
        planner: The offline planner whose loaded vocabulary (makes and models of the vehicle
            data) lets it recognise spec, comparison and recall questions too.
    """
    vocabulary = planner.current_vocabulary() if planner is not None else None
    decision = route(messages, vocabulary=vocabulary)
    return decision is not None and decision.confident


def vocabulary_loader(deps: ToolDeps) -> VocabularyLoader | None:
    """Return how the offline planner loads the makes and models of the vehicle data, if configured."""
    knowledge = deps.knowledge
    if knowledge is None:
        return None

    async def load() -> Vocabulary | None:
        return await knowledge.vocabulary.get(knowledge.sessions, EPA)

    return load


def _router(planner: OfflinePlanner) -> Callable[[Sequence[AnyMessage]], bool]:
    def routed(messages: Sequence[AnyMessage]) -> bool:
        return confidently_routed(messages, planner)

    return routed


def build_assistant(settings: Settings, deps: ToolDeps, *, direct: bool = True) -> GraphAssistant:
    """Return the assistant: the LLM when one is configured, else the offline planner.

    Args:
        settings: The process's settings.
        deps: The tools' dependencies.
        direct: Run the offline planner's turns, and the LLM's turns that stream no tokens,
            without the graph (`agent.direct`); False runs every turn through the compiled graph
            (the ask bench compares the two).
    """
    ensure_tiktoken_offline(settings.data_dir / "tiktoken")
    # Load the encoding (0.7–2 s) and its first use (~30 ms) while the process starts, not
    # on its first question.
    encoding_for(settings.llm_model).encode("warm up")
    tools = make_toolkit(deps)
    offline = OfflinePlanner(vocabulary_loader=vocabulary_loader(deps))
    offline_graph = build_graph(offline, tools, system_prompt=prompts.CURRENT, planner_name=OFFLINE)
    turns: OfflineTurns | None = None
    model_turns: ModelTurns | None = None
    if settings.llm_configured:
        planner_name = f"llm:{settings.llm_model}"
        planner_first = settings.agent.planner_first
        model = build_chat_model(settings)
        graph = build_graph(
            model,
            tools,
            system_prompt=prompts.CURRENT,
            planner_name=planner_name,
            offline=offline if planner_first else None,
            route=_router(offline) if planner_first else None,
            prepare_route=offline.load_vocabulary if planner_first else None,
        )
        fallback = offline_graph
        if direct:
            turns = OfflineTurns(
                offline,
                tools,
                system_prompt=prompts.CURRENT,
                route=_router(offline) if planner_first else None,
                fallback_only=not planner_first,
            )
            model_turns = ModelTurns(model, tools, system_prompt=prompts.CURRENT, planner_name=planner_name)
    else:
        planner_name, graph, fallback = OFFLINE, offline_graph, None
        if direct:
            turns = OfflineTurns(offline, tools, system_prompt=prompts.CURRENT)
    config = AssistantConfig(
        planner_name=planner_name,
        model_name=settings.llm_model,
        recursion_limit=settings.agent.recursion_limit,
        history_token_budget=settings.agent.history_token_budget,
        history_messages=settings.agent.history_messages,
        max_question_chars=settings.agent.max_question_chars,
        messages_per_minute=settings.limits.messages_per_minute,
    )
    return GraphAssistant(
        graph,
        sessions=deps.sessions,
        config=config,
        limiter=deps.limiter,
        fallback_graph=fallback,
        direct=turns,
        model_turns=model_turns,
    )
