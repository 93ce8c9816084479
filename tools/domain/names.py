"""Make and model names normalised across EPA, the EPA test-car list, NHTSA and user input.

The publishers spell the same vehicle differently: EPA writes `Honda` / `CR-V AWD` /
`F150 Pickup 4WD`, NHTSA writes `HONDA` / `CR-V` / `F-150`, the test-car list mixes
`TOYOTA` and `Toyota` and adds `RAV4 HYBRID AWD`. Ingestion stores a key computed here
next to each spelling, and retrieval and the agent compute the same key from a question,
so all of them meet on `make_key` + `model_key`.

Rules:

* `make_key`: lower case, single spaces, publisher aliases and nicknames folded
  (`chevy` -> `chevrolet`, `VW` -> `volkswagen`, `MERCEDES BENZ` -> `mercedes-benz`).
* `model_key`: the *base model* without drive, body or powertrain suffixes and without
  punctuation or spaces: `CR-V AWD`, `CR-V`, `CRV`, `cr v` -> `crv`; `F150 Pickup 4WD`,
  `F-150` -> `f150`. **Hybrid is not part of the key**: `RAV4 Hybrid AWD` -> `rav4`,
  because a hybrid is one configuration of the model (NHTSA files its recalls under the
  base name, and people ask "the RAV4" meaning every powertrain); the document's fuel and
  `atv_type` fact tell the configurations apart. Names that *are* a different model stay
  (`RAV4 Prime` -> `rav4prime`, `Ioniq Electric` -> `ioniqelectric`). The first word is
  never dropped, so a model called `4WD` would still have a key. Trim words EPA appends
  (`Camry LE/SE`) are not recognisable in general; pass EPA's `baseModel` when there is one.
"""

from __future__ import annotations

import re
from typing import Final

# Canonical make keys for the spellings seen in the three files and in questions.
_MAKE_ALIASES: Final[dict[str, str]] = {
    "chevy": "chevrolet",
    "chev": "chevrolet",
    "vw": "volkswagen",
    "volkswagon": "volkswagen",
    "mercedes": "mercedes-benz",
    "mercedes benz": "mercedes-benz",
    "mercedesbenz": "mercedes-benz",
    "merc": "mercedes-benz",
    "benz": "mercedes-benz",
    "mb": "mercedes-benz",
    "w204e63-z1011": "mercedes-benz",  # a test-car row with the model code in the make column
    "rolls royce": "rolls-royce",
    "rollsroyce": "rolls-royce",
    "landrover": "land rover",
    "range rover": "land rover",
    "alfa": "alfa romeo",
    "aston": "aston martin",
    "mclaren automotive": "mclaren",
    "ineos automotive": "ineos",
    "ineos automotive ltd": "ineos",
    "pagani automobili": "pagani",
    "pagani spa": "pagani",
    "lordstown motors": "lordstown",
    "ruf automobile": "ruf",
    "ruf automobile gmbh": "ruf",
    "roush performance": "roush",
    "saleen performance": "saleen",
    "morgan motor company": "morgan",
    "faraday": "faraday future",
    "mobility ventures llc": "mobility ventures",
    "harley davidson": "harley-davidson",
    "harley": "harley-davidson",
    "bmx": "bmw",  # a typo in the MY2016 test-car list
    # model names written in the make column of the test-car list
    "tesla model 3": "tesla",
    "tesla model s": "tesla",
    "tesla model x": "tesla",
    "model s": "tesla",
    "polestar 2": "polestar",
    "polestar2 dual motor": "polestar",
    "c40 recharge twin": "volvo",
    "lucid usa, inc": "lucid",
    "lucid usa": "lucid",
    "mv": "mobility ventures",
    "epa": "epa test vehicle",
}

_MAKE_DISPLAY: Final[dict[str, str]] = {
    "am general": "AM General",
    "bmw": "BMW",
    "bmw alpina": "BMW Alpina",
    "byd": "BYD",
    "gmc": "GMC",
    "ineos": "INEOS",
    "mini": "MINI",
    "mclaren": "McLaren",
    "mercedes-benz": "Mercedes-Benz",
    "mercedes-maybach": "Mercedes-Maybach",
    "rolls-royce": "Rolls-Royce",
    "harley-davidson": "Harley-Davidson",
    "ram": "Ram",
    "ruf": "RUF",
    "smart": "smart",
    "srt": "SRT",
    "sti": "STI",
    "vinfast": "VinFast",
    "vpg": "VPG",
    "epa test vehicle": "EPA test vehicle",
    "tvr engineering ltd": "TVR Engineering Ltd",
    "fcca": "FCCA",
    "ic bus": "IC Bus",
    "kme": "KME",
    "ktm": "KTM",
    "mci": "MCI",
}

