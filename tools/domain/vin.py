"""The VIN value object: normalisation, validation, check digit, model year, suggestions.

Rules follow 49 CFR Part 565: 17 characters from the digits and the Latin capitals
except I, O and Q; position 9 is a check digit (weighted sum mod 11, 10 written X);
position 10 codes the model year on a 30-year cycle, and for light vehicles
position 7 tells the cycle (a digit for 1980-2009, a letter for 2010-2039).

A failed check digit is a warning, not an error: VINs from outside North America
are not required to carry one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from operator import mul
from typing import NoReturn

from tools.errors import InvalidVin

VIN_LENGTH = 17
ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
FORBIDDEN_LETTERS = frozenset("IOQ")

_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_CHECK_CHARACTERS = "0123456789X"  # the check digit for each remainder mod 11

# Position 10 model-year codes, in order, for the cycle starting 1980 (and again 2010).
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"

# Characters people confuse when reading or typing a VIN: O/0, I/1, Q/0, S/5, B/8,
# Z/2, G/6, D/0, L/1, U/V. Keys are what was typed, values what may have been meant.
# I, O and Q never occur in a VIN, so they map one way only.
_CONFUSED_PAIRS = (("S", "5"), ("B", "8"), ("Z", "2"), ("G", "6"), ("D", "0"), ("L", "1"), ("U", "V"))
LOOK_ALIKES: dict[str, tuple[str, ...]] = {"O": ("0",), "Q": ("0",), "I": ("1",)}
for _a, _b in _CONFUSED_PAIRS:
    LOOK_ALIKES[_a] = (*LOOK_ALIKES.get(_a, ()), _b)
    LOOK_ALIKES[_b] = (*LOOK_ALIKES.get(_b, ()), _a)
del _a, _b

# Phones and word processors turn "-" into typographic dashes; NFKC does not fold them.
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SEPARATORS = frozenset(" \t\r\n._/" + _DASHES)


def normalise(raw: str) -> str:
    """Return `raw` as a VIN candidate: upper case, separators and whitespace removed.

    Characters whose compatibility form is ASCII (full-width digits, no-break
    spaces) are folded to it; other non-ASCII characters are kept as typed so
    the error can show them. Idempotent: `normalise(normalise(x)) == normalise(x)`.
    """
    if raw.isascii() and raw.isalnum():
        # ASCII is unchanged by NFKC, and ASCII letters and digits are neither separators nor
        # spaces: this is the per-character fold below, for the common case of a clean VIN.
        return raw.upper()
    folded = "".join(_fold(ch) for ch in raw)
    return "".join(ch for ch in folded if ch not in _SEPARATORS and not ch.isspace())


def _fold(ch: str) -> str:
    # Folding one character at a time (never across neighbours) keeps `normalise`
    # idempotent: dropping a separator cannot create a new composable sequence.
    folded = unicodedata.normalize("NFKC", ch).upper()
    return folded if folded.isascii() else ch


_VIN_TEXT = re.compile(r"[0-9A-HJ-NPR-Z]{17}")


def _is_vin_text(text: str) -> bool:
    return _VIN_TEXT.fullmatch(text) is not None


def check_digit(vin17: str) -> str:
    """Return the check digit that `vin17` should carry at position 9.

    Raises:
        ValueError: `vin17` is not 17 characters of the VIN alphabet.
    """
    if not _is_vin_text(vin17):
        raise ValueError("check_digit needs 17 upper-case VIN characters")
    return _check_character(vin17)


def _check_character(vin_text: str) -> str:
    """The check digit of `vin_text`, which is known to be VIN text (`_is_vin_text`)."""
    return _CHECK_CHARACTERS[sum(map(mul, map(_TRANSLITERATION.__getitem__, vin_text), _WEIGHTS)) % 11]


def has_valid_check_digit(vin17: str) -> bool:
    """Tell whether `vin17` is 17 VIN characters whose position 9 matches the check digit."""
    return _is_vin_text(vin17) and vin17[8] == check_digit(vin17)


def year_cycle_candidates(code: str) -> tuple[int, ...]:
    """Return every model year the position-10 `code` can stand for (1980-2039)."""
    index = _YEAR_CODES.find(code) if len(code) == 1 else -1
    if index < 0:
        return ()
    return (1980 + index, 2010 + index)


@dataclass(frozen=True, slots=True)
class Vin:
    """A syntactically valid VIN (17 characters, VIN alphabet).

    Build one with `Vin.parse`, which normalises and validates; the check digit
    may still be wrong (see `check_digit_valid`).
    """

    value: str

    def __post_init__(self) -> None:
        if not _is_vin_text(self.value):
            raise ValueError("Vin needs 17 upper-case VIN characters; use Vin.parse for user input")

    @classmethod
    def parse(cls, raw: str) -> Vin:
        """Normalise and validate `raw`.

        Raises:
            InvalidVin: with a reason code, a plain message and, where one can be
                found, the VINs the user probably meant.
        """
        if len(raw) == VIN_LENGTH and raw.isascii() and raw.encode().isalnum():
            # The common case, a VIN typed or pasted cleanly: no folding or separators to handle.
            # 17 ASCII capitals and digits without I, O and Q are `_VIN_TEXT`, checked without a regex
            # (`bytes.isalnum` reads an ASCII table; `str.isalnum` reads Unicode tables per character).
            upper = raw.upper()
            if "I" not in upper and "O" not in upper and "Q" not in upper:
                vin = _new_object(cls)
                _set_value(vin, upper)  # `upper` is VIN text: skip `__post_init__` repeating the check
                return vin
        text = normalise(raw)
        if not text:
            raise InvalidVin(
                "No VIN was given. A VIN has 17 letters and digits.", reason="empty", raw=clip_input(raw)
            )
        bad = sorted({ch for ch in text if ch not in ALPHABET and ch not in FORBIDDEN_LETTERS})
        if bad:
            shown = ", ".join(repr(ch) for ch in bad[:5])
            raise InvalidVin(
                f"A VIN can only contain digits and the letters A-Z except I, O and Q; found {shown}.",
                reason="invalid_characters",
                raw=clip_input(raw),
            )
        if len(text) != VIN_LENGTH:
            _raise_wrong_length(text, raw)
        forbidden = sorted({ch for ch in text if ch in FORBIDDEN_LETTERS})
        if forbidden:
            letters = ", ".join(forbidden)
            raise InvalidVin(
                f"VINs never use the letters I, O or Q (found {letters}); they are easily confused "
                "with 1 and 0.",
                reason="forbidden_letters",
                raw=clip_input(raw),
                suggestions=suggest(text),
            )
        return cls(text)

    def __str__(self) -> str:
        return self.value

    @property
    def wmi(self) -> str:
        """World manufacturer identifier (positions 1-3)."""
        return self.value[:3]

    @property
    def check_digit_valid(self) -> bool:
        """Whether position 9 matches the computed check digit."""
        return self.value[8] == _check_character(self.value)  # `value` is VIN text: no regex again

    @property
    def expected_check_digit(self) -> str:
        """The check digit position 9 should hold."""
        return check_digit(self.value)

    @property
    def masked(self) -> str:
        """The VIN with all but its last six characters hidden, for logs."""
        return mask_vin(self.value)

    def model_year_candidates(self, *, latest: int) -> tuple[int, ...]:
        """Return the model years position 10 allows, most likely first.

        For light vehicles position 7 picks the cycle: a digit means 1980-2009,
        a letter 2010-2039. Heavy vehicles do not follow that rule, so the other
        cycle is kept as a second candidate. Years after `latest` are dropped.
        """
        years = sorted(y for y in year_cycle_candidates(self.value[9]) if y <= latest)
        if self.value[6].isalpha():
            years.reverse()
        return tuple(years)

    def suggestions(self) -> tuple[str, ...]:
        """Return look-alike corrections whose check digit holds (empty when this one does)."""
        if self.check_digit_valid:
            return ()
        # `value` is what `suggest` would make of it (normalised, no I, O or Q): skip that work.
        return _look_alike_corrections(self.value, self.value)


_new_object = object.__new__
# The slot's own setter, which `object.__setattr__` (all a frozen class allows) goes round to.
_set_value: Callable[[Vin, str], None] = vars(Vin)["value"].__set__


def _raise_wrong_length(text: str, raw: str) -> NoReturn:
    n = len(text)
    if n < VIN_LENGTH:
        hint = " It may be a partial VIN; check the last characters." if n >= 11 else ""
        raise InvalidVin(
            f"That VIN has {n} characters; a VIN has exactly 17.{hint}",
            reason="too_short",
            raw=clip_input(raw),
        )
    candidates: list[str] = []
    if n == VIN_LENGTH + 1:
        # One extra character: try dropping each, keep the ones whose check digit holds.
        for i in range(n):
            shorter = _replace_forbidden(text[:i] + text[i + 1 :])
            if has_valid_check_digit(shorter):
                candidates.append(shorter)
    raise InvalidVin(
        f"That VIN has {n} characters; a VIN has exactly 17.",
        reason="too_long",
        raw=clip_input(raw),
        suggestions=list(dict.fromkeys(candidates)),
    )


def _replace_forbidden(text: str) -> str:
    return "".join(LOOK_ALIKES[ch][0] if ch in FORBIDDEN_LETTERS else ch for ch in text)


def suggest(text: str) -> tuple[str, ...]:
    """Return VINs one look-alike substitution away from `text` with a valid check digit.

    I, O and Q are always replaced (by 1, 0, 0) first, since no VIN contains them.
    Then single substitutions of commonly confused characters are tried. Every
    result has a valid check digit, so a VIN from outside North America may get
    none. Results are ordered by position; callers showing them pick the first few.
    """
    text = normalise(text)
    base = _replace_forbidden(text)
    if not _is_vin_text(base):
        return ()
    return _look_alike_corrections(base, text)


def _look_alike_corrections(base: str, text: str) -> tuple[str, ...]:
    """`suggest`'s candidates from `base`, the VIN text `text` became with I, O and Q replaced."""
    found: list[str] = []
    total = sum(map(mul, map(_TRANSLITERATION.__getitem__, base), _WEIGHTS))
    check = base[8]
    if _CHECK_CHARACTERS[total % 11] == check:
        found.append(base)
    # Every I/O/Q is already fixed in `base`; now one more swap. Look-alikes are VIN
    # characters, so each candidate's check digit is `total` with one term changed.
    for i, ch in enumerate(base):
        for alt, change in _SWAPS[i].get(ch, ()):
            if _CHECK_CHARACTERS[(total + change) % 11] == (alt if i == 8 else check):
                found.append(base[:i] + alt + base[i + 1 :])
    return tuple(c for c in dict.fromkeys(found) if c != text)


