"""`vinbot ask` as a real process on the offline planner, against the test session's servers."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

ACCORD = "1HGCM82633A004352"


def test_answer_is_printed_with_its_source_when_a_vin_is_asked_about(run) -> None:
    done = run("ask", f"what car is {ACCORD}?")
    assert done.returncode == 0, done.stderr
    assert "Accord" in done.stdout
    assert "planner: offline" in done.stdout
    assert "vPIC" in done.stdout


def test_json_answer_has_the_answer_fields_when_asked_with_json(run) -> None:
    done = run("ask", "--json", f"¿qué coche es {ACCORD}?")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["language"] == "es"
    assert answer["planner"] == "offline"
    assert answer["tool_calls"][0]["name"] == "decode_vin"
    assert answer["sources"][0]["record_id"] == ACCORD
    assert answer["conversation_id"].startswith("cli:")
    assert {"answer", "usage", "latency_ms"} <= set(answer)


def test_one_json_line_per_question_in_order_when_questions_come_on_stdin(run) -> None:
    questions = [f"decode {ACCORD}", "hallo", "", "merci", "what did I look up?"]
    done = run("ask", stdin="\n".join(questions) + "\n")
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == 4  # the blank line is skipped
    assert answers[0]["tool_calls"][0]["name"] == "decode_vin"
    assert answers[1]["language"] == "de"
    assert answers[2]["language"] == "fr"
    assert answers[3]["tool_calls"][0]["name"] == "get_vin_history"
    assert len({a["conversation_id"] for a in answers}) == 4  # each its own conversation


def test_follow_up_uses_memory_when_the_conversation_is_given(run) -> None:
    conversation = "cli:0123456789abcdef0123456789abcdef"
    first = run("ask", "--conversation", conversation, f"what car is {ACCORD}?")
    assert first.returncode == 0, first.stderr
    second = run("ask", "--json", "--conversation", conversation, "and its engine?")
    assert second.returncode == 0, second.stderr
    assert "V6" in json.loads(second.stdout)["answer"] or "3.0" in json.loads(second.stdout)["answer"]


def test_chat_streams_answers_until_quit_when_run_interactively(run) -> None:
    done = run("chat", stdin=f"what car is {ACCORD}?\nthanks\nquit\n")
    assert done.returncode == 0, done.stderr
    assert "Accord" in done.stdout
    assert "vinbot>" in done.stdout


def test_an_empty_question_is_a_usage_error_when_given_as_argument(run) -> None:
    done = run("ask", "   ")
    assert done.returncode == 2
    assert "empty" in done.stderr
