"""`vinbot decode` as a real process against the test session's PostgreSQL and Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ACCORD = "1HGCM82633A004352"


def test_json_lists_every_input_in_order_and_exits_1_when_one_is_invalid(run) -> None:
    done = run("decode", "--json", ACCORD, "1HGCM82633AOO4352", "2T1BURHE0JC060752")
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout)
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert [r["vin"] for r in rows] == [ACCORD, None, "2T1BURHE0JC060752"]
    assert rows[0]["make"] == "HONDA"
    assert rows[0]["model_year"] == 2003
    assert rows[0]["engine"]["cylinders"] == 6
    assert rows[0]["source"]["provider"] == "offline"
    assert rows[1]["error"]["reason"] == "forbidden_letters"
    assert rows[1]["error"]["suggestions"] == [ACCORD]
    assert rows[2]["valid"] is True  # a wrong check digit is a warning
    assert rows[2]["check_digit_valid"] is False
    assert [e["code"] for e in rows[2]["errors"]] == ["1"]


def test_exit_status_is_0_and_the_table_names_the_vehicle_when_every_vin_decodes(run) -> None:
    done = run("decode", ACCORD)
    assert done.returncode == 0, done.stderr
    assert "HONDA" in done.stdout
    assert "Accord" in done.stdout


def test_file_lines_keep_their_line_numbers_and_year_hints_when_decoded(run, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.txt"
    fleet.write_text(f"# fleet\n{ACCORD}\n\nnot-a-vin\n{ACCORD},2003\n", encoding="utf-8")
    done = run("decode", "--json", "--file", str(fleet))
    assert done.returncode == 1
    rows = json.loads(done.stdout)
    assert [(r["line"], r["valid"]) for r in rows] == [(2, True), (4, False), (5, True)]


def test_vins_are_read_from_standard_input_when_piped(run) -> None:
    done = run("decode", "--json", stdin=f"{ACCORD}\n{ACCORD.lower()}\n")
    assert done.returncode == 0, done.stderr
    assert [r["vin"] for r in json.loads(done.stdout)] == [ACCORD, ACCORD]


@pytest.mark.parametrize(
    "args",
    [
        ("decode", "--file", "/nonexistent/fleet.txt"),
        ("decode", "--year", "nineteen", ACCORD),
        ("decode", "--provider", "carfax", ACCORD),
        ("nonsense",),
        ("decode", "--year", "1900", ACCORD, "--provider", "autodev"),
    ],
)
def test_usage_errors_exit_2_with_a_message_when_arguments_are_wrong(run, args) -> None:
    done = run(*args, stdin="")
    assert done.returncode == 2
    assert done.stderr.strip()
    assert "Traceback" not in done.stderr


def test_interactive_prompt_decodes_until_quit_when_asked(run) -> None:
    done = run("decode", "--interactive", stdin=f"{ACCORD}\nquit\n")
    assert done.returncode == 0, done.stderr
    assert "Accord" in done.stdout
