"""The offline planner: a deterministic, rule-based stand-in for the LLM.

Used when no LLM key is configured, and in front of a real LLM for the turns it
recognises with certainty (see `route`). It plugs into the same LangGraph tool
loop as a chat model: given the conversation it returns an `AIMessage` that
either carries `tool_calls` or the final answer.

A turn has two steps:

1. The last message is the user's: **plan**. The first intent rule that matches
   decides: a tool call (`decode_vin`, `decode_vins`, `get_vin_history`) or a
   direct reply (help, thanks, follow-up facts from the last decode, an honest
   "I can't do that yet").
2. The conversation ends with the tool results of this turn: **answer** from them,
   in the turn's language. The planner never plans again in a turn that already
   has tool results, so the loop always ends.

Intents are a small ordered registry (`INTENT_RULES`) of pure functions, and
answers are composed per tool (`ANSWER_COMPOSERS`): a new capability (specs,
comparisons, recalls, bulk jobs, job status) adds a rule and a composer. Every
user-facing string comes from `agent.i18n`.

Everything here is linear in the message length (no regex with nested
quantifiers): an ordinary message plans in about 0.1 ms, a 5 kB one in a few ms.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import PrivateAttr

from agent.answer import LANGUAGES, Language
from agent.i18n import MESSAGES, join_list, t, t_count
from tools.domain.facts import FACTS_BY_KEY
from tools.domain.names import make_key, model_key
from tools.domain.spec_query import DESCRIPTIVE, VehicleMention, Vocabulary, parse_question
from tools.domain.vin import find_vins, normalise

PLANNER_NAME: Final = "offline"
# The same cap as decode_vins' argument schema (agent/toolkit.py); larger lists go to bulk jobs.
MAX_VINS_PER_TOOL_CALL: Final = 20
EXAMPLE_VIN: Final = "1HGCM82633A004352"
DEFAULT_HISTORY_LIMIT: Final = 10
# The focus of a history request that names other users (`PlannerDecision.focus`).
OTHER_USERS_FOCUS: Final = "other_users"

DECODE_VIN: Final = "decode_vin"
DECODE_VINS: Final = "decode_vins"
GET_VIN_HISTORY: Final = "get_vin_history"
START_BULK_DECODE: Final = "start_bulk_decode"
GET_JOB_STATUS: Final = "get_job_status"
SEARCH_SPECS: Final = "search_specs"
GET_SPECS: Final = "get_specs"
COMPARE_VEHICLES: Final = "compare_vehicles"
FIND_RECALLS: Final = "find_recalls"
KNOWLEDGE_TOOLS: Final = frozenset({SEARCH_SPECS, GET_SPECS, COMPARE_VEHICLES, FIND_RECALLS})
_JOB_ID = re.compile(r"\b[0-9a-f]{32}\b")


# ---------------------------------------------------------------- public results


@dataclass(frozen=True, slots=True)
class PlannerDecision:
    """What the planner decided for the current turn.

    Attributes:
        intent: A stable name such as `decode_vin`, `history`, `help` or `unsupported`.
        language: The language the answer is written in.
        confident: True when the rule is certain (a VIN, a history request, a greeting):
            an LLM graph may let the offline planner handle such a turn on its own.
        tool_calls: The calls to make (ids `call_<n>`); empty when `reply` is the answer.
        reply: The final answer when no tool is needed.
        focus: What the user asked about (`year`, `engine`, ...), in order; empty for "everything".
            A history request that names other users has the focus `other_users`.
    """

    intent: str
    language: Language
    confident: bool
    tool_calls: tuple[ToolCall, ...] = ()
    reply: str | None = None
    focus: tuple[str, ...] = ()


# ---------------------------------------------------------------- text analysis

_WORD = re.compile(r"\w+(?:['’\-]\w+)*")
_SEPARATOR = re.compile(r"['’\-]")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def _fold(text: str) -> str:
    """Lower-case `text` and strip accents (`Türen` → `turen`, `ß` → `ss`)."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered.replace("ß", "ss"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class MessageText:
    """One user message, tokenised once for every rule.

    Attributes:
        raw: The message as written.
        flat: Lower case, single spaces, straight apostrophes (for regular expressions).
        words: Folded words (lower case, no accents); compounds are split into parts.
        bag: `words` plus each compound whole and joined (`cr-v`, `crv`, `whats`).
        phrase_text: `words` joined as " w1 w2 ... " for phrase look-ups.
    """

    raw: str
    flat: str
    words: tuple[str, ...]
    bag: frozenset[str]
    phrase_text: str

    @classmethod
    def of(cls, raw: str) -> MessageText:
        """Tokenise `raw` (linear in its length)."""
        words: list[str] = []
        bag: set[str] = set()
        for match in _WORD.finditer(_fold(raw)):
            token = match.group()
            parts = [p for p in _SEPARATOR.split(token) if p]
            words.extend(parts)
            bag.update(parts)
            if len(parts) > 1:
                bag.add(token.replace("’", "'"))
                bag.add("".join(parts))
        flat = " ".join(raw.lower().replace("’", "'").split())
        return cls(raw, flat, tuple(words), frozenset(bag), " " + " ".join(words) + " ")

    def has_any(self, words: frozenset[str]) -> bool:
        """Tell whether any of the folded `words` occurs."""
        return not self.bag.isdisjoint(words)

    def has_phrase(self, phrases: Sequence[str]) -> bool:
        """Tell whether any phrase (in `phrase_text` form, see `_phrases`) occurs."""
        return any(p in self.phrase_text for p in phrases)


def _words(spec: str) -> frozenset[str]:
    """Fold a space-separated word list the way messages are folded."""
    return frozenset(_fold(w) for w in spec.split())


def _phrases(*specs: str) -> tuple[str, ...]:
    """Fold phrases into the `MessageText.phrase_text` form (" w1 w2 ").

    A phrase ending in `*` matches any ending of its last word (`ai-je consult*`
    matches "ai-je consulté" and "ai-je consultées").
    """
    result = []
    for spec in specs:
        parts = [p for token in _WORD.findall(_fold(spec)) for p in _SEPARATOR.split(token) if p]
        result.append(" " + " ".join(parts) + ("" if spec.endswith("*") else " "))
    return tuple(result)


@dataclass(frozen=True, slots=True)
class _Cue:
    """Words or phrases that signal something."""

    words: frozenset[str]
    phrases: tuple[str, ...] = ()

    def found_in(self, text: MessageText) -> bool:
        return text.has_any(self.words) or text.has_phrase(self.phrases)


def _cue(words: str, phrases: str = "") -> _Cue:
    """Build a cue from space-separated words and `|`-separated phrases."""
    return _Cue(_words(words), _phrases(*(p for p in phrases.split("|") if p)))


# ---------------------------------------------------------------- language detection

# Words typical of one language (a word listed for two languages counts for neither: "compare" is
# English and French, so "Compare 2019 RAV4 vs 2019 CR-V" shows no language).
# Strong markers (greetings, thanks) weigh more.
_LANGUAGE_WORDS: Final[Mapping[Language, tuple[str, str]]] = {
    "en": (
        "the what whats which is are of and my car vehicle year where built made engine how many much doors "
        "horsepower history searches search searched look looked lookup lookups did i you your can do who "
        "this that it its tell about show help for with up when transmission power fuel mileage there "
        "have has does get got check checked u please to be decode decoded find out know would like could "
        "should any these those they them from were been than more better or compare",
        "hello hi hey thanks thank bye goodbye",
    ),
    "es": (
        "el los las del una y qué coche carro vehículo año años mi mis su este esta ese esa eso cuál cuáles "
        "dónde cuántas cuántos cuánto cómo quién fue fabricado fabricada construido construida hecho tiene "
        "puertas caballos potencia consumo gasolina búsquedas busqué buscado consulté historial puedes hacer "
        "ayuda eres por favor para con sobre también muchas dime muestra muéstrame "
        "lo al muy es cual donde cuantas cuantos cuanto como quien hay tal está estas sabes vale "
        "perfecto entendido consultado consultados consultas autonomía millas galón combustible retiros "
        "llamadas revisión carretera ciudad compara",
        # Commands count as much as a greeting: "decodifica <VIN>" is all some messages say.
        # Spec questions are often one topic word and a vehicle name ("autonomía Model 3 2024").
        "hola gracias adiós buenos buenas decodifica decodificar decodifícame descifra descifrar "
        "autonomía millas retiros caballos",
    ),
    "fr": (
        "le les une et est ce cette cet mon ma mes ton ta tes quel quelle quels quelles où voiture "
        "véhicule année moteur combien portes puissance chevaux historique recherches cherché recherché "
        "consulté peux pouvez faire vous êtes aide revoir bonsoir elle il été construite construit fabriquée "
        "fabriqué je ai avec pour sur quoi consommation essence décoder dis montre montrez suis "
        "plaît sont au aux qu ça voici qui rappel rappels parfait compris d'accord c'est s'il j'ai qu'est "
        "autonomie consommation carburant mixte autoroute ville d'une d'un compare comparez comparer coût",
        "bonjour merci salut décodez autonomie consommation rappels chevaux ou",
    ),
    "de": (
        "der die das den dem ein eine einen einem mein meine meinen ist sind welches welcher welche wie viel "
        "viele wo wurde gebaut hergestellt jahr baujahr türen leistung ps verlauf suchen suche gesucht "
        "nachgeschlagen kannst können sie wer bist hilfe und mit für auf nicht ich habe hat zeig zeige mir "
        "mich dir fahrzeug wagen getriebe antrieb allrad "
        "verbrauch reichweite gibt alt kostet er kommt woher alles klar verstanden prima suchverlauf "
        "rückrufe rückrufaktionen stadt autobahn kraftstoffkosten vergleiche oder schafft technische daten "
        "von",
        "hallo danke tschüss bitte servus guten dekodiere dekodieren entschlüssele entschlüssle "
        "entschlüsseln verbrauch reichweite rückrufe rückrufaktionen oder kraftstoffkosten",
    ),
}
_STRONG_WEIGHT: Final = 3.0
# "es" is Spanish but also German ("ist es"): weigh it lightly.
# "y" is Spanish for "and", but also a model name ("Tesla Model Y"): it tells nothing.
_LIGHT_WORDS: Final = {"es": 0.5, "y": 0.0}
_LANGUAGE_CHARS: Final[Mapping[Language, str]] = {"es": "ñ¿¡áíóú", "fr": "àâçèêëîïôùûœ", "de": "äöüß"}
# Words that only their accent tells apart: "décode" is a French command, "decode" an English one.
_ACCENTED_WORDS: Final[Mapping[str, tuple[Language, float]]] = {
    word: ("fr", _STRONG_WEIGHT) for word in ("décode", "décoder", "décodez", "décodes", "décodé")
}
_MAX_CHAR_BONUS: Final = 3.0


def _build_language_index() -> dict[str, tuple[Language, float]]:
    seen: dict[str, set[Language]] = {}
    weights: dict[tuple[str, Language], float] = {}
    for lang, (normal, strong) in _LANGUAGE_WORDS.items():
        for spec, weight in ((normal, 1.0), (strong, _STRONG_WEIGHT)):
            for raw in spec.split():
                word = _fold(raw)
                seen.setdefault(word, set()).add(lang)
                weights[(word, lang)] = max(weights.get((word, lang), 0.0), weight)
    index: dict[str, tuple[Language, float]] = {}
    for word, langs in seen.items():
        if len(langs) == 1:
            (lang,) = langs
            index[word] = (lang, _LIGHT_WORDS.get(word, weights[(word, lang)]))
    return index


_LANGUAGE_INDEX: Final = _build_language_index()


def detect_language(text: str) -> Language | None:
    """Guess the language of `text` from its typical words and accents.

    Returns:
        "en", "es", "fr" or "de"; None when there is no clear signal (a bare VIN,
        "ok", a tie).
    """
    return _detect(MessageText.of(text)).language


# How far the best language must lead the next one for a message to switch away from the
# language the caller set: a word typical of it ("with", "et", "ist"), or its own letters and
# marks ("¿"), more than any other language shows. Words of two languages ("compare") count
# for neither, and a lightly weighed word alone ("es") is only a guess, so "compare X vs Y"
# with vehicle names and numbers, a bare VIN or "ok" follow the caller.
_CONFIDENT_LEAD: Final = 1.0


@dataclass(frozen=True, slots=True)
class _Detection:
    """The language a message shows, if any, and whether it shows it clearly enough to switch to."""

    language: Language | None
    confident: bool = False


def _detect(text: MessageText) -> _Detection:
    scores: dict[Language, float] = dict.fromkeys(LANGUAGES, 0.0)
    compounds = [w for w in text.bag if "'" in w]  # "d'accord", "c'est": telling as a whole
    for word in (*text.words, *compounds):
        hit = _LANGUAGE_INDEX.get(word)
        if hit is not None:
            scores[hit[0]] += hit[1]
    lowered = text.raw.lower()
    if not lowered.isascii():
        for match in _WORD.finditer(lowered):
            if accented := _ACCENTED_WORDS.get(match.group()):
                scores[accented[0]] += accented[1]
    for lang, chars in _LANGUAGE_CHARS.items():
        bonus = sum(lowered.count(ch) for ch in chars)
        scores[lang] += min(float(bonus), _MAX_CHAR_BONUS)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top <= 0 or top == second:
        return _Detection(None)
    return _Detection(best, confident=top - second >= _CONFIDENT_LEAD)