# Per position: each VIN character's look-alikes, with the change each makes to the
# weighted sum. A candidate's sum is then one addition; every decode whose check digit
# fails (a few percent of them) tries all of them.
_SWAPS: tuple[dict[str, tuple[tuple[str, int], ...]], ...] = tuple(
    {
        ch: tuple((alt, weight * (_TRANSLITERATION[alt] - _TRANSLITERATION[ch])) for alt in alts)
        for ch, alts in LOOK_ALIKES.items()
        if ch in ALPHABET
    }
    for weight in _WEIGHTS
)


def find_vins(text: str) -> list[str]:
    """Return the 17-character VIN candidates written anywhere in `text`, in order.

    Accepts VINs in any case, and with spaces or dashes inside when grouped
    (for example `1HG CM826 33A004352` or `1hgcm82633a004352`). A grouped VIN
    must end in four digits (the serial number), which keeps ordinary words
    that happen to add up to 17 letters and digits out. Punctuation ends a group.
    """
    found: list[str] = []
    upper = unicodedata.normalize("NFKC", text).upper()
    for group in _split_groups(upper):
        i = 0
        while i < len(group):
            end = _vin_end(group, i)
            if end is None:
                i += 1
            else:
                found.append("".join(group[i:end]))
                i = end
    return list(dict.fromkeys(found))


