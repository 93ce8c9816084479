"""Eval cases and the scorers that grade one answer against them.

A case is one JSONL line of a dataset (`evals/datasets/*.jsonl`, described in
`evals/README.md`): the user's turns, the expected tool trajectory, facts that
must (and strings that must not) appear in the answer, whether the answer must
be a refusal, and the answer's language.

Every scorer is a pure function returning a `Score`: a value in 0..1 and a
reason a person can act on. A case passes when every scorer that applies to it
scores 1.0.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.domain.names import make_key, model_key
from tools.domain.vin import normalise

MatchMode = Literal["strict", "unordered", "subset", "superset"]
Language = Literal["en", "es", "fr", "de"]

ANY = "*"  # an expected argument value that matches any value (the key must be present)
REGEX_PREFIX = "re:"  # a fact or absent string starting with this is a regular expression

TOOL_CHOICE = "tool_choice"
TRAJECTORY = "trajectory"
FACTS = "facts"
ABSENT = "absent"
REFUSAL = "refusal"
LANGUAGE = "language"
SCORERS = (TOOL_CHOICE, TRAJECTORY, FACTS, ABSENT, REFUSAL, LANGUAGE)


# ---------------------------------------------------------------- cases


class ExpectedCall(BaseModel):
    """One expected tool call. `args` lists only the arguments that matter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class Expected(BaseModel):
    """What a good answer to the case's last turn looks like."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trajectory: tuple[ExpectedCall, ...] = ()
    match: MatchMode = "strict"
    facts: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    refusal: bool | None = None  # None: not scored (either a refusal or an answer is fine)
    language: Language | None = None

    @field_validator("facts", "absent")
    @classmethod
    def _regexes_compile(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value.startswith(REGEX_PREFIX):
                try:
                    re.compile(value[len(REGEX_PREFIX) :])
                except re.error as e:
                    raise ValueError(f"{value!r} is not a valid regular expression: {e}") from e
            elif not value.strip():
                raise ValueError("an empty fact or absent string matches everything")
        return values

    @model_validator(mode="after")
    def _refusal_calls_no_tool(self) -> Expected:
        if self.refusal and self.trajectory:
            raise ValueError("a refusal makes no tool call, so its trajectory must be empty")
        return self


class Case(BaseModel):
    """One eval case: turns in one conversation; the last turn is graded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    turns: tuple[str, ...] = Field(min_length=1)
    expected: Expected
    tags: tuple[str, ...] = ()
    user_language: Language | None = Field(
        None, description="The asker's own language setting (a Telegram language_code), if any."
    )
    note: str | None = None

    @field_validator("turns")
    @classmethod
    def _turns_not_blank(cls, turns: tuple[str, ...]) -> tuple[str, ...]:
        if any(not t.strip() for t in turns):
            raise ValueError("a turn is blank")
        return turns


# ---------------------------------------------------------------- observations and scores


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the assistant made while answering the graded turn."""

    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one case."""

    name: str
    value: float
    reason: str

    @property
    def passed(self) -> bool:
        """True when the scorer is fully satisfied."""
        return self.value >= 1.0


# ---------------------------------------------------------------- trajectory


def score_tool_choice(
    expected: Sequence[ExpectedCall], actual: Sequence[ToolCall], mode: MatchMode = "strict"
) -> Score:
    """Score which tools were called (names only), in `mode`."""
    return _score_calls(TOOL_CHOICE, expected, actual, mode, with_args=False)


def score_trajectory(
    expected: Sequence[ExpectedCall], actual: Sequence[ToolCall], mode: MatchMode = "strict"
) -> Score:
    """Score the tool calls with their arguments, in `mode`.

    Modes, as in agentevals: `strict` wants the same calls in the same order;
    `unordered` the same calls in any order; `subset` allows only expected calls
    (fewer, or none, is fine); `superset` wants every expected call (more is fine).
    """
    return _score_calls(TRAJECTORY, expected, actual, mode, with_args=True)


def call_matches(expected: ExpectedCall, actual: ToolCall, *, with_args: bool = True) -> bool:
    """Tell whether `actual` is the `expected` call: same name and every expected argument."""
    if expected.name != actual.name:
        return False
    return not with_args or args_match(expected.args, actual.args)


