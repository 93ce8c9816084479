"""The `Assistant` transports call: one question in, one `Answer` (or a stream of events) out."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol, cast

from langchain_core.messages import AIMessage, AIMessageChunk, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.graph.state import CompiledStateGraph
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent.answer import (
    LANGUAGES,
    AgentEvent,
    Answer,
    AnswerEvent,
    Attachment,
    Language,
    SourceRef,
    TokenEvent,
    ToolCallEvent,
    ToolCallRecord,
    ToolResultEvent,
    Usage,
)
from agent.context import RunContext
from agent.direct import ModelTurns, OfflineTurns, StreamPart
from agent.graph import OFFLINE
from agent.i18n import t
from agent.memory import to_langchain, to_stored, trim_to_budget
from agent.planner_offline import detect_language
from agent.tokens import estimate_cost
from tools.errors import InvalidInput, ProviderUnavailable
from tools.providers.base import Limit, LimitCheck, RateLimiter
from tools.settings import Tier
from tools.storage import conversation_repo
from tools.storage.conversation_repo import StoredMessage
from tools.storage.session import single_statements

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks, as the transport authenticated them (`tg:42`, `api:key:7`, `anon:<conversation>`)."""

    external_id: str
    channel: str
    username: str | None = None
    language: Language | None = None  # the user's own setting (Telegram language_code, /language)
    tier: Tier | None = None  # set by transports that know it (API keys); else the stored tier
    # The transport's own limits on this call (per address, daily messages): the assistant
    # spends them with its own in one step, so a call any of them refuses costs nothing.
    limits: tuple[LimitCheck, ...] = ()
    # True when the transport has just minted this identity (an anonymous caller's new
    # conversation), so no user row can exist yet: the turn skips reading one. A hint only.
    new_user: bool = False