def _vin_end(tokens: list[str], start: int) -> int | None:
    # Join tokens from `start` until 17 characters; return the end index if they form a VIN.
    joined = ""
    for end in range(start + 1, len(tokens) + 1):
        joined += tokens[end - 1]
        if len(joined) > VIN_LENGTH:
            return None
        if len(joined) == VIN_LENGTH:
            if not (_is_vin_text(joined) and _looks_like_vin(joined)):
                return None
            if end - start > 1 and not joined[-4:].isdigit():
                return None
            return end
    return None


def _split_groups(text: str) -> list[list[str]]:
    """Split `text` into groups of ASCII letter-digit tokens joined only by spaces or dashes."""
    groups: list[list[str]] = [[]]
    current: list[str] = []
    for ch in text:
        if ch.isascii() and ch.isalnum():
            current.append(ch)
            continue
        if current:
            groups[-1].append("".join(current))
            current = []
        if ch not in _DASHES and ch != " ":
            groups.append([])  # a hard break: punctuation and line ends end a group
    if current:
        groups[-1].append("".join(current))
    return [g for g in groups if g]


def _looks_like_vin(candidate: str) -> bool:
    # A VIN mixes digits and letters; this keeps words and phone numbers out.
    return any(ch.isdigit() for ch in candidate) and any(ch.isalpha() for ch in candidate)


def mask_vin(text: str) -> str:
    """Hide all but the last six characters of a VIN-like string."""
    if len(text) <= 6:
        return text
    return "*" * (len(text) - 6) + text[-6:]


SHOWN_INPUT_CHARS = 64
"""How much of an input VIN text errors and results show."""


def clip_input(raw: str, limit: int = SHOWN_INPUT_CHARS) -> str:
    """Return `raw` cut at `limit` characters, marked with "…" when cut (inputs can be 10 kB)."""
    return raw if len(raw) <= limit else raw[:limit] + "…"


__all__ = [
    "ALPHABET",
    "LOOK_ALIKES",
    "SHOWN_INPUT_CHARS",
    "VIN_LENGTH",
    "Vin",
    "check_digit",
    "clip_input",
    "find_vins",
    "has_valid_check_digit",
    "mask_vin",
    "normalise",
    "suggest",
    "year_cycle_candidates",
]