def args_match(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """Tell whether every expected argument is in `actual` with a matching value.

    Arguments not listed in `expected` are ignored. `None` expected matches a
    missing argument too.
    """
    for key, want in expected.items():
        if key not in actual:
            if want is None:
                continue
            return False
        if not value_matches(want, actual[key]):
            return False
    return True


def value_matches(expected: Any, actual: Any) -> bool:
    """Compare one argument value.

    Strings compare as VINs are normalised (case, spaces and separators ignored),
    so `1hg-cm826…` matches `1HGCM826…` but `…AOO4352` does not match `…A004352`.
    Numbers compare by value (`2003` matches `"2003"`); lists compare as multisets;
    mappings compare recursively; `"*"` matches anything.
    """
    if expected == ANY:
        return True
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and args_match(expected, actual)
    if isinstance(expected, list | tuple):
        if not isinstance(actual, list | tuple) or len(expected) != len(actual):
            return False
        remaining = list(actual)
        for want in expected:
            found = next((i for i, got in enumerate(remaining) if value_matches(want, got)), None)
            if found is None:
                return False
            remaining.pop(found)
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return normalise(str(expected)) == normalise(str(actual))


def _score_calls(
    name: str,
    expected: Sequence[ExpectedCall],
    actual: Sequence[ToolCall],
    mode: MatchMode,
    *,
    with_args: bool,
) -> Score:
    shown = f"expected {_show_expected(expected, with_args)}, got {_show_actual(actual, with_args)}"
    if not expected and not actual:
        return Score(name, 1.0, "no tool call, as expected")
    if mode == "strict":
        matched = sum(
            1 for e, a in zip(expected, actual, strict=False) if call_matches(e, a, with_args=with_args)
        )
        value = matched / max(len(expected), len(actual))
    else:
        matched = _max_matching(expected, actual, with_args=with_args)
        if mode == "unordered":
            value = matched / max(len(expected), len(actual))
        elif mode == "subset":
            value = 1.0 if not actual else matched / len(actual)
        else:
            value = 1.0 if not expected else matched / len(expected)
    if value >= 1.0:
        return Score(name, 1.0, f"{mode} match: {_show_actual(actual, with_args)}")
    return Score(name, round(value, 4), f"{mode} mismatch: {shown}")


def _max_matching(expected: Sequence[ExpectedCall], actual: Sequence[ToolCall], *, with_args: bool) -> int:
    """Return the size of a maximum one-to-one matching of actual calls to expected ones."""
    owner: dict[int, int] = {}  # expected index -> actual index

    def assign(a: int, seen: set[int]) -> bool:
        for e, call in enumerate(expected):
            if e in seen or not call_matches(call, actual[a], with_args=with_args):
                continue
            seen.add(e)
            if e not in owner or assign(owner[e], seen):
                owner[e] = a
                return True
        return False

    return sum(1 for a in range(len(actual)) if assign(a, set()))


def _show_expected(calls: Sequence[ExpectedCall], with_args: bool) -> str:
    return _show([(c.name, c.args) for c in calls], with_args)


def _show_actual(calls: Sequence[ToolCall], with_args: bool) -> str:
    return _show([(c.name, c.args) for c in calls], with_args)


def _show(calls: Sequence[tuple[str, Mapping[str, Any]]], with_args: bool) -> str:
    if not calls:
        return "no tool call"
    if not with_args:
        return "[" + ", ".join(name for name, _ in calls) + "]"
    parts = []
    for name, args in calls:
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        parts.append(f"{name}({shown})")
    return "[" + ", ".join(parts) + "]"


# ---------------------------------------------------------------- text


def fold(text: str) -> str:
    """Return `text` case-folded, without accents, with typographic apostrophes made plain."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'").replace("ʼ", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def contains(text: str, needle: str) -> bool:
    """Tell whether `needle` occurs in `text`, ignoring case and accents.

    A needle starting with `re:` is a regular expression searched in the folded text.
    """
    if needle.startswith(REGEX_PREFIX):
        return re.search(needle[len(REGEX_PREFIX) :], fold(text), re.IGNORECASE) is not None
    return fold(needle) in fold(text)


def score_facts(answer: str, facts: Sequence[str]) -> Score:
    """Score the share of `facts` present in the answer."""
    missing = [f for f in facts if not contains(answer, f)]
    if not facts:
        return Score(FACTS, 1.0, "no facts expected")
    value = (len(facts) - len(missing)) / len(facts)
    if not missing:
        return Score(FACTS, 1.0, f"all {len(facts)} facts present")
    return Score(FACTS, round(value, 4), f"missing: {', '.join(repr(m) for m in missing)}")


def score_absent(answer: str, absent: Sequence[str]) -> Score:
    """Score the share of `absent` strings that the answer avoids (invented numbers, leaked data)."""
    found = [a for a in absent if contains(answer, a)]
    if not absent:
        return Score(ABSENT, 1.0, "nothing to avoid")
    if not found:
        return Score(ABSENT, 1.0, f"none of {len(absent)} forbidden strings present")
    value = (len(absent) - len(found)) / len(absent)
    return Score(ABSENT, round(value, 4), f"present but forbidden: {', '.join(repr(f) for f in found)}")


# How an answer admits it cannot answer, as regular expressions over folded text (lower
# case, no accents): the offline planner's templates and an LLM's prose both match.
REFUSAL_PATTERNS: dict[Language, tuple[str, ...]] = {
    "en": (
        r"\b(can't|cannot|can not|unable to|not able to)\b",
        r"\b(don't|do not|doesn't|does not) (have|know|include)\b",
        r"\bno (information|data)\b",
        r"\bwon't guess\b",
    ),
    "es": (
        r"\bno (puedo|tengo|dispongo|cuento con|lo se|se puede)\b",
        r"\bno (esta|estan) disponibles?\b",
        r"\bno (incluye|contiene)\b",
        r"\bno voy a adivinar\b",
    ),
    "fr": (
        r"\bje ne (peux|dispose|sais)( \w+)? pas\b",
        r"\bje n'ai pas\b",
        r"\bne (contient|comprend) pas\b",
        r"\bpas d'informations?\b",
        r"\bimpossible de\b",
        r"\bne veux pas deviner\b",
    ),
    "de": (
        r"\bkann ich\b[^.!?]{0,25}\bnicht",
        r"\bnicht (helfen|beantworten|sagen)\b",
        r"\bkeine (informationen|angaben|daten)\b",
        r"\benthalt (das|diese angabe|dies) nicht\b",
        r"\bweiss ich nicht\b",
        r"\braten will ich nicht\b",
    ),
}
_REFUSALS = tuple(re.compile(p) for patterns in REFUSAL_PATTERNS.values() for p in patterns)


def refusal_marker(answer: str) -> str | None:
    """Return the phrase (in any of our languages) by which the answer declines, if any."""
    text = fold(answer)
    for pattern in _REFUSALS:
        if found := pattern.search(text):
            return found.group(0)
    return None


def score_refusal(expected: bool, answer: str, calls: Sequence[ToolCall]) -> Score:
    """Score a refusal: admitting it cannot answer, with no tool call; or, when not expected, not refusing."""
    marker = refusal_marker(answer)
    if expected:
        if calls:
            return Score(
                REFUSAL, 0.0, f"expected a refusal without tools, but it called {_show(_pairs(calls), False)}"
            )
        if marker is None:
            return Score(
                REFUSAL, 0.0, "expected the answer to admit it cannot answer; no refusal phrase found"
            )
        return Score(REFUSAL, 1.0, f"refused ({marker!r}) without a tool call")
    if marker is not None and not calls:
        return Score(REFUSAL, 0.0, f"refused ({marker!r}) where an answer was expected")
    return Score(REFUSAL, 1.0, "answered")


def _pairs(calls: Sequence[ToolCall]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(c.name, c.args) for c in calls]


def _words(spec: str) -> frozenset[str]:
    return frozenset(spec.split())


# Frequent short words of each language; a text's language is the one with clearly the most hits.
STOPWORDS: dict[Language, frozenset[str]] = {
    "en": _words(
        "the is are was an and of to you your it its this that can what with for have has "
        "not from in on which or by my me"
    ),
    "es": _words(
        "el la los las es son un una y de del que con para tu su sus este esta puedo tengo por "
        "lo se al como mi hay fue"
    ),
    "fr": _words(
        "le la les est sont un une et de du des que avec pour votre vos ce cette je vous pas "
        "ne il elle au aux mon sur qui"
    ),
    "de": _words(
        "der die das ist sind ein eine einen und mit fur ich sie nicht kann dein ihr es wurde "
        "von zu im den dem auf oder wie"
    ),
}
_WORD = re.compile(r"[a-z']+")


def detect_language(text: str) -> Language | None:
    """Guess the language of `text` from its stopwords; None when the text does not say."""
    words = [w.strip("'") for w in _WORD.findall(fold(text))]
    hits = {lang: sum(1 for w in words if w in stop) for lang, stop in STOPWORDS.items()}
    ranked = sorted(hits.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top >= 3 and top >= 2 * second:
        return best
    return None


def score_language(expected: Language, answer_language: str, answer: str) -> Score:
    """Score the answer's language: its declared language, and its text when the text is conclusive."""
    if answer_language != expected:
        return Score(LANGUAGE, 0.0, f"expected {expected}, the answer declares {answer_language}")
    detected = detect_language(answer)
    if detected is not None and detected != expected:
        return Score(LANGUAGE, 0.0, f"declares {expected}, but the text reads as {detected}")
    return Score(LANGUAGE, 1.0, f"{expected}" + ("" if detected else " (text inconclusive)"))


# ---------------------------------------------------------------- a whole case


def applicable_scorers(expected: Expected) -> tuple[str, ...]:
    """Return the names of the scorers that grade a case with these expectations."""
    names = [TOOL_CHOICE, TRAJECTORY]
    names += [FACTS] if expected.facts else []
    names += [ABSENT] if expected.absent else []
    names += [REFUSAL] if expected.refusal is not None else []
    names += [LANGUAGE] if expected.language is not None else []
    return tuple(names)


def score_case(
    expected: Expected, *, answer: str, language: str, calls: Sequence[ToolCall]
) -> tuple[Score, ...]:
    """Run every scorer that applies to `expected` on one answer."""
    scores = [
        score_tool_choice(expected.trajectory, calls, expected.match),
        score_trajectory(expected.trajectory, calls, expected.match),
    ]
    if expected.facts:
        scores.append(score_facts(answer, expected.facts))
    if expected.absent:
        scores.append(score_absent(answer, expected.absent))
    if expected.refusal is not None:
        scores.append(score_refusal(expected.refusal, answer, calls))
    if expected.language is not None:
        scores.append(score_language(expected.language, language, answer))
    return tuple(scores)


# ---------------------------------------------------------------- the spec suite (datasets/specs_v1.jsonl)
#
# Spec, comparison and recall questions whose answers `evals/build_specs_dataset.py`
# computed from the data files. Graded on retrieval (recall@5 and MRR over the ranked
# record ids the knowledge tools return), on the fact values in the answer text, on
# refusals (no invented number where the data has no answer) and on the tool chosen.

SpecKind = Literal["spec", "compare", "recall", "follow-up", "vin-flow", "unavailable", "bad-input"]
RETRIEVAL_K = 5
SPEC_TOOL = "tool"
RECALL_AT_K = "recall@5"
MRR = "mrr"
SPEC_FACTS = "facts"
SPEC_REFUSAL = "refusal"
SPEC_LANGUAGE = "language"
SPEC_SCORERS = (SPEC_TOOL, RECALL_AT_K, MRR, SPEC_FACTS, SPEC_REFUSAL, SPEC_LANGUAGE)
# A number that is part of a word (`CO2`, `RAV4`, `20V064`) is not a value; nor is a date.
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,\u00a0\u202f]\d+)*(?![\w])")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_YEAR_RANGE = (1900, 2100)
_ABS_TOLERANCE = 0.051
_REL_TOLERANCE = 0.005


