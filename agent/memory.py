"""Conversation memory: stored messages to LangChain messages and back, trimmed to a token budget."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage

from agent.tokens import count_message_tokens
from tools.storage.conversation_repo import StoredMessage


def to_langchain(stored: Sequence[StoredMessage]) -> list[AnyMessage]:
    """Rebuild LangChain messages from stored rows."""
    messages: list[AnyMessage] = []
    for m in stored:
        if m.role == "user":
            messages.append(HumanMessage(m.content))
        elif m.role == "assistant":
            messages.append(AIMessage(m.content, tool_calls=list(m.tool_calls or [])))
        elif m.role == "tool":
            messages.append(ToolMessage(m.content, tool_call_id=m.tool_call_id or "", name=m.tool_name))
    return _drop_orphans(messages)


def to_stored(
    messages: Sequence[AnyMessage], *, language: str | None, planner: str | None
) -> list[StoredMessage]:
    """Turn one turn's new messages into rows (usage is recorded on the final answer)."""
    rows: list[StoredMessage] = []
    for m in messages:
        if isinstance(m, HumanMessage):
            rows.append(StoredMessage("user", _text(m.content), language=language))
        elif isinstance(m, AIMessage):
            calls = [
                {"name": c["name"], "args": c["args"], "id": c["id"], "type": "tool_call"}
                for c in m.tool_calls
            ]
            rows.append(
                StoredMessage(
                    "assistant",
                    _text(m.content),
                    tool_calls=calls or None,
                    language=language,
                    planner=planner,
                )
            )
        elif isinstance(m, ToolMessage):
            rows.append(
                StoredMessage("tool", _text(m.content), tool_call_id=m.tool_call_id, tool_name=m.name)
            )
    return rows


def trim_to_budget(messages: Sequence[AnyMessage], *, budget: int, model: str) -> list[AnyMessage]:
    """Keep the most recent whole turns that fit in `budget` tokens.

    A turn starts at a user message, so a kept tool result always has its call.
    """
    turns: list[list[AnyMessage]] = []
    for m in messages:
        if isinstance(m, HumanMessage) or not turns:
            turns.append([])
        turns[-1].append(m)
    kept: list[AnyMessage] = []
    used = 0
    for turn in reversed(turns):
        cost = count_message_tokens(turn, model)
        if used + cost > budget:
            break
        kept[:0] = turn
        used += cost
    return kept


def _drop_orphans(messages: list[AnyMessage]) -> list[AnyMessage]:
    """Drop tool results whose call is not in the window, and calls whose results are missing."""
    for _ in range(2):  # a dropped call can orphan its other results: one more pass settles it
        messages = _drop_orphans_once(messages)
    while messages and not isinstance(messages[0], HumanMessage):
        messages.pop(0)
    return messages


def _drop_orphans_once(messages: list[AnyMessage]) -> list[AnyMessage]:
    call_ids = {c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    result_ids = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    cleaned: list[AnyMessage] = []
    for m in messages:
        if isinstance(m, ToolMessage) and m.tool_call_id not in call_ids:
            continue
        if isinstance(m, AIMessage) and m.tool_calls and not all(c["id"] in result_ids for c in m.tool_calls):
            continue
        cleaned.append(m)
    return cleaned


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