class Assistant(Protocol):
    """What every transport calls.

    An implementation spends the asker's `limits` before it answers (or writes anything),
    and raises `RateLimited` without spending any of them when one has no quota left.
    """

    async def ask(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> Answer:
        """Answer one question."""
        ...

    def stream(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Answer one question as a stream of events; the last one is an `AnswerEvent`."""
        ...


@dataclass(frozen=True)
class AssistantConfig:
    """Budgets and limits of the assistant (values from `Settings.agent` and `Settings.limits`)."""

    planner_name: str
    model_name: str
    recursion_limit: int = 12
    history_token_budget: int = 3000
    history_messages: int = 60
    max_question_chars: int = 8000
    messages_per_minute: int = 30


class GraphAssistant:
    """The `Assistant` over the compiled agent graph, with memory in PostgreSQL.

    With `direct`, the turns the offline planner takes (all of them when no LLM is
    configured) and the LLM's fallback run through `OfflineTurns`, the same loop without the
    graph's machinery; the LLM's turns run through `graph`, or, with `model_turns`, through
    that same loop when no tokens are streamed (`ask`).
    """

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        *,
        sessions: async_sessionmaker[AsyncSession],
        config: AssistantConfig,
        limiter: RateLimiter | None = None,
        fallback_graph: CompiledStateGraph[Any, Any, Any, Any] | None = None,
        direct: OfflineTurns | None = None,
        model_turns: ModelTurns | None = None,
    ) -> None:
        self._graph = graph
        self._fallback_graph = fallback_graph
        self._sessions = sessions
        self._config = config
        self._limiter = limiter
        self._direct = direct
        self._model_turns = model_turns

    async def ask(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> Answer:
        """Answer one question."""
        answer: Answer | None = None
        events = self._events(
            text, conversation_id=conversation_id, asker=asker, language=language, tokens=False
        )
        async for event in events:
            if isinstance(event, AnswerEvent):
                answer = event.answer
        if answer is None:  # pragma: no cover - stream() always ends with an AnswerEvent
            raise RuntimeError("the assistant produced no answer")
        return answer

    async def stream(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Answer one question as a stream of events."""
        async for event in self._events(
            text, conversation_id=conversation_id, asker=asker, language=language, tokens=True
        ):
            yield event

    async def _events(
        self, text: str, *, conversation_id: str, asker: Asker, language: Language | None, tokens: bool
    ) -> AsyncIterator[AgentEvent]:
        # Without `tokens`, the graph streams only whole-message updates: the model is then not
        # asked to stream, and no per-token callbacks run (about half the agent's own time
        # for a 40-word LLM answer).
        started = time.perf_counter()
        question = text.strip()
        if not question:
            raise InvalidInput("Please write a question.")
        if len(question) > self._config.max_question_chars:
            raise InvalidInput(f"Please keep questions under {self._config.max_question_chars} characters.")
        await self._admit(asker)
        async with single_statements(self._sessions) as session:
            opened = await conversation_repo.open_turn(
                session,
                conversation_id,
                external_id=asker.external_id,
                channel=asker.channel,
                limit=self._config.history_messages,
                username=asker.username,
                language=asker.language or "en",
                new_user=asker.new_user,
            )
        user, stored = opened.user, opened.messages
        tier: Tier = asker.tier or _tier(user.tier)
        context = RunContext(
            user_id=user.id,
            conversation_id=conversation_id,
            channel=asker.channel,
            tier=tier,
            language=language or asker.language or _language(user.language),
        )
        history = trim_to_budget(
            to_langchain(stored), budget=self._config.history_token_budget, model=self._config.model_name
        )
        human = HumanMessage(question)
        messages = [*history, human]
        run = _Run(started=started)
        try:
            async for event in self._run(self._parts(messages, context, tokens), run):
                yield event
        except ProviderUnavailable as e:
            if e.provider != "llm" or (self._fallback_graph is None and self._direct is None):
                raise
            logger.warning("the LLM failed; answering this turn with the offline planner")
            run = _Run(started=started, llm_failed=True)
            async for event in self._run(self._fallback_parts(messages, context, tokens), run):
                yield event
        answer = run.answer(conversation_id, context, self._config)
        stored_id = await self._remember(conversation_id, context.user_id, [human, *run.new_messages], answer)
        yield AnswerEvent(answer=answer.stored_as(stored_id))

    async def _admit(self, asker: Asker) -> None:
        """Spend the transport's limits and the user's own in one script: all of them, or none.

        Before anything is read or written, so a call any limit refuses costs no round trip to
        PostgreSQL and writes nothing (not even a first contact's user). The user's limit is
        keyed by the transport's id of the user (one user each, as the users table keeps them),
        which is known before the user's row is read.
        """
        if self._limiter is None:
            if asker.limits:
                raise RuntimeError("the assistant has no rate limiter to spend the transport's limits with")
            return
        per_minute = Limit(self._config.messages_per_minute, timedelta(minutes=1))
        own = LimitCheck(f"user:{asker.external_id}:messages:minute", per_minute)
        await self._limiter.acquire_all([*asker.limits, own])

    async def _remember(
        self, conversation_id: str, user_id: int, messages: Sequence[AnyMessage], answer: Answer
    ) -> int | None:
        """Store the turn, usage and latency on the final answer row; return that row's id."""
        rows = to_stored(messages, language=answer.language, planner=answer.planner)
        if rows and rows[-1].role == "assistant" and not rows[-1].tool_calls:
            rows[-1] = replace(rows[-1], content=answer.answer)
        else:  # the step budget ran out before the model answered: store the polite answer we gave
            rows.append(
                StoredMessage("assistant", answer.answer, language=answer.language, planner=answer.planner)
            )
        rows[-1] = replace(
            rows[-1],
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
            estimated_cost_usd=answer.usage.estimated_cost_usd,
            latency_ms=answer.latency_ms,
        )
        async with single_statements(self._sessions) as session:
            return await conversation_repo.append_messages(session, conversation_id, rows, user_id=user_id)

    async def _parts(
        self, messages: list[AnyMessage], context: RunContext, tokens: bool
    ) -> AsyncIterator[StreamPart]:
        """Run the turn directly when the offline planner takes it or no token streams, else in the graph."""
        planner: str | None = None
        if self._direct is not None:
            if await self._direct.takes(messages):
                async for part in self._direct.astream(
                    messages, context=context, recursion_limit=self._config.recursion_limit, tokens=tokens
                ):
                    yield part
                return
            planner = self._config.planner_name  # routed already: the graph need not route again
        if self._model_turns is not None and not tokens and planner is not None:
            async for part in self._model_turns.astream(
                messages, context=context, recursion_limit=self._config.recursion_limit
            ):
                yield part
            return
        async for part in self._graph_parts(self._graph, messages, context, tokens, planner=planner):
            yield part

    async def _fallback_parts(
        self, messages: list[AnyMessage], context: RunContext, tokens: bool
    ) -> AsyncIterator[StreamPart]:
        if self._direct is not None:
            async for part in self._direct.astream(
                messages, context=context, recursion_limit=self._config.recursion_limit, tokens=tokens
            ):
                yield part
            return
        if self._fallback_graph is not None:  # pragma: no branch - _events checked one of them
            async for part in self._graph_parts(self._fallback_graph, messages, context, tokens):
                yield part

    async def _graph_parts(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        messages: list[AnyMessage],
        context: RunContext,
        tokens: bool,
        *,
        planner: str | None = None,
    ) -> AsyncIterator[StreamPart]:
        inputs: dict[str, Any] = {"messages": messages, "planner": planner}
        config: RunnableConfig = {"recursion_limit": self._config.recursion_limit}
        async for part in graph.astream(
            inputs,
            config=config,
            context=context,
            stream_mode=["messages", "updates"] if tokens else ["updates"],
        ):
            yield cast(StreamPart, part)

    async def _run(self, parts: AsyncIterator[StreamPart], run: _Run) -> AsyncIterator[AgentEvent]:
        try:
            async for mode, chunk in parts:
                if mode == "messages":
                    message, metadata = chunk
                    if (
                        isinstance(message, AIMessageChunk)
                        and metadata.get("langgraph_node") == "agent"
                        and isinstance(message.content, str)
                        and message.content
                    ):
                        yield TokenEvent(text=message.content)
                    continue
                for node, update in chunk.items():
                    if not update:
                        continue
                    if update.get("planner"):
                        run.planner = update["planner"]
                    for message in update.get("messages", []):
                        run.new_messages.append(message)
                        if isinstance(message, AIMessage):
                            run.add_usage(message)
                            for call in message.tool_calls:
                                run.calls[call["id"] or ""] = (call["name"], call["args"])
                                yield ToolCallEvent(name=call["name"], args=call["args"])
                        elif isinstance(message, ToolMessage) and node == "tools":
                            record = run.add_tool_result(message)
                            yield ToolResultEvent(
                                name=record.name, ok=record.ok, duration_ms=record.duration_ms
                            )
        except GraphRecursionError:
            run.truncated = True


@dataclass
class _Run:
    """What one run of the graph produced."""

    started: float
    llm_failed: bool = False
    planner: str | None = None
    truncated: bool = False

    def __post_init__(self) -> None:
        self.new_messages: list[AnyMessage] = []
        self.calls: dict[str, tuple[str, dict[str, Any]]] = {}
        self.tool_calls: list[ToolCallRecord] = []
        self.sources: list[SourceRef] = []
        self.attachments: list[Attachment] = []
        self.input_tokens = 0
        self.output_tokens = 0

    def add_usage(self, message: AIMessage) -> None:
        if message.usage_metadata:
            self.input_tokens += message.usage_metadata.get("input_tokens", 0)
            self.output_tokens += message.usage_metadata.get("output_tokens", 0)

    def add_tool_result(self, message: ToolMessage) -> ToolCallRecord:
        name, args = self.calls.get(message.tool_call_id, (message.name or "tool", {}))
        artifact = message.artifact if isinstance(message.artifact, dict) else {}
        ok = bool(artifact.get("ok", message.status != "error"))
        record = ToolCallRecord(
            name=name,
            args=args,
            duration_ms=float(artifact.get("duration_ms", 0.0)),
            ok=ok,
            error=None if ok else str(artifact.get("error", "tool_error")),
            record_ids=[str(r) for r in artifact.get("record_ids", [])],
        )
        self.tool_calls.append(record)
        for attachment in artifact.get("attachments", []):
            self.attachments.append(Attachment.model_validate(attachment))
        for source in artifact.get("sources", []):
            ref = SourceRef.model_validate(source)
            if ref not in self.sources:
                self.sources.append(ref)
        return record

    def final_message(self) -> AIMessage | None:
        for message in reversed(self.new_messages):
            if isinstance(message, AIMessage) and not message.tool_calls:
                return message
        return None

    def answer(self, conversation_id: str, context: RunContext, config: AssistantConfig) -> Answer:
        final = self.final_message()
        text = final.content if final is not None and isinstance(final.content, str) else ""
        metadata = final.response_metadata if final is not None else {}
        language = metadata.get("language") or detect_language(text) or context.language
        if self.truncated or not text.strip():
            self.truncated = True
            text = t("step_budget_exhausted", language)
        planner = self.planner or (OFFLINE if self.llm_failed else config.planner_name)
        if self.llm_failed:
            planner = f"{OFFLINE} (llm unavailable)"
            text = f"{text}\n\n{t('llm_unavailable_note', language)}"
        model = config.model_name if planner.startswith("llm") else ""
        return Answer(
            answer=text,
            language=language,
            conversation_id=conversation_id,
            sources=self.sources,
            attachments=self.attachments,
            tool_calls=self.tool_calls,
            planner=planner,
            usage=Usage(
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                estimated_cost_usd=estimate_cost(model, self.input_tokens, self.output_tokens)
                if model
                else 0.0,
            ),
            latency_ms=round((time.perf_counter() - self.started) * 1000, 2),
            truncated=self.truncated,
        )


def _tier(value: str) -> Tier:
    if value == "pro":
        return "pro"
    if value == "premium":
        return "premium"
    return "free"


def _language(value: str) -> Language:
    for language in LANGUAGES:
        if value == language:
            return language
    return "en"