class ExpectedFact(BaseModel):
    """Values of one fact the answer must show: every one (`all`) or at least one (`any`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1)
    values: tuple[float | str, ...] = Field(min_length=1)
    need: Literal["all", "any"] = "all"


class SpecVehicle(BaseModel):
    """A vehicle a tool call must be about (compared by make and model key and year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int | None = None
    make: str
    model: str


class SpecExpected(BaseModel):
    """What a good answer to a spec case looks like."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str | None = None  # None: any tool, or none, is fine
    vehicles: tuple[SpecVehicle, ...] = ()
    facts: tuple[ExpectedFact, ...] = ()
    retrieval: tuple[tuple[str, ...], ...] = ()  # groups of acceptable "<dataset>:<record id>"
    refusal: bool | None = None


class SpecCase(BaseModel):
    """One case of the spec suite: turns in one conversation; the last turn is graded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=96, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    turns: tuple[str, ...] = Field(min_length=1)
    language: Language
    kind: SpecKind
    expected: SpecExpected
    tags: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RankedCall:
    """A knowledge tool call of the graded turn, with the record ids it returned in rank order."""

    name: str
    args: Mapping[str, Any]
    record_ids: tuple[str, ...] = ()


def numbers_in(text: str) -> list[float]:
    """Return the numbers written in `text`, reading `1,500`, `1.500`, `1 500` and `28,5` as people mean them.

    A token with separators gives every reading (English, continental, thousands only);
    dates (`2025-10-28`) and numbers inside words (`CO2`, `RAV4`) are skipped.
    """
    found: list[float] = []
    for match in _NUMBER.finditer(_DATE.sub(" ", text)):
        token = match.group().replace("\u00a0", " ").replace("\u202f", " ")
        if not any(sep in token for sep in ",. "):
            found.append(float(token))
            continue
        readings = {
            token.replace(" ", "").replace(",", ""),  # 1,500.5 / 1 500
            token.replace(" ", "").replace(".", "").replace(",", "."),  # 1.500,5 / 28,5
            token.replace(" ", "").replace(",", "").replace(".", ""),  # thousands only
        }
        for reading in readings:
            try:
                found.append(float(reading))
            except ValueError:
                continue
    return found


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(_ABS_TOLERANCE, _REL_TOLERANCE * abs(b))


def fact_present(answer: str, value: float | str, numbers: Sequence[float] | None = None) -> bool:
    """Tell whether one expected value is in the answer (numbers by value, text ignoring case)."""
    if isinstance(value, str):
        return fold(value) in fold(answer)
    pool = numbers_in(answer) if numbers is None else numbers
    return any(_close(n, float(value)) for n in pool)


def score_spec_facts(answer: str, facts: Sequence[ExpectedFact]) -> Score:
    """Score the expected fact values in the answer: the mean over facts of the share found."""
    if not facts:
        return Score(SPEC_FACTS, 1.0, "no facts expected")
    numbers = numbers_in(answer)
    parts: list[float] = []
    missing: list[str] = []
    for fact in facts:
        present = [v for v in fact.values if fact_present(answer, v, numbers)]
        if fact.need == "any":
            parts.append(1.0 if present else 0.0)
            if not present:
                missing.append(f"{fact.field}: any of {list(fact.values)}")
        else:
            parts.append(len(present) / len(fact.values))
            absent = [v for v in fact.values if v not in present]
            if absent:
                missing.append(f"{fact.field}: {absent}")
    value = sum(parts) / len(parts)
    if not missing:
        return Score(SPEC_FACTS, 1.0, f"all values of {len(facts)} facts present")
    return Score(SPEC_FACTS, round(value, 4), "missing " + "; ".join(missing))


def invented_numbers(answer: str, question: str) -> list[float]:
    """Return the numbers of `answer` that are neither in the question nor a model year."""
    allowed = numbers_in(question)
    invented = []
    for n in numbers_in(answer):
        if n.is_integer() and _YEAR_RANGE[0] <= n <= _YEAR_RANGE[1]:
            continue
        if any(_close(n, a) for a in allowed):
            continue
        invented.append(n)
    return invented


def score_spec_refusal(expected: bool, answer: str, question: str, calls: Sequence[RankedCall]) -> Score:
    """Score a refusal: it admits there is no answer and shows no number the question did not contain.

    Unlike the agent suite's refusal, a tool call is allowed: "the data has no towing
    capacity" may come from a look-up. Where an answer is expected, a refusal without
    any tool call fails.
    """
    marker = refusal_marker(answer)
    if expected:
        invented = invented_numbers(answer, question)
        if invented:
            return Score(SPEC_REFUSAL, 0.0, f"invented numbers {sorted(set(invented))[:5]}")
        if marker is None:
            return Score(SPEC_REFUSAL, 0.0, "expected the answer to say the data has no answer")
        return Score(SPEC_REFUSAL, 1.0, f"refused ({marker!r}) with no invented number")
    if marker is not None and not calls:
        return Score(SPEC_REFUSAL, 0.0, f"refused ({marker!r}) where an answer was expected")
    return Score(SPEC_REFUSAL, 1.0, "answered")


def _vehicle_keys(args: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    rows = args.get("vehicles")
    items = rows if isinstance(rows, list) else [args]
    keys = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        year = item.get("year")
        keys.append(
            (
                make_key(str(item.get("make") or "")),
                model_key(str(item.get("model") or "")),
                int(year) if isinstance(year, int | float | str) and str(year).isdigit() else None,
            )
        )
    return keys


def score_spec_tool(expected: SpecExpected, calls: Sequence[RankedCall]) -> Score:
    """Score the tool choice: the expected tool was called about every expected vehicle."""
    shown = ", ".join(f"{c.name}({dict(c.args)})" for c in calls) or "no tool call"
    matching = [c for c in calls if c.name == expected.tool]
    if not matching:
        return Score(SPEC_TOOL, 0.0, f"expected {expected.tool}, got {shown}")
    called = {key for c in matching for key in _vehicle_keys(c.args)}
    wanted = [(make_key(v.make), model_key(v.model), v.year) for v in expected.vehicles]
    # a call without a year (recalls for every model year) matches only a case that names no year
    found = [w for w in wanted if w in called]
    if len(found) < len(wanted):
        return Score(SPEC_TOOL, round(len(found) / len(wanted), 4), f"vehicles differ: {shown}")
    return Score(SPEC_TOOL, 1.0, f"{expected.tool} about {len(wanted)} vehicle(s)")


def retrieval_ranks(groups: Sequence[Sequence[str]], calls: Sequence[RankedCall]) -> list[int | None]:
    """Return, per group of acceptable ids, the best 1-based rank at which any tool call returned one."""
    ranks: list[int | None] = []
    for group in groups:
        acceptable = set(group)
        best: int | None = None
        for call in calls:
            rank = next((i for i, rid in enumerate(call.record_ids, start=1) if rid in acceptable), None)
            if rank is not None and (best is None or rank < best):
                best = rank
        ranks.append(best)
    return ranks


def score_retrieval(groups: Sequence[Sequence[str]], calls: Sequence[RankedCall]) -> tuple[Score, Score]:
    """Score recall@5 (share of groups found in a top 5) and MRR (mean reciprocal rank) of retrieval."""
    ranks = retrieval_ranks(groups, calls)
    recall = sum(1 for r in ranks if r is not None and r <= RETRIEVAL_K) / len(ranks)
    mrr = sum(1.0 / r for r in ranks if r is not None) / len(ranks)
    detail = f"ranks {ranks}"
    return Score(RECALL_AT_K, round(recall, 4), detail), Score(MRR, round(mrr, 4), detail)


def applicable_spec_scorers(expected: SpecExpected) -> tuple[str, ...]:
    """Return the names of the scorers that grade a spec case."""
    names = [SPEC_TOOL] if expected.tool else []
    names += [RECALL_AT_K, MRR] if expected.retrieval else []
    names += [SPEC_FACTS] if expected.facts else []
    names += [SPEC_REFUSAL] if expected.refusal is not None else []
    return (*names, SPEC_LANGUAGE)


def score_spec_case(
    case: SpecCase, *, answer: str, calls: Sequence[RankedCall], language: str | None = None
) -> tuple[Score, ...]:
    """Run every scorer that applies to a spec case on one answer (`language`: the one it declares)."""
    expected = case.expected
    scores: list[Score] = []
    if expected.tool:
        scores.append(score_spec_tool(expected, calls))
    if expected.retrieval:
        scores.extend(score_retrieval(expected.retrieval, calls))
    if expected.facts:
        scores.append(score_spec_facts(answer, expected.facts))
    if expected.refusal is not None:
        scores.append(score_spec_refusal(expected.refusal, answer, " ".join(case.turns), calls))
    # The answer quotes the data as published (EPA configurations, NHTSA summaries: English);
    # its own words are the first line, so that is where the text's language is read.
    own_words = answer.strip().split("\n", 1)[0]
    scores.append(score_language(case.language, language or case.language, own_words))
    return tuple(scores)