# Words that name a drive, a body style or a powertrain variant, not a model.
_DROP_WORDS: Final[frozenset[str]] = frozenset(
    {
        # drive
        "awd",
        "fwd",
        "rwd",
        "4wd",
        "2wd",
        "4x4",
        "4x2",
        "2x4",
        "ff",
        "4matic",
        "4matic+",
        "xdrive",
        "sdrive",
        "quattro",
        "4motion",
        "all4",
        "e-awd",
        # body
        "pickup",
        # light-duty class: NHTSA's "SILVERADO 1500" is EPA's "Silverado"
        "1500",
        # powertrain variants
        "hybrid",
        "hev",
        "mhev",
        "ffv",
        "plug-in",
        "plugin",
    }
)
_DROP_PHRASES: Final[tuple[tuple[str, ...], ...]] = (
    ("all", "wheel", "drive"),
    ("front", "wheel", "drive"),
    ("rear", "wheel", "drive"),
    ("4", "wheel", "drive"),
    ("plug", "in"),
)
_DISPLACEMENT = re.compile(r"^\d{1,2}(\.\d)?l$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def _fold(raw: str) -> str:
    return _SPACES.sub(" ", raw.replace("_", " ")).strip().lower()


def make_key(raw: str) -> str:
    """Return the canonical key of a make: `HONDA`, `Honda`, ` honda ` -> `honda`.

    Args:
        raw: A make as a publisher or a person wrote it.

    Returns:
        Lower case, single-spaced, with aliases folded (`Chevy` -> `chevrolet`,
        `VW` -> `volkswagen`, `Mercedes Benz` -> `mercedes-benz`); "" for blank input.
    """
    folded = _fold(raw)
    folded = _SPACES.sub(" ", folded.replace(" - ", "-"))
    return _MAKE_ALIASES.get(folded, _MAKE_ALIASES.get(folded.rstrip("."), folded.rstrip(".")))


def display_make(key: str, spelled: str | None = None) -> str:
    """Return how to write a make in an answer: `mercedes-benz` -> `Mercedes-Benz`.

    Args:
        key: A key from `make_key` (any spelling is accepted and folded first).
        spelled: The publisher's spelling, kept when it is mixed case and names the
            same key (`Land Rover`, `McLaren`); upper-case spellings (`HONDA`) are not.
    """
    canonical = make_key(key)
    if canonical in _MAKE_DISPLAY:
        return _MAKE_DISPLAY[canonical]
    if spelled is not None:
        tidy = _SPACES.sub(" ", spelled).strip()
        if tidy and not tidy.isupper() and tidy.lower() == canonical:
            return tidy
    return " ".join("-".join(part.capitalize() for part in word.split("-")) for word in canonical.split())


def _base_words(raw: str) -> list[str]:
    words = _fold(raw).split(" ") if raw.strip() else []
    if not words:
        return []
    # "AWD/4WD" and "XL/XLT" are written with slashes; a drive pair is dropped whole
    kept = [words[0]]
    rest = words[1:]
    i = 0
    while i < len(rest):
        phrase = next((p for p in _DROP_PHRASES if tuple(rest[i : i + len(p)]) == p), None)
        if phrase is not None:
            i += len(phrase)
            continue
        word = rest[i]
        parts = word.split("/")
        if word in _DROP_WORDS or _DISPLACEMENT.match(word) or all(p in _DROP_WORDS for p in parts):
            i += 1
            continue
        kept.append(word)
        i += 1
    return kept


def base_model(raw: str) -> str:
    """Return the model as written, without drive, body and powertrain suffixes.

    `CR-V AWD` -> `CR-V`, `F150 Pickup 4WD` -> `F150`, `RAV4 Hybrid AWD` -> `RAV4`,
    `F-150` -> `F-150`. Spelling and case are the publisher's; compare with `model_key`.

    Args:
        raw: A model as a publisher or a person wrote it.
    """
    original = _SPACES.sub(" ", raw.replace("_", " ")).strip()
    if not original:
        return ""
    kept = _base_words(original)
    out: list[str] = []
    remaining = list(kept)
    for word in original.split(" "):
        if remaining and word.lower() == remaining[0]:
            out.append(word)
            remaining.pop(0)
    return " ".join(out)


def model_key(raw: str) -> str:
    """Return the canonical key of a base model: `CR-V AWD`, `CRV`, `cr v` -> `crv`.

    Args:
        raw: A model as a publisher or a person wrote it (EPA's `baseModel` when known).

    Returns:
        Lower-case letters and digits only, drive/body/hybrid words removed
        (`F150 Pickup 4WD` and `F-150` -> `f150`); "" for blank input.
    """
    return _NOT_ALNUM.sub("", "".join(_base_words(raw)))
