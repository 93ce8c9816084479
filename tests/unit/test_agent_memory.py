from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agent.memory import to_langchain, to_stored, trim_to_budget
from agent.tokens import (
    CACHED_TEXT_CHARS,
    _count_remembered,
    count_message_tokens,
    count_text_tokens,
    encoding_for,
    ensure_tiktoken_offline,
    estimate_cost,
)
from tools.storage.conversation_repo import StoredMessage


@pytest.fixture(scope="module", autouse=True)
def _tiktoken(tmp_path_factory: pytest.TempPathFactory) -> None:
    ensure_tiktoken_offline(tmp_path_factory.mktemp("tiktoken"))


def turn(question: str, answer: str, call_id: str | None = None) -> list:
    if call_id is None:
        return [HumanMessage(question), AIMessage(answer)]
    call = {"name": "decode_vin", "args": {"vin": "1HGCM82633A004352"}, "id": call_id, "type": "tool_call"}
    return [
        HumanMessage(question),
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"vin": "1HGCM82633A004352"}', tool_call_id=call_id, name="decode_vin"),
        AIMessage(answer),
    ]


def test_tokens_are_counted_offline_when_the_encoding_files_come_from_the_package() -> None:
    assert encoding_for("gpt-4o-mini").name == "o200k_base"
    assert encoding_for("some-local-model").name == "o200k_base"
    assert count_message_tokens([HumanMessage("what car is 1HGCM82633A004352?")], "gpt-4o-mini") > 5


def test_cost_is_estimated_from_the_price_table_and_zero_when_the_model_is_unknown() -> None:
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert estimate_cost("gpt-4o-mini-2024-07-18", 1000, 0) == pytest.approx(0.00015)
    assert estimate_cost("qwen2.5-coder", 1000, 1000) == 0.0


def test_stored_messages_round_trip_with_tool_calls_when_saved_and_loaded() -> None:
    messages = turn("what car is 1HGCM82633A004352?", "A 2003 Honda Accord.", "call_1")
    rows = to_stored(messages, language="en", planner="offline")
    assert [r.role for r in rows] == ["user", "assistant", "tool", "assistant"]
    back = to_langchain(rows)
    assert [type(m) for m in back] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert back[1].tool_calls[0]["args"] == {"vin": "1HGCM82633A004352"}
    assert back[2].tool_call_id == "call_1"


def test_orphaned_tool_results_are_dropped_when_the_window_cut_their_call() -> None:
    rows = [
        StoredMessage("tool", '{"x": 1}', tool_call_id="gone", tool_name="decode_vin"),
        StoredMessage("assistant", "old answer"),
        StoredMessage("user", "hi"),
        StoredMessage(
            "assistant", "", tool_calls=[{"name": "decode_vin", "args": {}, "id": "c2", "type": "tool_call"}]
        ),
        StoredMessage("assistant", "hello"),
    ]
    back = to_langchain(rows)
    assert [m.content for m in back] == ["hi", "hello"]


def test_only_whole_recent_turns_are_kept_when_history_exceeds_the_budget() -> None:
    history = [m for i in range(30) for m in turn(f"question {i} " + "word " * 40, f"answer {i}", f"c{i}")]
    kept = trim_to_budget(history, budget=400, model="gpt-4o-mini")
    assert kept
    assert isinstance(kept[0], HumanMessage)
    assert kept[-1].content == "answer 29"
    assert count_message_tokens(kept, "gpt-4o-mini") <= 400
    assert len(kept) < len(history)
    assert trim_to_budget(history, budget=10, model="gpt-4o-mini") == []


def test_tiktoken_cache_is_seeded_when_the_directory_is_new(tmp_path: Path) -> None:
    ensure_tiktoken_offline(tmp_path / "tk")
    assert len(list((tmp_path / "tk").iterdir())) == 2


def test_history_texts_are_encoded_once_when_the_same_turns_are_counted_again() -> None:
    history = turn("what car is 1HGCM82633A004352?", "A 2003 Honda Accord EX-V6 coupe.", call_id="call_9")
    encoding = encoding_for("gpt-4o-mini")
    expected = sum(4 + len(encoding.encode(str(m.content))) for m in history) + len(
        encoding.encode(str(history[1].tool_calls))
    )
    first = count_message_tokens(history, "gpt-4o-mini")
    misses = _count_remembered.cache_info().misses
    again = count_message_tokens(history, "gpt-4o-mini")
    assert first == again == expected
    assert _count_remembered.cache_info().misses == misses  # nothing was encoded the second time


def test_a_long_text_is_counted_exactly_and_not_remembered_when_it_exceeds_the_cached_size() -> None:
    text = "Accord " * (CACHED_TEXT_CHARS // 7 + 1)
    size = _count_remembered.cache_info().currsize

    assert count_text_tokens(text, "gpt-4o-mini") == len(encoding_for("gpt-4o-mini").encode(text))
    assert _count_remembered.cache_info().currsize == size
