"""Answers as Telegram HTML: escaping, splitting at 4,096 UTF-16 units, the sources footer."""

from __future__ import annotations

import html

import pytest
from standins.telegram_api import parse_html, utf16_len

from agent.answer import SourceRef
from bot.render import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    caption,
    escape,
    render,
    sources_footer,
    split_text,
    units,
)


def test_text_is_escaped_when_it_contains_html_special_characters() -> None:
    assert escape("<b>Tom & Jerry</b> > 3") == "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt; &gt; 3"
    assert render("a < b & c") == ["a &lt; b &amp; c"]


def test_short_text_stays_one_message_when_it_fits() -> None:
    assert split_text("Hello") == ["Hello"]


def test_long_text_splits_at_paragraphs_when_they_fit() -> None:
    paragraph = "word " * 500  # 2,500 characters
    pieces = split_text(f"{paragraph}\n\n{paragraph}\n\n{paragraph}")
    assert len(pieces) == 3
    assert all(units(p) <= MESSAGE_LIMIT for p in pieces)


def test_no_piece_ends_inside_an_entity_when_escaping_makes_text_longer() -> None:
    text = "&" * 5000  # 25,000 characters once escaped
    pieces = split_text(text)
    assert all(units(p) <= MESSAGE_LIMIT for p in pieces)
    assert all(p.endswith("&amp;") and "&am" not in p.replace("&amp;", "") for p in pieces)
    assert "".join(html.unescape(p) for p in pieces) == text


def test_pieces_count_utf16_units_when_text_has_emoji() -> None:
    text = "🚗" * 3000  # 6,000 UTF-16 units, 3,000 code points
    pieces = split_text(text)
    assert len(pieces) == 2
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in pieces)
    assert "".join(pieces) == text


def test_a_word_longer_than_the_limit_is_cut_when_nothing_else_fits() -> None:
    pieces = split_text("x" * 9000, limit=MESSAGE_LIMIT)
    assert [len(p) for p in pieces] == [4096, 4096, 808]


def test_every_piece_parses_as_telegram_html_when_the_answer_mixes_markup_and_text() -> None:
    text = ("<i>not a tag</i> & 1 < 2\n" * 400).strip()
    footer = sources_footer([SourceRef(provider="offline", dataset="NHTSA vPIC <offline>")], label="Sources")
    messages = render(text, footer=footer)
    assert len(messages) >= 3
    plain = [parse_html(m) for m in messages]  # raises as Telegram would on bad HTML
    assert all(utf16_len(p) <= MESSAGE_LIMIT for p in plain)
    assert plain[-1].endswith("Sources: NHTSA vPIC <offline>")


def test_footer_gets_its_own_message_when_the_last_piece_is_full() -> None:
    footer = sources_footer([SourceRef(provider="p", dataset="EPA", data_date="2026-10")], label="Fuentes")
    messages = render("y" * MESSAGE_LIMIT, footer=footer)
    assert messages == ["y" * MESSAGE_LIMIT, "<i>Fuentes: EPA, 2026-10</i>"]


def test_footer_lists_three_sources_and_counts_the_rest_when_there_are_many() -> None:
    sources = [SourceRef(provider="p", dataset=f"d{i}") for i in range(5)]
    assert sources_footer(sources, label="Sources") == "<i>Sources: d0; d1; d2 +2</i>"
    assert sources_footer([], label="Sources") == ""


@pytest.mark.parametrize("limit", [100, 1000, 4096])
def test_splitting_loses_no_text_when_split_at_any_limit(limit: int) -> None:
    text = "Ünïcödé & <tags> and words, " * 300
    pieces = split_text(text, limit=limit)
    assert all(units(p) <= limit for p in pieces)
    assert " ".join(html.unescape(p) for p in pieces).split() == text.split()


def test_chart_caption_carries_the_sources_under_its_title_when_both_fit() -> None:
    footer = sources_footer(
        [SourceRef(provider="knowledge", dataset="EPA", data_date="2025-10")], label="Quellen"
    )
    assert caption("2019 Toyota RAV4 vs 2019 Honda CR-V", footer=footer) == (
        "2019 Toyota RAV4 vs 2019 Honda CR-V\n\n<i>Quellen: EPA, 2025-10</i>"
    )
    assert caption("", footer=footer) == footer
    assert caption("A & B <vs> C") == "A &amp; B &lt;vs&gt; C"


def test_chart_caption_keeps_the_title_and_drops_the_sources_when_the_title_fills_it() -> None:
    footer = sources_footer([SourceRef(provider="p", dataset="EPA")], label="Sources")
    title = "Ford & Lincoln " * 100  # 1,500 characters, 2,000 once escaped
    text = caption(title, footer=footer)
    assert "Sources" not in text
    assert utf16_len(parse_html(text)) <= CAPTION_LIMIT
    assert units(text) <= CAPTION_LIMIT
    assert html.unescape(text).split() == title.split()[: len(html.unescape(text).split())]