def _turn_language(detected: _Detection, caller: Language | None, earlier: Sequence[str]) -> Language:
    """Choose the language of a turn.

    The caller's language (the Telegram user's setting, `language` in `POST /ask`, else the
    stored user's; it reaches the planner on the system message, see `RunContext.language`)
    holds unless the message clearly shows another one: a user who writes Spanish gets
    Spanish, but a bare VIN, "ok" or "compare X vs Y" with only vehicle names and numbers
    follows the caller. Without a caller's language, a weak guess from the message, then
    the user's earlier messages, decide; English when nothing does.
    """
    if detected.confident and detected.language is not None:
        return detected.language
    if caller is not None:
        return caller
    if detected.language is not None:
        return detected.language
    return next((found for said in earlier if (found := detect_language(said))), "en")


# ---------------------------------------------------------------- the decoded vehicle


def _text_value(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _number(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(data: Mapping[str, object], key: str) -> int | None:
    value = _number(data, key)
    return None if value is None else round(value)


def _mapping(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _parse_object(content: str) -> Mapping[str, object] | None:
    try:
        data: object = json.loads(content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    """The typed view of a `decode_vin` result (the toolkit's `vehicle_summary`)."""

    vin: str
    valid: bool
    title: str | None = None
    make: str | None = None
    model: str | None = None
    model_year: int | None = None
    trim: str | None = None
    body_class: str | None = None
    doors: int | None = None
    drive_type: str | None = None
    cylinders: int | None = None
    displacement_l: float | None = None
    configuration: str | None = None
    hp: float | None = None
    hp_to: float | None = None
    fuel_primary: str | None = None
    fuel_secondary: str | None = None
    turbo: bool = False
    electrification: str | None = None
    transmission_style: str | None = None
    transmission_speeds: int | None = None
    plant_city: str | None = None
    plant_state: str | None = None
    plant_country: str | None = None
    gvwr: str | None = None
    check_digit_valid: bool = True
    warnings: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    provider: str | None = None
    fallback: bool = False

    @classmethod
    def from_summary(cls, data: Mapping[str, object]) -> VehicleFacts:
        """Read a `vehicle_summary` dict; unknown or mistyped keys are ignored."""
        engine = _mapping(data, "engine")
        transmission = _mapping(data, "transmission")
        plant = _mapping(data, "plant")
        source = _mapping(data, "source")
        return cls(
            vin=_text_value(data, "vin") or "?",
            valid=data.get("valid") is True,
            title=_text_value(data, "title"),
            make=_text_value(data, "make"),
            model=_text_value(data, "model"),
            model_year=_integer(data, "model_year"),
            trim=_text_value(data, "trim"),
            body_class=_text_value(data, "body_class"),
            doors=_integer(data, "doors"),
            drive_type=_text_value(data, "drive_type"),
            cylinders=_integer(engine, "cylinders"),
            displacement_l=_number(engine, "displacement_l"),
            configuration=_text_value(engine, "configuration"),
            hp=_number(engine, "hp"),
            hp_to=_number(engine, "hp_to"),
            fuel_primary=_text_value(engine, "fuel_type_primary"),
            fuel_secondary=_text_value(engine, "fuel_type_secondary"),
            turbo=engine.get("turbo") is True,
            electrification=_text_value(engine, "electrification"),
            transmission_style=_text_value(transmission, "style"),
            transmission_speeds=_integer(transmission, "speeds"),
            plant_city=_text_value(plant, "city"),
            plant_state=_text_value(plant, "state"),
            plant_country=_text_value(plant, "country"),
            gvwr=_text_value(data, "gvwr"),
            check_digit_valid=data.get("check_digit_valid") is not False,
            warnings=_strings(data, "warnings"),
            suggestions=_strings(data, "suggestions"),
            provider=_text_value(source, "provider"),
            fallback=source.get("fallback") is True,
        )


# ---------------------------------------------------------------- the turn


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One tool result of the current turn, with the arguments it was called with."""

    name: str
    args: Mapping[str, object]
    content: str
    data: Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class Turn:
    """What the intent rules and composers know about the current turn.

    Attributes:
        text: The user's message.
        language: The language to answer in.
        decoded: The vehicles of the most recent decode (`decode_vin` or `decode_vins`) that
            found at least one valid vehicle, in the order the VINs were written; a VIN that
            could not be decoded keeps its place as an invalid entry.
        next_call: The number for the next tool call id (`call_<n>`), unique in the conversation.
        results: This turn's tool results (empty while planning).
        answered: The turn already made tool calls: answer from the results, never plan again.
        previous: The user's message before this one ("and the second?" asks again what it asked).
        vocabulary: The makes and models of the vehicle data, when the knowledge tools are bound;
            None turns the spec, comparison and recall intents off.
        last_vehicle: The vehicle the conversation was last about (a look-up or a decode).
    """

    text: MessageText
    language: Language
    decoded: tuple[VehicleFacts, ...]
    next_call: int
    results: tuple[ToolResult, ...]
    answered: bool
    previous: str | None = None
    vocabulary: Vocabulary | None = None
    last_vehicle: VehicleArgs | None = None

    @property
    def vehicles(self) -> tuple[VehicleFacts, ...]:
        """The valid vehicles of `decoded`: what a follow-up can be about."""
        return tuple(v for v in self.decoded if v.valid)


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(str(block["text"]))
    return " ".join(parts)


def _system_language(messages: Sequence[BaseMessage]) -> Language | None:
    for message in messages:
        if isinstance(message, SystemMessage):
            language = message.additional_kwargs.get("language")
            for known in LANGUAGES:
                if language == known:
                    return known
    return None


def _read_turn(messages: Sequence[BaseMessage], vocabulary: Vocabulary | None = None) -> Turn | None:
    last_human = next(
        (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], HumanMessage)), None
    )
    if last_human is None:
        return None
    text = MessageText.of(_message_text(messages[last_human]))
    earlier = [_message_text(m) for m in reversed(messages[:last_human]) if isinstance(m, HumanMessage)]
    language = _turn_language(_detect(text), _system_language(messages), earlier)
    calls: dict[str, ToolCall] = {}
    call_count = 0
    for message in messages:
        if isinstance(message, AIMessage):
            call_count += len(message.tool_calls)
            calls.update({call["id"]: call for call in message.tool_calls if call["id"]})
    answered = any(isinstance(m, AIMessage) and m.tool_calls for m in messages[last_human + 1 :])
    results = tuple(_tool_result(m, calls) for m in messages[last_human + 1 :] if isinstance(m, ToolMessage))
    return Turn(
        text=text,
        language=language,
        decoded=_last_decoded(messages, calls),
        next_call=call_count + 1,
        results=results,
        answered=answered or bool(results),
        previous=earlier[0] if earlier else None,
        vocabulary=vocabulary,
        last_vehicle=_last_vehicle(messages, calls) if vocabulary is not None else None,
    )


def _tool_result(message: ToolMessage, calls: Mapping[str, ToolCall]) -> ToolResult:
    call = calls.get(message.tool_call_id)
    name = message.name or (call["name"] if call else "")
    content = _message_text(message)
    return ToolResult(name, dict(call["args"]) if call else {}, content, _parse_object(content))


def _answered_newest_first(
    messages: Sequence[BaseMessage], calls: Mapping[str, ToolCall]
) -> Iterator[tuple[ToolResult, Mapping[str, object]]]:
    """Yield the tool results that carry data and no error, newest first, each with its data."""
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            continue
        result = _tool_result(message, calls)
        if result.data is not None and "error" not in result.data:
            yield result, result.data


def _last_decoded(messages: Sequence[BaseMessage], calls: Mapping[str, ToolCall]) -> tuple[VehicleFacts, ...]:
    """Return the rows of the most recent decode that found a valid vehicle (see `Turn.decoded`)."""
    for result, data in _answered_newest_first(messages, calls):
        if result.name == DECODE_VIN:
            rows: tuple[VehicleFacts, ...] = (VehicleFacts.from_summary(data),)
        elif result.name == DECODE_VINS:
            rows = tuple(_row_facts(row) for row in _list_of_objects(data, "results"))
        else:
            continue
        if any(row.valid for row in rows):
            return rows
    return ()


def _row_facts(row: Mapping[str, object]) -> VehicleFacts:
    """Read one row of a `decode_vins` result; an error row is an invalid vehicle."""
    if "error" in row:
        return VehicleFacts(vin=_text_value(row, "input") or "?", valid=False)
    return VehicleFacts.from_summary(row)


# ---------------------------------------------------------------- VINs in a message

_NEAR_VIN_LENGTHS = range(16, 19)
_DIGIT = re.compile(r"\d")


def _vin_candidates(raw: str) -> list[str]:
    """Return every VIN and near-VIN in `raw`, in the order written.

    Near-VINs (16-18 letters and digits, or 17 with I, O or Q) go to decode_vin as
    well: the tool explains what is wrong and suggests the VIN that was meant.
    """
    if _DIGIT.search(raw) is None:
        return []  # every VIN and near-VIN has digits; skip the scan for chit-chat
    found = [vin for vin in find_vins(raw) if not _joined_from_words(raw, vin)]
    upper = unicodedata.normalize("NFKC", raw).upper()
    positioned: list[tuple[int, str]] = []
    for vin in found:
        at = upper.find(vin)
        positioned.append((at if at >= 0 else len(upper), vin))
    known = set(found)
    for match in _ALNUM_RUN.finditer(raw):
        token = match.group()
        if len(token) not in _NEAR_VIN_LENGTHS or token.upper() in known:
            continue
        digits = sum(ch.isdigit() for ch in token)
        if digits >= 3 and digits < len(token):
            known.add(token.upper())
            positioned.append((match.start(), token))
    positioned.sort(key=lambda item: item[0])
    return [vin for _, vin in positioned]


_MIN_WORD = 3


def _joined_from_words(raw: str, vin: str) -> bool:
    """Tell whether a grouped VIN candidate is really ordinary words ending in a year.

    "¿Cuántas MPG hace el 2019?" joins to 17 letters and digits ending in four digits;
    a VIN written in groups (`1hg-cm826 33a004352`) has no lower-case word in it, and
    does not start in the middle of a word.
    """
    text = unicodedata.normalize("NFKC", raw)
    tokens = list(_ALNUM_RUN.finditer(text))
    for first in range(len(tokens)):
        joined = ""
        for last in range(first, len(tokens)):
            joined += tokens[last].group().upper()
            if len(joined) >= len(vin):
                break
        if joined != vin or last == first:
            continue
        window = tokens[first : last + 1]
        start = window[0].start()
        mid_word = start > 0 and text[start - 1].isalpha()
        wordy = any(
            t.group().isalpha() and t.group().islower() and len(t.group()) >= _MIN_WORD for t in window
        )
        return mid_word or wordy
    return False


_YEAR = r"(19[89]\d|20[0-4]\d)"
# Only explicit statements count ("it's a 2019", "model year 2019", "my 2019 Civic"):
# the tool trusts the hint over the VIN, so a guessed year would be worse than none.
_YEAR_PATTERNS: Final = tuple(
    re.compile(pattern)
    for pattern in (
        rf"\b(?:it's|its|it is|this is|that's|that is)(?: an?)? {_YEAR}\b",
        rf"\b(?:model year|year|modelo|año|ano|année|annee|millésime|baujahr|modelljahr|jahrgang)(?: ?[:=])? "
        rf"?{_YEAR}\b",
        rf"\bmy ?{_YEAR}\b",
        rf"\b{_YEAR} (?:model|modelo|modèle|modele|modell)\b",
        rf"\b(?:es|era) (?:un|una|del) {_YEAR}\b",
        rf"\bc'est (?:un|une) {_YEAR}\b",
        rf"\b(?:ist|war) (?:ein|eine|einen) {_YEAR}(?:er)?\b",
        rf"\b(?:my|a|an|the|mi|un|una|mon|ma|une|mein|meine|ein|eine) {_YEAR} [^\W\d_]",
    )
)


def _stated_year(text: MessageText) -> int | None:
    for pattern in _YEAR_PATTERNS:
        match = pattern.search(text.flat)
        if match:
            return int(match.group(1))
    return None


# Matched against `MessageText.phrase_text` (folded: no accents, single spaces).
_RECENT = (
    r"(?:last|latest|recent|past|most recent|ultimas|ultimos|ultima|ultimo|dernieres|derniers|derniere|"
    r"dernier|letzten|letzte)"
)
_HISTORY_LIMIT = re.compile(rf" {_RECENT} (\d{{1,2}}) | (\d{{1,2}}) {_RECENT} ")
# "my last 2 searches", "mes 3 dernières recherches", "meine letzten Suchen": recent look-ups.
_RECENT_LOOKUPS = re.compile(
    rf" {_RECENT}(?: \d{{1,2}})? (?:lookups?|look ups?|searches|search|decodes|vins|busquedas?|consultas?|"
    r"recherches?|consultations?|suchen|suche|abfragen) "
    # "VIN" is also the plural in Spanish and French ("mes 3 derniers VIN"), but "the last VIN" is one.
    r"| (?:ultimos|dernieres|derniers)(?: \d{1,2})? vin "
)


def _history_limit(text: MessageText) -> int:
    match = _HISTORY_LIMIT.search(text.phrase_text)
    if match is None:
        return DEFAULT_HISTORY_LIMIT
    return min(max(int(match.group(1) or match.group(2)), 1), 50)


# ---------------------------------------------------------------- cues

_HISTORY = _cue(
    "history historial historique verlauf historie lookups búsquedas recherches suchverlauf suchverläufe "
    "suchhistorie",
    "look ups|my searches|what did i|which cars did i|which vins did i|did i look|did i check|did i decode|"
    "did i search|have i looked|have i checked|have i decoded|have i searched|mis búsquedas|mis consultas|"
    "qué he buscado|qué busqué|qué consulté|he consultado|he buscado|he decodificado|he mirado|he revisado|"
    "mes recherches|qu'ai-je|ai-je consult*|ai-je cherch*|ai-je recherch*|ai-je décod*|ai-je regard*|"
    "j'ai cherch*|j'ai consult*|j'ai recherch*|meine suchen|meine suche|meine letzten|meine abfragen|"
    "was habe ich|welche autos habe ich|welche vins habe ich|habe ich nachgeschlagen|habe ich gesucht",
)
# The asker's VINs as a list ("list my VINs", "los VIN de todos los usuarios"): the history tool,
# which only ever returns the asker's own look-ups.
_VIN_PLURAL = _cue("vins", "los vin|mis vin|tus vin|les vin|mes vin|vos vin|des vin|die vin|meine vin")
# Whose VINs: "my VINs", "all the VINs" (a bare "show me how VINs work" is not a history request).
_OWNER_OR_ALL = _cue("my mine all every mis todos todas mes tous toutes meine alle aller")
_DECODE_COMMAND = _cue(
    "decode decodifica decodificar decodifícame descifra descifrar décode décoder décodez dekodiere "
    "dekodieren entschlüssele entschlüssle entschlüsseln"
)
# Someone other than the asker: the answer then says it only shows the asker's own look-ups.
_OTHER_USERS = _cue(
    "user users user's users' everyone everyone's everybody everybody's others someone someone's "
    "usuario usuarios demás utilisateur utilisateurs autres nutzer nutzern benutzer benutzern anderen",
    "other people|someone else|somebody else|otros usuarios|d'autres",
)
_BULK = _cue(
    "bulk batch job jobs fleet csv xlsx upload uploaded spreadsheet lote lotes masivo archivo fichier "
    "flotte stapel datei auftrag"
)
_EXPLAIN_VIN = _cue(
    "",
    "what is a vin|what's a vin|whats a vin|what is vin|what does vin|vin stand for|vin mean|qué es un vin|"
    "qué es el vin|qué significa vin|qu'est-ce qu'un vin|c'est quoi un vin|que veut dire vin|"
    "was ist eine vin|was ist die vin|was ist eine fin|was bedeutet vin|where is the vin|where is my vin|"
    "find the vin|find my vin|dónde está el vin|dónde encuentro el vin|où trouver le vin|où est le vin|"
    "où se trouve le vin|wo finde ich die vin|wo ist die vin|wo steht die vin",
)
_DECODE_WORDS = _cue(
    "vin vins decode decodifica decodificar decodifícame descifra descifrar décode décoder décodez "
    "dekodiere dekodieren entschlüssele entschlüssle entschlüsseln",
    "look up this",
)
_HELP = _cue(
    "help tools commands capabilities features ayuda ayúdame herramientas comandos funciones aide aider "
    "outils commandes fonctions hilfe helfen werkzeuge befehle funktionen",
    "what can you do|what do you do|who are you|what are you|what can i ask|how does this work|how do i use|"
    "qué puedes hacer|qué sabes hacer|quién eres|qué eres|cómo funciona|qu'est-ce que tu peux faire|"
    "que peux-tu faire|que pouvez-vous faire|qui es-tu|qui êtes-vous|comment ça marche|was kannst du|"
    "wer bist du|was bist du|wie funktioniert",
)
_GREETING_WORDS: Final = _words(
    "hi hello hey yo hiya howdy hola buenas buenos días tardes noches bonjour salut bonsoir coucou hallo "
    "servus moin guten tag morgen abend good morning evening afternoon greetings"
)
_FILLER_WORDS: Final = _words(
    "there bot vinbot again how are you u doing what s up whats qué tal cómo estás ça va wie geht gehts es "
    "dir ihnen oh ok okay well all everyone folks amigo mon ami the le la"
)
_ACK_WORDS: Final = _words(
    "ok okay okey cool great nice perfect awesome got it understood alright vale genial perfecto bien it "
    "entendido génial parfait super compris gut prima toll verstanden alles klar"
)
_THANKS = _cue("thanks thank thx ty cheers appreciated gracias merci danke dankeschön", "vielen dank")
_BYE = _cue(
    "bye goodbye cya adiós adios chao chau ciao tschüss tschüs wiedersehen",
    "that's all|hasta luego|au revoir|c'est tout|bis bald",
)

# Topics a VIN decode does not cover: answered honestly, never guessed.
_TOPICS: Final[tuple[tuple[str, _Cue], ...]] = (
    ("bulk", _BULK),
    (
        "mpg",
        _cue(
            "mpg mileage economy consumption efficient efficiency consumo rendimiento consommation "
            "verbrauch spritverbrauch",
            "gas mileage|l/100|miles per gallon|kilómetros por litro",
        ),
    ),
    ("range", _cue("range autonomía autonomie reichweite", "how far")),
    (
        "price",
        _cue(
            "price prices cost costs worth value valued msrp precio cuesta valor prix coûte vaut valeur "
            "preis kostet wert",
            "how much is it",
        ),
    ),
    (
        "towing",
        _cue(
            "tow tows towing haul hauling remolque remolcar remolca arrastre arrastrar remorquage remorquer "
            "remorque tracter tracte anhängelast anhängerlast zuglast ziehen zieht anhänger schleppen",
            "can it pull|can it haul|how much can it pull|peut tirer|peut il tirer|peut elle tirer",
        ),
    ),
    (
        "recalls",
        _cue("recall recalls recalled rappel rappels rückruf rückrufe rückrufaktion", "llamado a revisión"),
    ),
    ("safety", _cue("safety crash ncap iihs seguridad sécurité sicherheit crashtest")),
    (
        "reliability",
        _cue(
            "reliable reliability problems problem issues fiable fiabilidad problemas fiabilité problèmes "
            "zuverlässig zuverlässigkeit probleme",
        ),
    ),
    (
        "compare",
        _cue(
            "compare comparison versus vs difference differences better worse bigger smaller faster cheaper "
            "than diferencia comparar compara mejor différence comparer meilleur vergleich vergleiche "
            "vergleichen unterschied besser",
            "stack up",
        ),
    ),
)

_COMPARE_TOPIC: Final = dict(_TOPICS)["compare"]

# Facts a decode does cover, for follow-ups and for "what year is <VIN>?".
_FIELDS: Final[tuple[tuple[str, _Cue], ...]] = (
    (
        "year",
        _cue(
            "year years año años année millésime jahr baujahr modelljahr jahrgang",
            "how old|wie alt|quel âge|qué edad",
        ),
    ),
    (
        "make",
        _cue(
            "make brand manufacturer maker marca fabricante marque constructeur fabricant hersteller marke",
            "who made|who makes|who built|quién lo fabricó|qui l'a fabriqué|wer hat ihn gebaut|wer baut",
        ),
    ),
    (
        "plant",
        _cue(
            "built assembled manufactured plant factory assembly fabricado fabricada construido construida "
            "ensamblado ensamblada fabricó fabricaron construyó construyeron ensambló ensamblaron planta "
            "fábrica usine construite construit fabriquée fabriqué assemblée "
            "assemblé gebaut hergestellt montiert werk fabrik produziert woher",
            "made in|where was it made|where is it made|where is it from|where's it from|de dónde es|"
            "d'où vient|wo kommt",
        ),
    ),
    ("doors", _cue("doors door puertas puerta portes porte türen tür")),
    (
        "hp",
        _cue(
            "horsepower hp bhp power powerful caballos potencia cv puissance chevaux ch ps leistung kw "
            "pferdestärken pferdestärke stark"
        ),
    ),
    (
        "engine",
        _cue(
            "engine motor cylinders cylinder displacement liters litres cilindros cilindrada moteur "
            "cylindres cylindrée zylinder hubraum v6 v8 v10 v12 turbo"
        ),
    ),
    (
        "transmission",
        _cue(
            "transmission gearbox gears gear automatic manual stick transmisión caja cambios marchas "
            "automático automática boîte vitesses rapports automatique manuelle getriebe gänge gang "
            "automatik schaltung schaltgetriebe"
        ),
    ),
    (
        "drive",
        _cue(
            "drive drivetrain awd 4wd fwd rwd 4x4 4x2 tracción traction propulsion intégrale antrieb allrad "
            "allradantrieb frontantrieb heckantrieb",
            "wheel drive|all wheel",
        ),
    ),
    (
        "body",
        _cue(
            "body bodystyle carrocería carrosserie karosserie bauform coupe sedan suv hatchback wagon "
            "convertible pickup",
            "body style|kind of car|type of car|kind of vehicle|type of vehicle",
        ),
    ),
    (
        "fuel",
        _cue(
            "fuel gas gasoline petrol diesel electric ev hybrid combustible gasolina eléctrico híbrido "
            "carburant essence électrique hybride kraftstoff benzin elektrisch elektro sprit"
        ),
    ),
    ("trim", _cue("trim edition acabado versión finition ausstattung variante")),
    ("model", _cue("model modelo modèle modell")),
    ("weight", _cue("weight gvwr heavy peso poids ptac gewicht schwer")),
    (
        "summary",
        _cue(
            "details summary detalles resumen détails résumé einzelheiten",
            "tell me everything|what car|which car|what vehicle|what is it|what's it|tell me about it|"
            "tell me more|more about it|qué coche|qué carro|qué vehículo|cuéntame más|quel véhicule|"
            "quelle voiture|dites-m'en plus|welches auto|welches fahrzeug|was für ein|erzähl mir mehr",
        ),
    ),
)
_WHO: Final = _words("who quién quien qui wer")

# Makes and well-known models: a question naming another vehicle is not a follow-up.
_VEHICLE_NAMES: Final = _words(
    "acura alfa audi bentley bmw buick cadillac chevrolet chevy chrysler citroën dacia dodge ferrari fiat "
    "ford genesis gmc honda hyundai infiniti jaguar jeep kia lamborghini lexus lincoln mazda mercedes mini "
    "mitsubishi nissan opel peugeot porsche ram renault rivian seat skoda subaru suzuki tesla toyota "
    "volkswagen vw volvo "
    "civic accord camry corolla prius rav4 crv cr-v f-150 f150 silverado sierra mustang bronco explorer "
    "wrangler 4runner tacoma tundra malibu altima sentra telluride palisade forester outback cx-5 cx5 golf "
    "jetta passat xc90 tahoe escape highlander pilot odyssey"
)


_ALIASES: Final[Mapping[str, frozenset[str]]] = {
    "chevrolet": frozenset({"chevy"}),
    "volkswagen": frozenset({"vw"}),
    "mercedes-benz": frozenset({"mercedes"}),
}


def _own_names(vehicle: VehicleFacts) -> frozenset[str]:
    names: set[str] = set()
    for value in (vehicle.make, vehicle.model):
        if value:
            names |= MessageText.of(value).bag
    for name in list(names):
        names |= _ALIASES.get(name, frozenset())
    return frozenset(names)


def _named(text: MessageText, vehicle: VehicleFacts) -> bool:
    """Tell whether `text` names `vehicle` by a well-known make or model ("the Accord")."""
    return not text.bag.isdisjoint(_VEHICLE_NAMES & _own_names(vehicle))


def _other_vehicle(text: MessageText, vehicles: Sequence[VehicleFacts]) -> bool:
    """Tell whether `text` names a vehicle (make, model or year) other than the decoded ones."""
    named = text.bag & _VEHICLE_NAMES
    own: set[str] = set()
    for vehicle in vehicles:
        own |= _own_names(vehicle)
    return bool(named - own) or _mentions_year(text, {v.model_year for v in vehicles})


_ANY_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")


def _mentions_year(text: MessageText, own_years: Collection[int | None] = ()) -> bool:
    return any(int(m.group(1)) not in own_years for m in _ANY_YEAR.finditer(text.flat))


# "the second one", "el último", "la première", "der zweite": a position in the last decode.
_ORDINAL_SPECS: Final = (
    "first 1st primero primera primer premier première erste ersten erster erstes",
    "second 2nd segundo segunda deuxième seconde zweite zweiten zweiter zweites",
    "third 3rd tercero tercera tercer troisième dritte dritten dritter drittes",
    "fourth 4th cuarto cuarta quatrième vierte vierten vierter viertes",
    "fifth 5th quinto quinta cinquième fünfte fünften fünfter fünftes",
)
_LAST_SPEC: Final = "last último última dernier dernière letzte letzten letzter letztes"
_ORDINALS: Final[Mapping[str, int]] = {
    **{word: index for index, spec in enumerate(_ORDINAL_SPECS) for word in _words(spec)},
    **dict.fromkeys(_words(_LAST_SPEC), -1),
}
_ORDINAL_WORDS: Final = frozenset(_ORDINALS)
_NUMBERED = re.compile(r"(?:#|\b(?:number|nr|numero|número|numéro|nummer|nº|n°)\.? ?)(\d{1,2})\b")
# A message that only points ("and the second?") is short; a long one mentioning "first" is about
# something else.
_MAX_POINTER_WORDS: Final = 8


def _pointer(text: MessageText) -> int | None:
    """Return the position a message points at (0-based; -1 is the last), if any."""
    if match := _NUMBERED.search(text.flat):
        return max(int(match.group(1)), 1) - 1
    if text.bag.isdisjoint(_ORDINAL_WORDS):
        return None
    return next(_ORDINALS[word] for word in text.words if word in _ORDINALS)


def _referent(turn: Turn, pointer: int | None) -> VehicleFacts | str | None:
    """Pick the decoded vehicle a follow-up is about.

    Returns:
        The vehicle; or the reply to give when the message points at none (a position
        past the end, a VIN that could not be decoded, several candidates); or None when
        nothing was decoded.
    """
    rows, valid, lang = turn.decoded, turn.vehicles, turn.language
    if not valid:
        return None
    if pointer is not None:
        if pointer >= len(rows):
            return t_count("follow_up.out_of_range", lang, len(rows), position=pointer + 1)
        chosen = rows[pointer]
        return chosen if chosen.valid else t("follow_up.not_decoded", lang, vin=chosen.vin)
    named = [v for v in valid if _named(turn.text, v)]
    if len(named) == 1:
        return named[0]
    if len(valid) == 1:
        return valid[0]
    listed = ", ".join(f"({i}) {_name(v, lang)}" for i, v in enumerate(rows, start=1) if v.valid)
    return t("follow_up.which", lang, count=len(valid), vehicles=listed)


def _fields(text: MessageText) -> tuple[str, ...]:
    found = [name for name, cue in _FIELDS if cue.found_in(text)]
    if "make" in found and "plant" in found:
        # "who built it?" asks for the maker; "where was it built?" for the plant.
        found.remove("plant" if text.has_any(_WHO) else "make")
    if "year" in found and "model" in found:
        found.remove("model")  # "model year"
    if "plant" not in found and "made" in text.bag and not text.has_any(_WHO) and "where" in text.bag:
        found.append("plant")
    return tuple(found)


# ---------------------------------------------------------------- intent rules

IntentRule = Callable[[Turn], PlannerDecision | None]
"""Decide a turn, or return None to let the next rule try."""


def _reply(turn: Turn, intent: str, text: str, *, confident: bool) -> PlannerDecision:
    return PlannerDecision(intent=intent, language=turn.language, confident=confident, reply=text)


def _call(
    turn: Turn, intent: str, name: str, args: dict[str, Any], *, focus: tuple[str, ...] = ()
) -> PlannerDecision:
    call = tool_call(name=name, args=args, id=f"call_{turn.next_call}")
    return PlannerDecision(
        intent=intent, language=turn.language, confident=True, tool_calls=(call,), focus=focus
    )


def _capabilities(lang: Language) -> str:
    return t("capabilities", lang, example_vin=EXAMPLE_VIN)


def _vins_rule(turn: Turn) -> PlannerDecision | None:
    vins = _vin_candidates(turn.text.raw)
    if not vins:
        return None
    if len(vins) > MAX_VINS_PER_TOOL_CALL:
        # The tool reads the VINs from the message itself: none are copied into arguments.
        return _call(turn, "bulk_decode", START_BULK_DECODE, {})
    if len(vins) > 1:
        return _call(turn, DECODE_VINS, DECODE_VINS, {"vins": vins})
    args: dict[str, Any] = {"vin": vins[0]}
    # In "compare <VIN> with a 2019 Civic" the year is the other vehicle's, not a hint for the VIN.
    year = None if _asks_comparison(turn.text) else _stated_year(turn.text)
    if year is not None:
        args["model_year"] = year
    return _call(turn, DECODE_VIN, DECODE_VIN, args, focus=_fields(turn.text))


def _job_status_rule(turn: Turn) -> PlannerDecision | None:
    match = _JOB_ID.search(turn.text.raw.lower())
    if match is None:
        return None
    return _call(turn, "job_status", GET_JOB_STATUS, {"job_id": match.group(0)})


def _asks_history(text: MessageText) -> bool:
    if _HISTORY.found_in(text) or _RECENT_LOOKUPS.search(text.phrase_text):
        return True
    if not _VIN_PLURAL.found_in(text) or _DECODE_COMMAND.found_in(text):
        return False  # "decode these VINs" without the VINs asks for them, not for the history
    return _OWNER_OR_ALL.found_in(text) or _OTHER_USERS.found_in(text)


def _history_rule(turn: Turn) -> PlannerDecision | None:
    if not _asks_history(turn.text):
        return None
    # The tool only ever returns the asker's own look-ups; the answer says so when another user was named.
    focus = (OTHER_USERS_FOCUS,) if _OTHER_USERS.found_in(turn.text) else ()
    return _call(turn, "history", GET_VIN_HISTORY, {"limit": _history_limit(turn.text)}, focus=focus)


def _explain_vin_rule(turn: Turn) -> PlannerDecision | None:
    if not _EXPLAIN_VIN.found_in(turn.text):
        return None
    return _reply(
        turn, "explain_vin", t("explain_vin", turn.language, example_vin=EXAMPLE_VIN), confident=True
    )


def _topic_rule(turn: Turn) -> PlannerDecision | None:
    topic = next((name for name, cue in _TOPICS if cue.found_in(turn.text)), None)
    if topic is None:
        return None
    lang = turn.language
    topic_text = t(f"topic.{topic}", lang)
    referent = _referent(turn, _pointer(turn.text))
    vehicle = referent if isinstance(referent, VehicleFacts) else None
    names_vehicles = bool(turn.text.bag & _VEHICLE_NAMES) or _mentions_year(turn.text)
    if topic == "compare" and not names_vehicles:
        # "AWD vs 4WD?" is general knowledge, not a comparison of two vehicles.
        text = t("unsupported.general", lang, capabilities=_capabilities(lang))
    elif (
        topic not in ("bulk", "compare")
        and vehicle is not None
        and not _other_vehicle(turn.text, turn.vehicles)
    ):
        text = t("unsupported.topic_vehicle", lang, topic=topic_text, vehicle=_name(vehicle, lang))
    else:
        text = t("unsupported.topic", lang, topic=topic_text, capabilities=_capabilities(lang))
    return _reply(turn, "unsupported", text, confident=False)


def _points_only(turn: Turn, pointer: int | None) -> bool:
    """Tell whether a message without a field picks a decoded vehicle ("and the second?", "the Fusion?")."""
    text = turn.text
    if len(text.words) > _MAX_POINTER_WORDS or _THANKS.found_in(text) or _BYE.found_in(text):
        return False
    if pointer is not None:
        return True
    vehicles = turn.vehicles
    return len(vehicles) > 1 and any(_named(text, v) for v in vehicles)


def _follow_up_rule(turn: Turn) -> PlannerDecision | None:
    fields = _fields(turn.text)
    pointer = _pointer(turn.text) if turn.decoded else None
    named_other = _other_vehicle(turn.text, turn.vehicles)
    if not fields and not _points_only(turn, pointer):
        if named_other and turn.text.bag & _VEHICLE_NAMES:
            text = t("unsupported.specs", turn.language, example_vin=EXAMPLE_VIN)
            return _reply(turn, "unsupported", text, confident=False)
        return None
    if named_other:
        text = t("unsupported.specs", turn.language, example_vin=EXAMPLE_VIN)
        return _reply(turn, "unsupported", text, confident=False)
    referent = _referent(turn, pointer)
    if referent is None:
        return _reply(
            turn, "follow_up", t("no_vehicle", turn.language, example_vin=EXAMPLE_VIN), confident=False
        )
    if isinstance(referent, str):
        return _reply(turn, "follow_up", referent, confident=False)
    if not fields:
        # "What year is the first one?" then "and the second?": the same question again.
        fields = (_fields(MessageText.of(turn.previous)) if turn.previous else ()) or ("summary",)
    text = " ".join(_facts(referent, fields, turn.language))
    return _reply(turn, "follow_up", text, confident=len(turn.text.words) <= 12)


def _explicit_help_rule(turn: Turn) -> PlannerDecision | None:
    if not _HELP.found_in(turn.text):
        return None
    return _reply(turn, "help", _help(turn.language, knowledge=turn.vocabulary is not None), confident=True)


def _greeting_rule(turn: Turn) -> PlannerDecision | None:
    words = set(turn.text.words)
    if not words & _GREETING_WORDS or not words <= _GREETING_WORDS | _FILLER_WORDS:
        return None
    text = t("greeting", turn.language) + " " + _help(turn.language, knowledge=turn.vocabulary is not None)
    return _reply(turn, "greeting", text, confident=True)


def _ack_rule(turn: Turn) -> PlannerDecision | None:
    words = set(turn.text.words)
    if "d'accord" in turn.text.bag:
        words -= {"d", "accord"}
        words.add("ok")
    if not words & _ACK_WORDS or not words <= _ACK_WORDS | _FILLER_WORDS:
        return None
    return _reply(turn, "acknowledge", t("ack", turn.language), confident=True)


def _ask_vin_rule(turn: Turn) -> PlannerDecision | None:
    if not _DECODE_WORDS.found_in(turn.text):
        return None
    return _reply(turn, "ask_vin", t("ask_vin", turn.language, example_vin=EXAMPLE_VIN), confident=False)


def _thanks_rule(turn: Turn) -> PlannerDecision | None:
    if _THANKS.found_in(turn.text):
        return _reply(turn, "thanks", t("thanks", turn.language), confident=True)
    if _BYE.found_in(turn.text):
        return _reply(turn, "goodbye", t("goodbye", turn.language), confident=True)
    return None


def _help(lang: Language, *, knowledge: bool = False) -> str:
    text = t("help", lang, max_vins=MAX_VINS_PER_TOOL_CALL, example_vin=EXAMPLE_VIN)
    return f"{text} {t('help.knowledge', lang)}" if knowledge else text


# ---------------------------------------------------------------- knowledge: specs, comparisons, recalls
#
# Active only when the planner knows the makes and models of the data (`Turn.vocabulary`),
# which the assistant gives it when the knowledge tools are bound. Without it, questions
# about MPG, comparisons and recalls get the honest "I can't answer that yet" of `_topic_rule`.

# Facts a VIN decode answers itself: a follow-up about them after a decode stays a decode follow-up.
_DECODE_FACTS: Final = frozenset(
    {"engine", "ev_motor", "transmission", "drive", "fuel", "vehicle_class", "gears", "turbo", "supercharged"}
)
# Recall questions spec_query does not catch on its own.
_RECALL_WORDS: Final = _cue(
    "recall recalls recalled retiros rappel rappels rückruf rückrufe rückrufaktion rückrufaktionen",
    "llamada a revisión|llamadas a revisión|llamado a revisión|llamados a revisión|retiro de seguridad|"
    "retiros de seguridad|campaña de seguridad|campañas de seguridad",
)
# The facts shown when a question names a vehicle but no fact ("2019 RAV4 specs").
_DEFAULT_FACTS: Final = ("combined_mpg", "range_mi", "horsepower", "annual_fuel_cost_usd")
MAX_COMPARED: Final = 4
MAX_SEARCH_CHARS: Final = 2000  # search_specs' argument schema (agent/toolkit.py)
_COMPARE_WORDS: Final = _cue(
    "compare comparison versus vs compara comparar comparación comparez comparer comparaison vergleiche "
    "vergleichen vergleich",
    "compared to|compared with|against|frente a|par rapport à|im vergleich zu",
)
# A request for a vehicle's specifications as a whole ("the specs of <VIN>"): its main figures.
_SPEC_SHEET_WORDS: Final = _cue(
    "spec specs specification specifications especificaciones características ficha spécifications "
    "caractéristiques datenblatt",
    "datos técnicos|fiche technique|technische daten",
)
# Focus entries that name a field no dataset has (`!towing_capacity`): the answer says so.
UNAVAILABLE_PREFIX: Final = "!"


@dataclass(frozen=True, slots=True)
class VehicleArgs:
    """The vehicle a knowledge tool is asked about (its year, make and model as the tools take them)."""

    year: int | None
    make: str
    model: str
    configuration: str | None = None

    def args(self) -> dict[str, Any]:
        """Return the tool arguments (configuration only when there is one)."""
        data: dict[str, Any] = {"year": self.year, "make": self.make, "model": self.model}
        if self.configuration:
            data["configuration"] = self.configuration
        return data

    def title(self) -> str:
        """Return `2019 Toyota RAV4 hybrid`."""
        parts = [str(self.year) if self.year else "", _nice(self.make), self.model, self.configuration or ""]
        return " ".join(p for p in parts if p)


def with_aliases(vocabulary: Vocabulary) -> Vocabulary:
    """Return the vocabulary with each part of a slashed model name as another name of it.

    EPA files some models under a combined name (`Golf/GTI`, `Sierra/Sierra HD`): "Verbrauch
    Golf 2016" names the `Golf/GTI`. A part that is a model of its own keeps its own entry.
    """
    rows: list[tuple[str, str, str, str, int | None]] = []
    for mk, by_model in vocabulary.models.items():
        make = vocabulary.makes.get(mk, mk)
        for entry in by_model.values():
            years: Sequence[int | None] = entry.years or (None,)
            rows.extend((mk, make, entry.model_key, entry.name, y) for y in years)
            if "/" not in entry.name:
                continue
            for part in entry.name.split("/"):
                alias = model_key(part)
                if alias and alias not in by_model:
                    rows.extend((mk, make, alias, entry.name, y) for y in years)
    return Vocabulary.build(rows)


def _vehicle_of_args(args: Mapping[str, object]) -> VehicleArgs | None:
    make, model = _text_value(args, "make"), _text_value(args, "model")
    if make is None or model is None:
        return None
    return VehicleArgs(_integer(args, "year"), make, model)


def _last_vehicle(messages: Sequence[BaseMessage], calls: Mapping[str, ToolCall]) -> VehicleArgs | None:
    """Return the vehicle the conversation was last about: a knowledge look-up's or a decode's.

    A comparison leaves no single vehicle; a look-up that failed does not count.
    """
    for result, data in _answered_newest_first(messages, calls):
        if result.name in (GET_SPECS, FIND_RECALLS):
            return _vehicle_of_args(result.args)
        if result.name == COMPARE_VEHICLES:
            return None
        if result.name == DECODE_VIN:
            facts = VehicleFacts.from_summary(data)
            if facts.valid and facts.make and facts.model:
                return VehicleArgs(facts.model_year, facts.make, facts.model)
            return None
    return None


def _mention_args(mention: VehicleMention, vocabulary: Vocabulary) -> VehicleArgs | None:
    if mention.make_key is None or mention.model_key is None:
        return None
    make = vocabulary.makes.get(mention.make_key, mention.make or mention.make_key)
    entry = vocabulary.models.get(mention.make_key, {}).get(mention.model_key)
    model = entry.name if entry is not None else (mention.model or mention.model_key)
    return VehicleArgs(mention.year, make, model, mention.configuration)


def _is_decoded(vehicle: VehicleArgs, decoded: Sequence[VehicleFacts]) -> bool:
    wanted = (make_key(vehicle.make), model_key(vehicle.model))
    return any(
        v.make
        and v.model
        and (make_key(v.make), model_key(v.model)) == wanted
        and vehicle.year in (None, v.model_year)
        for v in decoded
    )


def _years_text(years: Sequence[int]) -> str:
    return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])


def _unavailable_reply(turn: Turn, keys: Sequence[str], vehicle: VehicleArgs | None) -> PlannerDecision:
    lang = turn.language
    names = join_list([t(f"unavailable.{k}", lang) for k in keys], lang, conjunction="list.and")
    text = t("spec.unavailable", lang, fields=names)
    if vehicle is not None:
        text = t("spec.unavailable_vehicle", lang, vehicle=vehicle.title(), text=text)
    return _reply(turn, "spec_unavailable", text, confident=True)


def _check_year(turn: Turn, vehicle: VehicleArgs, mention: VehicleMention) -> PlannerDecision | None:
    """Answer a question about a model year the data does not hold, or one that names no year."""
    vocabulary = turn.vocabulary
    if vocabulary is None or mention.make_key is None or mention.model_key is None:
        return None
    entry = vocabulary.models.get(mention.make_key, {}).get(mention.model_key)
    years = entry.years if entry is not None else ()
    lang = turn.language
    if vehicle.year is None:
        example = f"{years[-1]} {vehicle.title()}" if years else vehicle.title()
        return _reply(
            turn,
            "spec_ask_year",
            t("spec.ask_year", lang, vehicle=vehicle.title(), example=example),
            confident=False,
        )
    if years and vehicle.year not in years:
        text = t(
            "spec.year_outside",
            lang,
            vehicle=vehicle.title(),
            model=VehicleArgs(None, vehicle.make, vehicle.model).title(),
            years=_years_text(years),
        )
        return _reply(turn, "spec_not_found", text, confident=True)
    return None


def _knowledge_rule(turn: Turn) -> PlannerDecision | None:
    vocabulary = turn.vocabulary
    if vocabulary is None:
        return None
    query = parse_question(turn.text.raw, vocabulary)
    named = [(m, args) for m in query.vehicles if (args := _mention_args(m, vocabulary)) is not None]
    last = turn.last_vehicle
    lang = turn.language
    spec_facts = tuple(f for f in query.facts if f in FACTS_BY_KEY or f in DESCRIPTIVE)
    knowledge_facts = tuple(f for f in spec_facts if f not in _DECODE_FACTS and f != "horsepower")

    if query.recalls or _RECALL_WORDS.found_in(turn.text):
        if named:
            vehicle = named[0][1]
        elif last is not None and not query.vehicles:
            vehicle = last
        else:
            return _reply(turn, "recalls", t("spec.ask_vehicle", lang), confident=False)
        return _call(
            turn, "recalls", FIND_RECALLS, VehicleArgs(vehicle.year, vehicle.make, vehicle.model).args()
        )

    if query.unavailable and all(f in _DECODE_FACTS for f in spec_facts):
        # "par motor" (torque) also reads as "engine": the question is about the unavailable field
        about = named[0][1] if named else (last if not query.vehicles else None)
        return _unavailable_reply(turn, query.unavailable, about)

    if len(named) >= 2:
        for mention, vehicle in named[:MAX_COMPARED]:
            if (answer := _check_year(turn, vehicle, mention)) is not None:
                return answer
        refs = [args.args() for _, args in named[:MAX_COMPARED]]
        return _call(turn, "compare", COMPARE_VEHICLES, {"vehicles": refs}, focus=spec_facts)

    if len(named) == 1 and last is not None and _COMPARE_WORDS.found_in(turn.text):
        # "compare my car with a 2019 RAV4" after a decode: the decoded (or last) vehicle and the named one
        mention, vehicle = named[0]
        if (answer := _check_year(turn, vehicle, mention)) is not None:
            return answer
        refs = [VehicleArgs(last.year, last.make, last.model).args(), vehicle.args()]
        return _call(turn, "compare", COMPARE_VEHICLES, {"vehicles": refs}, focus=spec_facts)

    if len(named) == 1:
        mention, vehicle = named[0]
        decoded = _is_decoded(vehicle, turn.vehicles)
        if not spec_facts and (vehicle.year is None or decoded):
            return None  # "the Accord?" after a decode, "is the Civic reliable?": not a spec question
        if (
            decoded
            and not knowledge_facts
            and not ("horsepower" in spec_facts and not any(v.hp for v in turn.vehicles))
        ):
            return None  # the decode answers it
        if (answer := _check_year(turn, vehicle, mention)) is not None:
            return answer
        return _call(turn, "specs", GET_SPECS, vehicle.args(), focus=spec_facts or _DEFAULT_FACTS)

    if not spec_facts:
        return None
    if query.vehicles:  # a make without a model: "Toyota mpg", "Peugeot 208 2019" (no 208 in the data)
        key = "spec.unknown_vehicle" if _mentions_year(turn.text) else "spec.ask_vehicle"
        return _reply(turn, "specs", t(key, lang), confident=False)
    if last is None and not knowledge_facts and "horsepower" not in spec_facts:
        return None  # "and its engine?" with nothing decoded: the decode follow-up asks for a VIN
    if last is None and (query.fuel or query.vehicle_class):
        # "which 2020 hybrid SUVs get the best mpg?": no one vehicle, but filters to rank by
        return _call(
            turn, "search", SEARCH_SPECS, {"question": turn.text.raw[:MAX_SEARCH_CHARS]}, focus=spec_facts
        )
    if last is not None:
        decode_answers = not knowledge_facts and (
            "horsepower" not in spec_facts or any(v.hp for v in turn.vehicles)
        )
        if turn.vehicles and decode_answers and _is_decoded(last, turn.vehicles):
            return None  # "what's its engine?" after a decode: the decode answers it
        return _call(turn, "specs", GET_SPECS, last.args(), focus=spec_facts)
    if _mentions_year(turn.text):
        return _reply(turn, "specs", t("spec.unknown_vehicle", lang), confident=False)
    return _reply(turn, "specs", t("spec.ask_vehicle", lang), confident=False)


# Order matters: the first rule that returns a decision wins. A VIN anywhere beats
# everything else; honest "not yet" answers come before follow-ups so that "fuel
# economy" is not answered as "fuel".
INTENT_RULES: Final[tuple[IntentRule, ...]] = (
    _vins_rule,
    _job_status_rule,
    _history_rule,
    _explain_vin_rule,
    _knowledge_rule,
    _topic_rule,
    _follow_up_rule,
    _explicit_help_rule,
    _greeting_rule,
    _thanks_rule,
    _ack_rule,
    _ask_vin_rule,
)


def _plan(turn: Turn) -> PlannerDecision:
    for rule in INTENT_RULES:
        decision = rule(turn)
        if decision is not None:
            return decision
    text = t("unsupported.general", turn.language, capabilities=_capabilities(turn.language))
    return _reply(turn, "unsupported", text, confident=False)


def route(messages: Sequence[BaseMessage], *, vocabulary: Vocabulary | None = None) -> PlannerDecision | None:
    """Decide the current turn without calling any tool or model.

    Args:
        messages: The conversation, ending with the user's message.
        vocabulary: The makes and models of the vehicle data; None when the knowledge
            tools are not bound (spec, comparison and recall questions are then declined).

    Returns:
        The decision for the turn, or None when the conversation does not end with
        a user message (the turn is past planning).
    """
    if not messages or not isinstance(messages[-1], HumanMessage):
        return None
    turn = _read_turn(messages, vocabulary)
    return None if turn is None else _plan(turn)


# ---------------------------------------------------------------- wording

_ACRONYMS: Final = frozenset(
    {"USA", "US", "UK", "UAE", "BMW", "GMC", "VW", "AMG", "MINI", "SRT", "BYD", "DS", "MG", "KTM", "GM", "AG"}
)
_SPECIAL_CASE: Final = {"MCLAREN": "McLaren", "DELOREAN": "DeLorean"}
_LETTERS = re.compile(r"[^\W\d_]+")


def _nice(text: str) -> str:
    """Title-case an all-capitals name (`MERCEDES-BENZ` → `Mercedes-Benz`), keeping acronyms."""
    if any(ch.islower() for ch in text):
        return text

    def word(match: re.Match[str]) -> str:
        value = match.group()
        if value in _SPECIAL_CASE:
            return _SPECIAL_CASE[value]
        in_parentheses = match.start() > 0 and text[match.start() - 1] == "("
        if value in _ACRONYMS or (in_parentheses and len(value) <= 4):
            return value
        return value.capitalize()

    return _LETTERS.sub(word, text)


def _name(vehicle: VehicleFacts, lang: Language, *, with_year: bool = True) -> str:
    """Return the vehicle's name, such as `2003 Honda Accord EX-V6` (model and trim as given)."""
    parts = [str(vehicle.model_year) if with_year and vehicle.model_year else None]
    if vehicle.make:
        parts += [_nice(vehicle.make), vehicle.model, vehicle.trim]
    elif vehicle.title and vehicle.title != "Unknown vehicle":
        return vehicle.title
    name = " ".join(p for p in parts if p)
    return name or vehicle.vin


def _decimal(value: float, lang: Language) -> str:
    text = f"{value:.1f}"
    return text if lang == "en" else text.replace(".", ",")


_BODY_KEYS: Final = (
    ("sport utility", "body.suv"),
    ("crossover", "body.crossover"),
    ("minivan", "body.minivan"),
    ("coupe", "body.coupe"),
    ("sedan", "body.sedan"),
    ("hatchback", "body.hatchback"),
    ("pickup", "body.pickup"),
    ("convertible", "body.convertible"),
    ("cabriolet", "body.convertible"),
    ("roadster", "body.roadster"),
    ("wagon", "body.wagon"),
    ("van", "body.van"),
    ("motorcycle", "body.motorcycle"),
    ("bus", "body.bus"),
    ("truck", "body.truck"),
)
_FUEL_KEYS: Final = (
    ("flexible fuel", "fuel.flex"),
    ("ffv", "fuel.flex"),
    ("natural gas", "fuel.cng"),
    ("cng", "fuel.cng"),
    ("petroleum gas", "fuel.lpg"),
    ("lpg", "fuel.lpg"),
    ("propane", "fuel.lpg"),
    ("hydrogen", "fuel.hydrogen"),
    ("fuel cell", "fuel.hydrogen"),
    ("gasoline", "fuel.gasoline"),
    ("diesel", "fuel.diesel"),
    ("electric", "fuel.electric"),
)
_TRANSMISSION_KEYS: Final = (
    ("continuously variable", "trans.cvt"),
    ("cvt", "trans.cvt"),
    ("dual-clutch", "trans.dct"),
    ("dct", "trans.dct"),
    ("automated manual", "trans.amt"),
    ("amt", "trans.amt"),
    ("automatic", "trans.automatic"),
    ("manual", "trans.manual"),
)
# vPIC's "Plant Country" spellings (any case) → catalogue keys; unknown countries are shown as given.
_COUNTRY_KEYS: Final[Mapping[str, str]] = {
    name: f"country.{key}"
    for key, names in {
        "united_states": ("UNITED STATES (USA)", "UNITED STATES", "USA", "US"),
        "canada": ("CANADA",),
        "mexico": ("MEXICO",),
        "brazil": ("BRAZIL",),
        "argentina": ("ARGENTINA",),
        "colombia": ("COLOMBIA",),
        "venezuela": ("VENEZUELA",),
        "germany": ("GERMANY",),
        "united_kingdom": ("UNITED KINGDOM (UK)", "UNITED KINGDOM", "UK", "GREAT BRITAIN"),
        "england": ("ENGLAND",),
        "scotland": ("SCOTLAND",),
        "northern_ireland": ("NORTHERN IRELAND",),
        "france": ("FRANCE",),
        "italy": ("ITALY",),
        "spain": ("SPAIN",),
        "portugal": ("PORTUGAL",),
        "belgium": ("BELGIUM",),
        "netherlands": ("NETHERLANDS", "THE NETHERLANDS", "HOLLAND"),
        "austria": ("AUSTRIA",),
        "switzerland": ("SWITZERLAND",),
        "sweden": ("SWEDEN",),
        "finland": ("FINLAND",),
        "denmark": ("DENMARK",),
        "norway": ("NORWAY",),
        "poland": ("POLAND",),
        "czech_republic": ("CZECH REPUBLIC", "CZECHIA"),
        "slovakia": ("SLOVAKIA", "SLOVAK REPUBLIC"),
        "hungary": ("HUNGARY",),
        "slovenia": ("SLOVENIA",),
        "serbia": ("SERBIA",),
        "romania": ("ROMANIA",),
        "russia": ("RUSSIA", "RUSSIAN FEDERATION"),
        "turkey": ("TURKEY", "TÜRKIYE", "TURKIYE"),
        "south_africa": ("SOUTH AFRICA",),
        "egypt": ("EGYPT",),
        "morocco": ("MOROCCO",),
        "japan": ("JAPAN",),
        "south_korea": ("SOUTH KOREA", "KOREA (SOUTH)", "KOREA, REPUBLIC OF", "REPUBLIC OF KOREA", "KOREA"),
        "china": ("CHINA",),
        "taiwan": ("TAIWAN",),
        "india": ("INDIA",),
        "thailand": ("THAILAND",),
        "indonesia": ("INDONESIA",),
        "malaysia": ("MALAYSIA",),
        "vietnam": ("VIETNAM", "VIET NAM"),
        "philippines": ("PHILIPPINES",),
        "australia": ("AUSTRALIA",),
    }.items()
    for name in names
}
# Metric horsepower (PS, CV, ch) is what readers of these languages expect beside hp.
_METRIC_HP_LANGUAGES: Final = frozenset({"es", "fr", "de"})
_PS_PER_HP: Final = 1.01387


def _vocabulary(value: str | None, keys: Sequence[tuple[str, str]], lang: Language) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    key = next((k for needle, k in keys if needle in lowered), None)
    return t(key, lang) if key else value


def _body(vehicle: VehicleFacts, lang: Language) -> str | None:
    return _vocabulary(vehicle.body_class, _BODY_KEYS, lang)


def _fuel(vehicle: VehicleFacts, lang: Language) -> str | None:
    return _vocabulary(vehicle.fuel_primary, _FUEL_KEYS, lang)


def _is_electric(vehicle: VehicleFacts) -> bool:
    electric_fuel = vehicle.fuel_primary is not None and "electric" in vehicle.fuel_primary.lower()
    bev = vehicle.electrification is not None and vehicle.electrification.upper().startswith("BEV")
    return (electric_fuel or bev) and not vehicle.cylinders and not vehicle.displacement_l


def _horsepower(vehicle: VehicleFacts, lang: Language) -> str | None:
    if vehicle.hp is None:
        return None
    low = round(vehicle.hp)
    high = round(vehicle.hp_to) if vehicle.hp_to and vehicle.hp_to > vehicle.hp else None
    hp = f"{low}–{high}" if high else str(low)
    text = t("engine.hp", lang, hp=hp)
    if lang in _METRIC_HP_LANGUAGES:
        ps_low = round(low * _PS_PER_HP)
        ps = f"{ps_low}–{round(high * _PS_PER_HP)}" if high else str(ps_low)
        text += " / " + t("engine.metric_hp", lang, ps=ps)
    return text


def _hybrid(vehicle: VehicleFacts, lang: Language) -> str | None:
    """Name the hybrid kind ("Strong HEV", "PHEV" in vPIC's electrification), if any."""
    electrification = (vehicle.electrification or "").upper()
    if "PHEV" in electrification or "PLUG-IN" in electrification:
        return t("engine.plug_in_hybrid", lang)
    if "HEV" in electrification:
        return t("engine.hybrid", lang)
    return None


def _fuel_with_hybrid(vehicle: VehicleFacts, lang: Language) -> str | None:
    """Name the fuel as a fact states it: electric, or the fuel with its hybrid kind ("gasoline (hybrid)")."""
    if _is_electric(vehicle):
        return t("fuel.electric", lang)
    fuel = _fuel(vehicle, lang)
    if not fuel:
        return None
    hybrid = _hybrid(vehicle, lang)
    return f"{fuel} ({hybrid})" if hybrid else fuel


def _layout(vehicle: VehicleFacts, lang: Language) -> str | None:
    n = vehicle.cylinders
    if not n:
        return None
    configuration = (vehicle.configuration or "").lower()
    if configuration.startswith("v"):
        return t("engine.v", lang, n=n)
    if configuration.startswith("w"):
        return t("engine.w", lang, n=n)
    if configuration.startswith("in-line") or configuration.startswith("inline"):
        return t("engine.inline", lang, n=n)
    if "opposed" in configuration or "boxer" in configuration:
        return t("engine.flat", lang, n=n)
    return t("engine.cylinders", lang, n=n)


def _engine(vehicle: VehicleFacts, lang: Language) -> str | None:
    layout = _layout(vehicle, lang)
    displacement = _decimal(vehicle.displacement_l, lang) if vehicle.displacement_l else None
    core: str | None
    if layout and displacement:
        core = t("engine.with_displacement", lang, displacement=displacement, layout=layout)
    elif layout:
        core = layout
    elif displacement:
        core = t("engine.displacement", lang, displacement=displacement)
    elif _is_electric(vehicle):
        core = t("engine.electric", lang)
    else:
        core = None
    extras = [e for e in (_horsepower(vehicle, lang),) if e]
    fuel = _fuel(vehicle, lang)
    if fuel and not _is_electric(vehicle) and core is not None:
        extras.append(fuel)
    if vehicle.turbo:
        extras.append(t("engine.turbo", lang))
    if hybrid := _hybrid(vehicle, lang):
        extras.append(hybrid)
    if core is None:
        return ", ".join(extras) or None
    return f"{core} ({', '.join(extras)})" if extras else core


def _transmission(vehicle: VehicleFacts, lang: Language) -> str | None:
    style = _vocabulary(vehicle.transmission_style, _TRANSMISSION_KEYS, lang)
    if style is None:
        return None
    speeds = vehicle.transmission_speeds
    if speeds and style != t("trans.cvt", lang):
        return t("trans.with_speeds", lang, speeds=speeds, style=style)
    return t("trans.plain", lang, style=style)


def _drive(vehicle: VehicleFacts) -> str | None:
    if vehicle.drive_type is None:
        return None
    return vehicle.drive_type.split("/")[0].strip() or None


def _place(vehicle: VehicleFacts, lang: Language) -> str | None:
    country = vehicle.plant_country
    if country is not None:
        key = _COUNTRY_KEYS.get(" ".join(country.upper().split()))
        country = t(key, lang) if key else _nice(country)
    parts = [_nice(p) for p in (vehicle.plant_city, vehicle.plant_state) if p]
    if country:
        parts.append(country)
    return ", ".join(parts) or None


def _details(vehicle: VehicleFacts, lang: Language) -> list[str]:
    place = _place(vehicle, lang)
    drive = _drive(vehicle)
    parts = [
        _body(vehicle, lang),
        _engine(vehicle, lang),
        _transmission(vehicle, lang),
        drive if drive and drive.lower() != "4x2" else None,
        t("decode.built_in", lang, place=place) if place else None,
    ]
    return [p for p in parts if p]


def _summary_sentence(vehicle: VehicleFacts, lang: Language) -> str:
    details = _details(vehicle, lang)
    joined = t("decode.details_sep", lang) + ", ".join(details) if details else ""
    key = "decode.summary" if vehicle.model_year else "decode.summary_no_year"
    return t(key, lang, vehicle=_name(vehicle, lang), details=joined)


def _fact(vehicle: VehicleFacts, field: str, lang: Language) -> str:
    """Answer one field: in its own sentence (`fact.<field>`) where it has one, else generically."""
    name = _name(vehicle, lang)
    if field == "summary":
        return _summary_sentence(vehicle, lang)
    if field == "year" and vehicle.model_year:
        return t("fact.year", lang, vehicle=_name(vehicle, lang, with_year=False), year=vehicle.model_year)
    if field == "make" and vehicle.make:
        return t("fact.make", lang, vehicle=name, make=_nice(vehicle.make))
    if field == "plant" and (place := _place(vehicle, lang)):
        return t("fact.plant", lang, vehicle=name, place=place)
    if field == "doors" and vehicle.doors:
        return t("fact.doors", lang, vehicle=name, doors=vehicle.doors)
    if field == "hp" and (hp := _horsepower(vehicle, lang)):
        return t("fact.hp", lang, vehicle=name, hp=hp)
    if field == "fuel" and (fuel := _fuel_with_hybrid(vehicle, lang)):
        return t("fact.fuel", lang, vehicle=name, fuel=fuel)
    value = {  # no entry for the fields above: when they are missing, so is their value
        "engine": _engine(vehicle, lang),
        "transmission": _transmission(vehicle, lang),
        "drive": _drive(vehicle),
        "body": _body(vehicle, lang),
        "trim": vehicle.trim,
        "model": vehicle.model,
        "weight": vehicle.gvwr,
    }.get(field)
    field_name = t(f"field.{field}", lang)
    if value is None:
        return t("fact.missing", lang, vehicle=name, field=field_name)
    return t("fact.generic", lang, vehicle=name, field=field_name, value=value)


def _facts(vehicle: VehicleFacts, fields: Sequence[str], lang: Language) -> list[str]:
    return [_fact(vehicle, field, lang) for field in fields]


# vPIC error codes (the number before ":" in a warning) → catalogue keys.
_WARNING_KEYS: Final = {
    "1": "warn.check_digit",
    "2": "warn.corrected",
    "3": "warn.corrected",
    "4": "warn.corrected",
    "5": "warn.errors",
    "6": "warn.incomplete",
    "7": "warn.manufacturer",
    "8": "warn.no_data",
    "9": "warn.off_road",
    "10": "warn.off_road",
    "11": "warn.model_year",
    "12": "warn.model_year",
    "14": "warn.partial",
    "400": "warn.invalid_chars",
}


def _warning_texts(
    warnings: Sequence[str], lang: Language, *, skip: frozenset[str] = frozenset()
) -> list[str]:
    texts: list[str] = []
    for warning in warnings:
        code, _, message = warning.partition(":")
        code = code.strip()
        if code == "0" or code in skip:
            continue
        key = _WARNING_KEYS.get(code)
        text = t(key, lang) if key else message.strip() or warning
        if text not in texts:
            texts.append(text)
    return texts


def _did_you_mean(suggestions: Sequence[str], lang: Language) -> str | None:
    if not suggestions:
        return None
    return t("decode.did_you_mean", lang, options=join_list(list(suggestions[:3]), lang))


def _fallback_note(vehicle: VehicleFacts, lang: Language) -> str | None:
    if not vehicle.fallback:
        return None
    if vehicle.provider == "offline":
        return t("decode.fallback_offline", lang)
    return t("decode.fallback_other", lang, provider=vehicle.provider or "?")


# ---------------------------------------------------------------- answers from tool results


def _wait(seconds: float, lang: Language) -> str:
    whole = max(1, math.ceil(seconds))
    if whole < 120:
        return t_count("wait.seconds", lang, whole)
    if whole < 2 * 3600:
        return t_count("wait.minutes", lang, math.ceil(whole / 60))
    return t_count("wait.hours", lang, math.ceil(whole / 3600))


_INVALID_VIN_REASONS: Final = frozenset(
    {"empty", "too_short", "too_long", "forbidden_letters", "invalid_characters"}
)
_CLIP = 40


def _error_text(data: Mapping[str, object], vin: str | None, lang: Language, year: int | None = None) -> str:
    """Render a tool error in `lang` from its code and reason (never its English message)."""
    code = _text_value(data, "error") or "unknown"
    shown = (vin or _text_value(data, "input") or "").strip()
    shown = shown if len(shown) <= _CLIP else shown[:_CLIP] + "…"
    sentences: list[str] = []
    if code == "invalid_vin":
        reason = _text_value(data, "reason")
        folded = normalise(shown)
        forbidden = sorted({ch for ch in folded if ch in "IOQ"})
        key = f"error.invalid_vin.{reason}" if reason in _INVALID_VIN_REASONS else "error.invalid_vin"
        sentences.append(
            t(
                key,
                lang,
                vin=shown,
                length=len(folded),
                letters=join_list(forbidden, lang, conjunction="list.and"),
            )
        )
        if reason == "too_short" and len(folded) >= 11:
            sentences.append(t("error.partial_hint", lang))
    elif code == "invalid_input" and year is not None:
        sentences.append(t("error.invalid_year", lang, year=year, vin=shown))
    elif code == "rate_limited":
        retry_after = _number(data, "retry_after")
        sentences.append(t("error.rate_limited", lang, wait=_wait(retry_after or 60.0, lang)))
    elif code in {
        "invalid_input",
        "not_allowed",
        "provider_unavailable",
        "bad_provider_response",
        "vin_not_in_conversation",
    }:
        sentences.append(t(f"error.{code}", lang))
    else:
        sentences.append(t("error.unknown", lang))
    if suggestion := _did_you_mean(_strings(data, "suggestions"), lang):
        sentences.append(suggestion)
    return " ".join(sentences)


def _vehicle_text(vehicle: VehicleFacts, lang: Language, focus: Sequence[str]) -> str:
    if not vehicle.valid:
        reasons = _warning_texts(vehicle.warnings, lang) or [t("warn.unknown", lang)]
        sentences = [t("decode.invalid", lang, vin=vehicle.vin, reasons="; ".join(reasons))]
        if suggestion := _did_you_mean(vehicle.suggestions, lang):
            sentences.append(suggestion)
    else:
        sentences = _facts(vehicle, [f for f in focus if f != "summary"], lang)
        sentences.append(_summary_sentence(vehicle, lang))
        if not vehicle.check_digit_valid:
            sentences.append(t("decode.check_digit", lang))
            if suggestion := _did_you_mean(vehicle.suggestions, lang):
                sentences.append(suggestion)
        notes = _warning_texts(vehicle.warnings, lang, skip=frozenset({"1"}))
        if notes:
            sentences.append(t("decode.note", lang, warning="; ".join(notes)))
    if note := _fallback_note(vehicle, lang):
        sentences.append(note)
    return " ".join(sentences)


def _year_arg(args: Mapping[str, object]) -> int | None:
    return _integer(args, "model_year")


def _compose_decode(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    vin = _text_value(result.args, "vin")
    if result.data is None:
        return t("error.unknown", lang)
    if "error" in result.data:
        return _error_text(result.data, vin, lang, _year_arg(result.args))
    return _vehicle_text(VehicleFacts.from_summary(result.data), lang, focus)


def _short_line(vehicle: VehicleFacts, lang: Language) -> str:
    if not vehicle.valid:
        reasons = _warning_texts(vehicle.warnings, lang) or [t("warn.unknown", lang)]
        return t("decode.invalid", lang, vin=vehicle.vin, reasons="; ".join(reasons))
    layout = _layout(vehicle, lang)
    details = [d for d in (_body(vehicle, lang), layout, _place(vehicle, lang)) if d]
    summary = _name(vehicle, lang) + (f" ({', '.join(details)})" if details else "")
    if not vehicle.check_digit_valid:
        summary += " — " + t("multi.check_digit", lang)
    return t("multi.line", lang, vin=vehicle.vin, summary=summary)


def _failure(data: Mapping[str, object] | None, lang: Language) -> str:
    """Say why a tool result has no answer: unreadable (None), or the error it reports."""
    return t("error.unknown", lang) if data is None else _error_text(data, None, lang)


def _compose_decode_many(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _failure(data, lang)
    rows = _list_of_objects(data, "results")
    lines = [t("multi.header", lang, count=len(rows))]
    fallback: str | None = None
    for row in rows:
        if "error" in row:
            lines.append("- " + _error_text(row, _text_value(row, "input"), lang))
            continue
        vehicle = VehicleFacts.from_summary(row)
        lines.append("- " + _short_line(vehicle, lang))
        fallback = fallback or _fallback_note(vehicle, lang)
    if fallback:
        lines.append(fallback)
    return "\n".join(lines)


def _list_of_objects(data: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _compose_history(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _failure(data, lang)
    rows = _list_of_objects(data, "history")
    own_only = [t("history.own_only", lang)] if OTHER_USERS_FOCUS in focus else []
    if not rows:
        return " ".join([*own_only, t("history.empty", lang)])
    lines = [*own_only, t("history.header", lang)]
    for row in rows:
        vin = _text_value(row, "vin") or "?"
        date = (_text_value(row, "decoded_at") or "")[:10]
        title = _text_value(row, "title")
        if row.get("valid") is False or not title or title == "Unknown vehicle":
            lines.append("- " + t("history.line_invalid", lang, vin=vin, date=date))
        else:
            lines.append("- " + t("history.line", lang, vehicle=_nice_title(title), vin=vin, date=date))
    return "\n".join(lines)


def _nice_title(title: str) -> str:
    """Title-case the make in a stored title (`2003 HONDA Accord` → `2003 Honda Accord`)."""
    words = title.split(" ")
    for i, word in enumerate(words):
        if word.isupper() and any(ch.isalpha() for ch in word):
            words[i] = _nice(word)
            break
    return " ".join(words)


def _compose_unknown(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    if result.data is not None and "error" in result.data:
        return _error_text(result.data, None, lang)
    return t("result.unsupported", lang)


_JOB_TEXT: Final[Mapping[str, Mapping[Language, str]]] = {
    "started": {
        "en": "Bulk job {job_id} started: {total} VINs to decode ({invalid} invalid lines, {duplicates} "
        "duplicates). Ask me for the status of job {job_id} at any time.",
        "es": "Trabajo masivo {job_id} iniciado: {total} VIN por decodificar ({invalid} líneas no válidas, "
        "{duplicates} duplicados). Pregúntame por el estado del trabajo {job_id} cuando quieras.",
        "fr": "Traitement en masse {job_id} lancé : {total} VIN à décoder ({invalid} lignes invalides, "
        "{duplicates} doublons). Demandez-moi l'état du traitement {job_id} quand vous voulez.",
        "de": "Massenauftrag {job_id} gestartet: {total} FIN zu entschlüsseln ({invalid} ungültige Zeilen, "
        "{duplicates} Duplikate). Fragen Sie jederzeit nach dem Status von Auftrag {job_id}.",
    },
    "status": {
        "en": "Job {job_id} is {status}: {done} of {total} decoded, {failed} not decodable ({percent}%).",
        "es": "El trabajo {job_id} está {status}: {done} de {total} decodificados, {failed} no "
        "decodificables ({percent} %).",
        "fr": "Le traitement {job_id} est {status} : {done} sur {total} décodés, {failed} non décodables "
        "({percent} %).",
        "de": "Auftrag {job_id} ist {status}: {done} von {total} entschlüsselt, {failed} nicht "
        "entschlüsselbar ({percent} %).",
    },
}


def _compose_job(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _failure(data, lang)
    progress = _mapping(data, "progress")
    params = {
        "job_id": _text_value(data, "job_id") or "?",
        "status": _text_value(data, "status") or "?",
        "total": _integer(progress, "total") or 0,
        "done": _integer(progress, "done") or 0,
        "failed": _integer(progress, "failed") or 0,
        "percent": _number(progress, "percent") or 0,
        "invalid": _integer(data, "invalid") or 0,
        "duplicates": _integer(data, "duplicates") or 0,
    }
    key = "started" if result.name == START_BULK_DECODE else "status"
    return _JOB_TEXT[key][lang].format(**params)


# ---------------------------------------------------------------- answers from the knowledge tools

MAX_LISTED_CONFIGURATIONS: Final = 8
MAX_LISTED_CAMPAIGNS: Final = 10
MAX_DIFFERENCES: Final = 3  # the comparison lists the largest first
_UNKNOWN_COMPONENTS: Final = frozenset({"UNKNOWN OR OTHER", "UNKNOWN", "OTHER"})
# The descriptive rows a comparison's answer shows beside the numbers.
_COMPARED_TEXT: Final = frozenset({"engine"})
_SUMMARY_CHARS: Final = 220
_MPG_FACTS: Final = frozenset(
    {"city_mpg", "highway_mpg", "combined_mpg", "city_mpg_alt", "highway_mpg_alt", "combined_mpg_alt"}
)
_UNITS: Final[Mapping[str, str]] = {
    "mpg": "mpg",
    "g/mi": "g/mi",
    "mi": "mi",
    "kWh/100 mi": "kWh/100 mi",
    "h": "h",
    "cu ft": "cu ft",
    "hp": "hp",
    "lb": "lb",
}
_THOUSANDS: Final[Mapping[Language, str]] = {"en": ",", "es": ".", "fr": "\u202f", "de": "."}


def _format_number(value: float, lang: Language, *, grouped: bool = False) -> str:
    if value == int(value):
        text = f"{int(value):,}" if grouped else str(int(value))
        return text.replace(",", _THOUSANDS[lang]) if grouped else text
    text = f"{value:.1f}"
    return text if lang == "en" else text.replace(".", ",")


def _fact_label(key: str, lang: Language) -> str:
    if f"specfact.{key}" in MESSAGES:
        return t(f"specfact.{key}", lang)
    fact = FACTS_BY_KEY.get(key)
    return fact.label if fact else key.replace("_", " ")


def _fact_value(key: str, value: object, lang: Language, *, electric: bool = False) -> str | None:
    """Write one fact's value with its unit (`30 mpg`, `$1,500`, `28,5 mpg`), or None when it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
        return None
    fact = FACTS_BY_KEY.get(key)
    unit = fact.unit if fact else ""
    if unit == "USD":
        return t("unit.usd", lang, value=_format_number(float(value), lang, grouped=True))
    number = _format_number(float(value), lang)
    if key in _MPG_FACTS and electric:
        return f"{number} MPGe"
    shown_unit = _UNITS.get(unit, unit)
    return f"{number} {shown_unit}".strip()


def _is_electric_config(row: Mapping[str, object]) -> bool:
    fuel = (_text_value(row, "fuel") or "").lower()
    return "electric" in fuel and "/" not in fuel


def _config_facts(row: Mapping[str, object], keys: Sequence[str], lang: Language) -> list[str]:
    facts = _mapping(row, "facts")
    electric = _is_electric_config(row)
    shown: list[str] = []
    for key in keys:
        raw = facts.get(key, row.get(key))
        value = _fact_value(key, raw, lang, electric=electric)
        if value is not None:
            shown.append(f"{_fact_label(key, lang)} {value}")
    return shown


def _config_name(row: Mapping[str, object]) -> str:
    name = _text_value(row, "model") or _text_value(row, "title") or "?"
    configuration = _text_value(row, "configuration")
    return f"{name} ({configuration})" if configuration else name


def _sources_sentence(data: Mapping[str, object], lang: Language) -> str | None:
    rows = _list_of_objects(data, "sources")
    parts: list[str] = []
    for row in rows:
        dataset = _text_value(row, "dataset")
        if dataset is None:
            continue
        date = _text_value(row, "data_date")
        part = t("spec.source_line", lang, dataset=dataset, date=date) if date else dataset
        if part not in parts:
            parts.append(part)
    return t("spec.source", lang, sources="; ".join(parts)) if parts else None


def _knowledge_error(data: Mapping[str, object] | None, args: Mapping[str, object], lang: Language) -> str:
    """Say why a knowledge tool's result has no answer: unreadable (None), or the error it reports."""
    if data is None:
        return t("error.unknown", lang)
    code = _text_value(data, "error") or "unknown"
    vehicle = _vehicle_of_args(args)
    if code in ("vehicle_not_found", "not_found") and vehicle is not None:
        years = _text_value(data, "years")
        if _text_value(data, "reason") == "year_out_of_range" and years:
            model = VehicleArgs(None, vehicle.make, vehicle.model).title()
            return t("spec.year_outside", lang, vehicle=vehicle.title(), model=model, years=years)
        text = t("spec.not_found", lang, vehicle=vehicle.title())
        if suggestion := _did_you_mean(_strings(data, "suggestions"), lang):
            text += " " + suggestion
        return text
    if code == "knowledge_unavailable":
        return t("spec.unavailable_tools", lang)
    if code == "vehicle_not_in_conversation":
        return t("spec.ask_vehicle", lang)
    if code in ("invalid_input", "unsupported_comparison"):
        return t("spec.error", lang, message=_text_value(data, "message") or "")
    return _error_text(data, None, lang)


def _with_sources(lines: Sequence[str], data: Mapping[str, object], lang: Language) -> str:
    """Join an answer's lines, closing with the sentence that cites the data's sources (when it has some)."""
    source = _sources_sentence(data, lang)
    return "\n".join([*lines, source] if source else lines)


def _focus_keys(focus: Sequence[str], configurations: Sequence[Mapping[str, object]]) -> list[str]:
    keys = [f for f in focus if f in FACTS_BY_KEY or f in DESCRIPTIVE]
    if keys:
        return keys
    present = {k for row in configurations for k in _mapping(row, "facts")}
    return [k for k in _DEFAULT_FACTS if k in present] or ["combined_mpg"]


def _compose_specs(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _knowledge_error(data, result.args, lang)
    vehicle = _text_value(data, "vehicle") or (
        v.title() if (v := _vehicle_of_args(result.args)) is not None else "?"
    )
    rows = _list_of_objects(data, "configurations")
    total = _integer(data, "total") or len(rows)
    if not rows:
        return t("spec.not_found", lang, vehicle=vehicle)
    keys = _focus_keys(focus, rows)
    lines = [t_count("spec.header", lang, total, vehicle=vehicle)]
    without: list[str] = []
    for row in rows[:MAX_LISTED_CONFIGURATIONS]:
        shown = _config_facts(row, keys, lang)
        values = ", ".join(shown) if shown else t("spec.no_value", lang)
        lines.append(f"- {_config_name(row)}: {values}")
        if not shown:
            without.append(_config_name(row))
    if total > MAX_LISTED_CONFIGURATIONS:
        lines.append(t_count("spec.more", lang, total - min(len(rows), MAX_LISTED_CONFIGURATIONS)))
    if len(without) == len(rows[:MAX_LISTED_CONFIGURATIONS]):
        fields = join_list([_fact_label(k, lang) for k in keys], lang, conjunction="list.and")
        lines = [t("spec.none_for_fact", lang, fields=fields, vehicle=vehicle)]
    asked_unavailable = [f[len(UNAVAILABLE_PREFIX) :] for f in focus if f.startswith(UNAVAILABLE_PREFIX)]
    unavailable = [
        k
        for k in dict.fromkeys([*_strings(data, "unavailable"), *asked_unavailable])
        if f"unavailable.{k}" in MESSAGES
    ]
    if unavailable:
        names = join_list([t(f"unavailable.{k}", lang) for k in unavailable], lang, conjunction="list.and")
        lines.append(t("spec.unavailable", lang, fields=names))
    return _with_sources(lines, data, lang)


def _compose_search(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _knowledge_error(data, result.args, lang)
    hits = _list_of_objects(data, "hits")
    if not hits:
        return t("search.none", lang)
    keys = _focus_keys(focus, hits)
    lines = [t("search.header", lang)]
    for hit in hits:
        title = _text_value(hit, "title") or _config_name(hit)
        shown = _config_facts(hit, keys, lang)
        lines.append(f"- {title}" + (f": {', '.join(shown)}" if shown else ""))
    return _with_sources(lines, data, lang)


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = flat.find(". ")
    sentence = flat if end < 0 else flat[: end + 1]
    return sentence if len(sentence) <= _SUMMARY_CHARS else sentence[: _SUMMARY_CHARS - 1] + "…"


def _compose_recalls(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _knowledge_error(data, result.args, lang)
    # The user's spelling of the vehicle (NHTSA writes models in capitals: "MODEL Y").
    asked = _vehicle_of_args(result.args)
    vehicle = asked.title() if asked is not None else (_text_value(data, "vehicle") or "?")
    campaigns = _list_of_objects(data, "campaigns")
    if not campaigns:
        return t("recall.none", lang, vehicle=vehicle)
    lines = [t_count("recall.header", lang, len(campaigns), vehicle=vehicle)]
    for row in campaigns[:MAX_LISTED_CAMPAIGNS]:
        campaign = _text_value(row, "campaign") or "?"
        component = _text_value(row, "component")
        if component is not None and component.upper() in _UNKNOWN_COMPONENTS:
            component = None
        summary = _first_sentence(_text_value(row, "summary") or "")
        head = f"{campaign} ({component})" if component else campaign
        lines.append(f"- {head}: {summary}" if summary else f"- {head}")
    if len(campaigns) > MAX_LISTED_CAMPAIGNS:
        lines.append(t_count("recall.more", lang, len(campaigns) - MAX_LISTED_CAMPAIGNS))
    if note := t("recall.english", lang):
        lines.append(note)
    return _with_sources(lines, data, lang)


def _compose_compare(result: ToolResult, lang: Language, focus: Sequence[str]) -> str:
    data = result.data
    if data is None or "error" in data:
        return _knowledge_error(data, result.args, lang)
    names = _strings(data, "vehicles")
    short = _strings(data, "short") or names
    if len(set(short)) < len(short):
        short = names
    lines = [t("compare.header", lang, vehicles=join_list(list(names), lang, conjunction="list.and"))]
    for row in _list_of_objects(data, "rows"):
        key = _text_value(row, "fact") or "?"
        values = row.get("values")
        if not isinstance(values, list) or not values:
            continue
        numeric = any(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if not numeric and key not in _COMPARED_TEXT:
            continue
        cells: list[str] = []
        for name, value in zip(short, values, strict=False):
            shown = _range_value(key, value, lang)
            cells.append(f"{name} {shown}")
        if cells:
            lines.append(t("compare.row", lang, field=_fact_label(key, lang), values="; ".join(cells)))
    better = [
        t("compare.better", lang, field=_fact_label(_text_value(d, "fact") or "?", lang), vehicle=winner)
        for d in _list_of_objects(data, "differences")[:MAX_DIFFERENCES]
        if (winner := _text_value(d, "better"))
    ]
    if better:
        lines.append(t("compare.differences", lang) + " " + " ".join(better))
    missing = _strings(data, "missing")
    if missing:
        lines.append(
            t("compare.missing", lang, vehicles=join_list(list(missing), lang, conjunction="list.and"))
        )
    if data.get("chart") is True:
        lines.append(t("compare.chart", lang))
    return _with_sources(lines, data, lang)


def _range_value(key: str, value: object, lang: Language) -> str:
    """Write a comparison cell: one value, or the low–high of the vehicle's configurations."""
    if isinstance(value, dict):
        low, high = value.get("min"), value.get("max")
        low_text = _fact_value(key, low, lang)
        high_text = _fact_value(key, high, lang)
        if low_text and high_text and low != high:
            return f"{low_text}–{high_text}"
        return low_text or high_text or t("spec.no_value", lang)
    return _fact_value(key, value, lang) or t("spec.no_value", lang)


Composer = Callable[[ToolResult, Language, Sequence[str]], str]
"""Write the answer for one tool result, in a language, emphasising the focus fields."""
ANSWER_COMPOSERS: Final[Mapping[str, Composer]] = {
    DECODE_VIN: _compose_decode,
    DECODE_VINS: _compose_decode_many,
    GET_VIN_HISTORY: _compose_history,
    START_BULK_DECODE: _compose_job,
    GET_JOB_STATUS: _compose_job,
    GET_SPECS: _compose_specs,
    SEARCH_SPECS: _compose_search,
    COMPARE_VEHICLES: _compose_compare,
    FIND_RECALLS: _compose_recalls,
}


def _answer(turn: Turn) -> tuple[str, str]:
    """Compose the final answer from this turn's tool results; return (intent, text)."""
    decision = _plan(turn)
    planned = {call["name"] for call in decision.tool_calls}
    names = [r.name for r in turn.results]
    intent = decision.intent if planned and planned <= set(names) else (names[0] if names else "unsupported")
    if not turn.results:
        return intent, t("error.unknown", turn.language)
    knowledge_focus = _knowledge_focus(turn)
    parts = [
        ANSWER_COMPOSERS.get(result.name, _compose_unknown)(
            result,
            turn.language,
            knowledge_focus if result.name in KNOWLEDGE_TOOLS else decision.focus,
        )
        for result in turn.results
    ]
    return intent, "\n\n".join(parts)


def _knowledge_focus(turn: Turn) -> tuple[str, ...]:
    """Return the facts the user asked about, for the answers of the knowledge tools."""
    if turn.vocabulary is None:
        return ()
    query = parse_question(turn.text.raw, turn.vocabulary)
    asked = tuple(f for f in query.facts if f in FACTS_BY_KEY or f in DESCRIPTIVE)
    return asked + tuple(f"{UNAVAILABLE_PREFIX}{k}" for k in query.unavailable)


def _decoded_now(turn: Turn) -> tuple[VehicleFacts, ...]:
    """Return the vehicles this turn's decodes found, in the order the VINs were written."""
    found: list[VehicleFacts] = []
    for result in turn.results:
        if result.data is None or "error" in result.data:
            continue
        if result.name == DECODE_VIN:
            found.append(VehicleFacts.from_summary(result.data))
        elif result.name == DECODE_VINS:
            found.extend(_row_facts(row) for row in _list_of_objects(result.data, "results"))
    return tuple(v for v in found if v.valid and v.make and v.model)


def _asks_comparison(text: MessageText) -> bool:
    """Tell whether a message asks to compare ("vs", "compara", "différence", "besser")."""
    return _COMPARE_WORDS.found_in(text) or _COMPARE_TOPIC.found_in(text)


def _chained_call(turn: Turn) -> PlannerDecision | None:
    """After a decode in this turn, look up the decoded vehicles when the message asked about them.

    A VIN always decodes first (`_vins_rule`); the look-up the message asked for then takes the
    decoded year, make and model (the tools accept a vehicle a decode named, see
    `agent.toolkit.vehicle_named`):

    - "Recalls for 1FM5K7D88DGA93688?": `find_recalls` for the decoded vehicle;
    - "Compare 1FADP3F21EL321063 with 2014 Honda Civic", "<VIN> vs <VIN>": `compare_vehicles`
      with the decoded vehicles and the ones named;
    - "What are the specs of <VIN>?", "combined mpg of <VIN>?": `get_specs` for the decoded vehicle.

    At most one look-up follows a decode, so the loop ends. Returns a reply instead of a call when
    the look-up needs something the message lacks (the year of the vehicle to compare with): the
    answer then gives the decode and asks for it.
    """
    vocabulary = turn.vocabulary
    if vocabulary is None or {r.name for r in turn.results} & KNOWLEDGE_TOOLS:
        return None
    decoded = _decoded_now(turn)
    if not decoded:
        return None
    refs = [VehicleArgs(v.model_year, v.make or "", v.model or "") for v in decoded]
    query = parse_question(turn.text.raw, vocabulary)
    if _asks_comparison(turn.text):
        named = [
            (m, args)
            for m in query.vehicles
            if (args := _mention_args(m, vocabulary)) is not None and not _is_decoded(args, decoded)
        ]
        if len(refs) + len(named) >= 2:
            for mention, vehicle in named:
                if (answer := _check_year(turn, vehicle, mention)) is not None:
                    return answer
            vehicles = [v.args() for v in [*refs, *(args for _, args in named)][:MAX_COMPARED]]
            return _call(turn, "compare", COMPARE_VEHICLES, {"vehicles": vehicles})
    if len(refs) != 1:
        return None
    vehicle = refs[0]
    if query.recalls or _RECALL_WORDS.found_in(turn.text):
        return _call(turn, "recalls", FIND_RECALLS, vehicle.args())
    wanted = tuple(
        f for f in query.facts if f in FACTS_BY_KEY and f not in _DECODE_FACTS and f != "horsepower"
    )
    if wanted or _SPEC_SHEET_WORDS.found_in(turn.text):
        return _call(turn, "specs", GET_SPECS, vehicle.args(), focus=wanted or _DEFAULT_FACTS)
    return None


# ---------------------------------------------------------------- the chat model


@dataclass(frozen=True, slots=True)
class _Outcome:
    intent: str
    language: Language
    text: str
    tool_calls: tuple[ToolCall, ...]

    @property
    def metadata(self) -> dict[str, Any]:
        return {"planner": PLANNER_NAME, "language": self.language, "intent": self.intent}


def _respond(messages: Sequence[BaseMessage], vocabulary: Vocabulary | None = None) -> _Outcome:
    turn = _read_turn(messages, vocabulary)
    if turn is None:
        language = _system_language(messages) or "en"
        return _Outcome("help", language, _help(language), ())
    if turn.answered:
        chained = _chained_call(turn)
        if chained is not None and chained.tool_calls:
            return _Outcome(chained.intent, chained.language, "", chained.tool_calls)
        intent, text = _answer(turn)
        if chained is not None and chained.reply:
            text = f"{text}\n\n{chained.reply}"
        return _Outcome(intent, turn.language, text, ())
    decision = _plan(turn)
    return _Outcome(decision.intent, decision.language, decision.reply or "", decision.tool_calls)


_STREAM_PIECE = re.compile(r"\S+\s*|\s+")


def token_pieces(text: str) -> list[str]:
    """Split an answer into the pieces the planner streams (a word and its trailing space)."""
    return _STREAM_PIECE.findall(text) or [""]


def _chunks(outcome: _Outcome) -> list[ChatGenerationChunk]:
    if outcome.tool_calls:
        calls = [
            tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(outcome.tool_calls)
        ]
        message = AIMessageChunk(
            content="", tool_call_chunks=calls, response_metadata=outcome.metadata, chunk_position="last"
        )
        return [ChatGenerationChunk(message=message)]
    pieces = token_pieces(outcome.text)
    chunks = [ChatGenerationChunk(message=AIMessageChunk(content=piece)) for piece in pieces[:-1]]
    last = AIMessageChunk(content=pieces[-1], response_metadata=outcome.metadata, chunk_position="last")
    chunks.append(ChatGenerationChunk(message=last))
    return chunks


VocabularyLoader = Callable[[], Awaitable[Vocabulary | None]]
"""Return the makes and models of the vehicle data (the knowledge capability caches them)."""
_EMPTY_RETRY_S: Final = 60.0


class OfflinePlanner(BaseChatModel):
    """A deterministic chat model that plans tool calls and writes answers by rules.

    It needs no key, no network and no model weights; the same conversation always
    gets the same answer. Every message it returns carries
    `response_metadata = {"planner": "offline", "language": ..., "intent": ...}`.

    With a `vocabulary_loader` (given when the knowledge tools are bound) it also plans
    spec, comparison and recall questions; the vocabulary is loaded on the first
    asynchronous call and kept, and an empty one (nothing ingested yet) is asked for
    again at most once a minute.
    """

    vocabulary_loader: VocabularyLoader | None = None
    _vocabulary: Vocabulary | None = PrivateAttr(default=None)
    _empty_since: float | None = PrivateAttr(default=None)

    def current_vocabulary(self) -> Vocabulary | None:
        """Return the vocabulary loaded so far (None before the first load, or when the data is empty)."""
        return self._vocabulary

    async def load_vocabulary(self) -> Vocabulary | None:
        """Load the vocabulary unless it is loaded; return it (None without knowledge data)."""
        if self._vocabulary is not None or self.vocabulary_loader is None:
            return self._vocabulary
        now = time.monotonic()
        if self._empty_since is not None and now - self._empty_since < _EMPTY_RETRY_S:
            return None
        vocabulary = await self.vocabulary_loader()
        if vocabulary is None or not vocabulary.makes:
            self._empty_since = now
            return None
        self._vocabulary = with_aliases(vocabulary)
        return self._vocabulary

    @property
    def _llm_type(self) -> str:
        return "vinbot-offline-planner"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"planner": PLANNER_NAME}

    def bind_tools(
        self,
        tools: Sequence[builtins.dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Return the planner itself: it knows the tools by name.

        Args:
            tools: The tools of the graph (ignored).
            tool_choice: Ignored.
            **kwargs: Ignored.

        Returns:
            This planner.
        """
        return self

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """Plan the turn or answer it from its tool results, with the vocabulary loaded so far.

        The same message `ainvoke` returns, without the chat-model machinery (callbacks,
        run managers): the direct offline turns (`agent.direct`) call this.
        """
        outcome = _respond(messages, self._vocabulary)
        return AIMessage(
            content=outcome.text, tool_calls=list(outcome.tool_calls), response_metadata=outcome.metadata
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Planning takes microseconds: no thread hop.
        await self.load_vocabulary()
        return self._generate(messages, stop)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(_respond(messages, self._vocabulary)):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await self.load_vocabulary()
        for chunk in _chunks(_respond(messages, self._vocabulary)):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


__all__ = [
    "ANSWER_COMPOSERS",
    "COMPARE_VEHICLES",
    "EXAMPLE_VIN",
    "FIND_RECALLS",
    "GET_SPECS",
    "INTENT_RULES",
    "KNOWLEDGE_TOOLS",
    "MAX_VINS_PER_TOOL_CALL",
    "PLANNER_NAME",
    "SEARCH_SPECS",
    "Composer",
    "IntentRule",
    "MessageText",
    "OfflinePlanner",
    "PlannerDecision",
    "ToolResult",
    "Turn",
    "VehicleArgs",
    "VehicleFacts",
    "VocabularyLoader",
    "detect_language",
    "route",
    "token_pieces",
    "with_aliases",
]
