"""The bot's message catalogue: every string the code shows has a translation in every language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from agent.planner_offline import detect_language
from bot.handlers import COMMANDS
from bot.i18n import LOCALES_DIR, TRANSLATED, Texts, language_of, read_catalogue

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_msgids() -> set[str]:
    """Every literal passed to a translator `t(...)` or marked `N_(...)` in bot/."""
    found = extract_from_dir(str(BOT_DIR), method_map=[("**.py", "python")], keywords={"t": None, "N_": None})
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


def test_code_uses_many_msgids_when_extracted() -> None:
    assert len(used_msgids()) > 50


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_msgid_in_code_is_translated_when_the_catalogue_is_read(language: str) -> None:
    catalogue = read_catalogue(LOCALES_DIR / language / "LC_MESSAGES" / "bot.po")
    missing = sorted(used_msgids() - catalogue.keys())
    assert missing == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders_when_they_have_any(language: str) -> None:
    catalogue = read_catalogue(LOCALES_DIR / language / "LC_MESSAGES" / "bot.po")
    for msgid, msgstr in catalogue.items():
        assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(msgstr)), msgid


def test_catalogue_has_no_stale_entries_when_the_code_changes() -> None:
    stale = set(read_catalogue(LOCALES_DIR / "de" / "LC_MESSAGES" / "bot.po")) - used_msgids()
    assert stale == set()


def test_translator_fills_placeholders_in_the_chosen_language() -> None:
    texts = Texts.load()
    assert texts.of("de")("Hello {name}! I am vinbot, your vehicle assistant.", name="Ana").startswith(
        "Hallo Ana"
    )
    assert texts.of("en")("Your plan: {tier}", tier="free") == "Your plan: free"
    assert texts.of("fr")("Sources") == "Sources"


def test_command_descriptions_fit_telegram_when_translated() -> None:
    texts = Texts.load()
    for language in ("en", *TRANSLATED):
        for name, description in COMMANDS:
            assert re.fullmatch(r"[a-z0-9_]{1,32}", name)
            assert 1 <= len(texts.of(language)(description)) <= 256


@pytest.mark.parametrize(
    ("code", "language"), [("es-MX", "es"), ("de", "de"), ("pt-BR", "en"), (None, "en"), ("FR", "fr")]
)
def test_language_comes_from_telegram_language_code(code: str | None, language: str) -> None:
    assert language_of(code) == language


# The questions the bot writes on the user's behalf (commands, buttons). The assistant
# answers in the language a message is written in, so each must read as the user's.
ASKED_FOR_THE_USER = [
    ("Please compare these vehicles: {vehicles}", {"vehicles": "2019 Toyota RAV4 vs 2019 Honda CR-V"}),
    ("Please compare {a} with {b}", {"a": "2014 FORD Focus", "b": "2014 Honda Civic"}),
    ("Are there any recalls for {vehicle}?", {"vehicle": "2014 Ford Taurus"}),
    ("Are there any recalls for my last vehicle?", {}),
    ("Are there any recalls for {vin}?", {"vin": "1FADP3F21EL321063"}),
    (
        "What are the fuel economy (MPG), horsepower and annual fuel cost of {vin}?",
        {"vin": "1FADP3F21EL321063"},
    ),
    ("Show my lookup history", {}),
]


@pytest.mark.parametrize("language", ["en", *TRANSLATED])
def test_questions_asked_for_the_user_read_as_the_users_language(language: str) -> None:
    t = Texts.load().of(language)  # type: ignore[arg-type]
    used = used_msgids()
    for msgid, values in ASKED_FOR_THE_USER:
        assert msgid in used, msgid
        question = t(msgid, **values)
        assert detect_language(question) == language, question
