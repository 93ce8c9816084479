"""VIN candidates in OCR output: exact reads, look-alike corrections, noise."""

from __future__ import annotations

from bot.ocr import vins_in_text
from tools.domain.vin import has_valid_check_digit

ACCORD = "1HGCM82633A004352"


def test_a_clean_read_is_valid_when_the_plate_line_is_the_vin() -> None:
    readings = vins_in_text(["VEHICLE IDENTIFICATION NUMBER", ACCORD])
    assert readings[0].read == ACCORD
    assert readings[0].valid


def test_label_and_spaces_are_dropped_when_the_vin_shares_a_line() -> None:
    readings = vins_in_text(["VIN: 1HG CM826 33A004352 MADE IN USA"])
    assert [r.read for r in readings] == [ACCORD]


def test_letters_never_in_vins_are_fixed_when_ocr_reads_o_for_zero() -> None:
    readings = vins_in_text(["1HGCM82633AOO4352"])
    assert readings[0].read == ACCORD
    assert readings[0].valid


def test_look_alike_corrections_are_offered_when_the_check_digit_fails() -> None:
    misread = "1HGCMB2633A004352"  # B read for 8
    readings = vins_in_text([misread])
    assert readings[0].read == misread
    assert not readings[0].valid
    assert ACCORD in readings[0].corrections
    assert all(has_valid_check_digit(c) for c in readings[0].corrections)


def test_a_vin_split_over_two_boxes_is_joined_when_read_as_two_lines() -> None:
    readings = vins_in_text(["1HGCM826", "33A004352"])
    assert readings[0].read == ACCORD


def test_nothing_is_offered_when_the_text_has_no_vin() -> None:
    lines = ["MAX LOAD 450 KG", "TIRE PRESSURE 35 PSI", "MANUFACTURED BY HONDA", "GVWR 2055KG 4530LB"]
    assert vins_in_text(lines) == []


def test_serial_digits_misread_as_letters_are_fixed_when_the_rest_is_a_vin() -> None:
    readings = vins_in_text(["1HGCM82633A00435Z"])  # Z read for 2 in the serial number
    assert ACCORD in [r.read for r in readings] + [c for r in readings for c in r.corrections]
