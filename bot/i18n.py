"""The bot's message catalogue: English msgids, gettext `.po` files for es, fr and de.

The `.po` files are read at start-up (`Texts.load`) and kept in memory; no compiled
`.mo` file is committed or written. Every user-facing string is a literal passed to a
translator named `t` (or marked with `N_` where it is defined apart from its use), so
the completeness test can extract them with Babel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from babel.messages.pofile import read_po

from agent.answer import LANGUAGES, Language

logger = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "bot"
TRANSLATED: tuple[Language, ...] = tuple(lang for lang in LANGUAGES if lang != "en")
LANGUAGE_NAMES: Mapping[Language, str] = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch"}


def N_(message: str) -> str:
    """Mark `message` for extraction; it is translated where it is shown."""
    return message


class Translate(Protocol):
    """Translate an English msgid and fill its `{placeholders}`."""

    def __call__(self, message: str, /, **values: object) -> str: ...


@dataclass(frozen=True)
class Translator:
    """The translator of one language."""

    language: Language
    messages: Mapping[str, str]

    def __call__(self, message: str, /, **values: object) -> str:
        text = self.messages.get(message) or message
        return text.format(**values) if values else text


def language_of(code: str | None) -> Language:
    """Return our language for a Telegram `language_code` (`es-MX` -> `es`); English otherwise."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    for language in LANGUAGES:
        if base == language:
            return language
    return "en"


class Texts:
    """The catalogues of every language, read once per process."""

    def __init__(self, catalogues: Mapping[Language, Mapping[str, str]]) -> None:
        self._translators = {
            language: Translator(language, catalogues.get(language, {})) for language in LANGUAGES
        }

    @classmethod
    def load(cls, directory: Path = LOCALES_DIR) -> Texts:
        """Read `<directory>/<lang>/LC_MESSAGES/bot.po` for every translated language."""
        catalogues: dict[Language, dict[str, str]] = {}
        for language in TRANSLATED:
            catalogues[language] = read_catalogue(directory / language / "LC_MESSAGES" / f"{DOMAIN}.po")
        return cls(catalogues)

    def of(self, language: Language) -> Translator:
        """Return the translator of `language`."""
        return self._translators[language]


def read_catalogue(path: Path) -> dict[str, str]:
    """Return a `.po` file's translations (msgid -> msgstr), leaving out fuzzy and empty ones."""
    with path.open("rb") as handle:
        catalogue = read_po(handle, domain=DOMAIN)
    messages: dict[str, str] = {}
    for message in catalogue:
        if not message.id or message.fuzzy or not isinstance(message.id, str):
            continue
        if isinstance(message.string, str) and message.string:
            messages[message.id] = message.string
    return messages
