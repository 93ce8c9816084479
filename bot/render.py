"""Answers as Telegram HTML: escaped text, split at the message limit, sources as a short footer.

Text is split *before* it is escaped, at paragraph, line or word boundaries, and each
piece is escaped on its own, so no message ends inside an entity (`&amp;`) or a tag.
Lengths are counted in UTF-16 code units of the HTML, which is never shorter than
what Telegram counts (the text after entity parsing).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from agent.answer import SourceRef

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
FOOTER_SOURCES = 3
_BREAKS = ("\n\n", "\n", " ")


def escape(text: str) -> str:
    """Escape `text` for Telegram's HTML parse mode (`<`, `>`, `&`)."""
    return html.escape(text, quote=False)


def units(text: str) -> int:
    """Return the length of `text` in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, *, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split plain `text` into escaped HTML pieces of at most `limit` UTF-16 units each.

    Pieces end at the last paragraph break, line break or space that fits; a single
    word longer than the limit is cut between characters.
    """
    if limit < 8:
        raise ValueError("limit is too small to hold any escaped character")
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if units(escape(rest)) <= limit:
            pieces.append(escape(rest))
            break
        cut = _fitting_prefix(rest, limit)
        head = rest[:cut]
        for sep in _BREAKS:
            at = head.rfind(sep)
            if at > 0:
                head = head[:at]
                break
        head = head.rstrip()
        if not head:  # only separators fit: cut inside the word
            head = rest[:cut]
        pieces.append(escape(head))
        rest = rest[len(head) :].lstrip()
    return pieces


def _fitting_prefix(text: str, limit: int) -> int:
    """Return the largest n such that `escape(text[:n])` fits in `limit` (binary search)."""
    low, high = 1, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if units(escape(text[:mid])) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


def sources_footer(sources: Sequence[SourceRef], *, label: str) -> str:
    """Return the sources as one short italic HTML line (`label` is the translated "Sources")."""
    names: list[str] = []
    for source in sources:
        name = source.dataset
        if source.data_date:
            name = f"{name}, {source.data_date}"
        if name not in names:
            names.append(name)
    if not names:
        return ""
    shown = names[:FOOTER_SOURCES]
    more = f" +{len(names) - len(shown)}" if len(names) > len(shown) else ""
    line = f"{label}: {'; '.join(shown)}{more}"
    if units(line) > 300:
        line = line[:297] + "…"
    return f"<i>{escape(line)}</i>"


def render(text: str, *, footer: str = "", limit: int = MESSAGE_LIMIT) -> list[str]:
    """Return the messages for an answer: its text split at `limit`, then the footer.

    The footer (already HTML) goes at the end of the last message when it fits there,
    else into a message of its own.
    """
    pieces = split_text(text, limit=limit) or [""]
    if footer:
        joined = f"{pieces[-1]}\n\n{footer}" if pieces[-1] else footer
        if units(joined) <= limit:
            pieces[-1] = joined
        else:
            pieces.append(footer)
    return [p for p in pieces if p] or [escape("…")]


def caption(title: str, *, footer: str = "", limit: int = CAPTION_LIMIT) -> str:
    """Return a photo's caption as HTML: its title (cut to fit), then the footer when it fits too."""
    head = next(iter(split_text(title, limit=limit)), "")
    if footer:
        joined = f"{head}\n\n{footer}" if head else footer
        if units(joined) <= limit:
            return joined
    return head
