"""VINs in photos: RapidOCR reads the text, and the VIN rules pick and correct the candidates.

RapidOCR (`rapidocr-onnxruntime`) ships its ONNX detection, classification and
recognition models inside the package and runs them on onnxruntime, so reading a
plate needs no network. It is CPU-bound: it runs in a worker thread, one image at a
time, and its models are loaded on the first photo, not at start-up.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tools.domain.vin import ALPHABET, VIN_LENGTH, has_valid_check_digit, suggest

logger = logging.getLogger(__name__)

MAX_READINGS = 3
MAX_CORRECTIONS = 3
_NEVER_IN_VINS = {"I": "1", "O": "0", "Q": "0"}
_DIGIT_FOR = {"S": "5", "B": "8", "Z": "2", "G": "6", "D": "0", "L": "1", "T": "7", "A": "4"}


@dataclass(frozen=True, slots=True)
class VinReading:
    """A VIN as read from an image: what was read (I/O/Q fixed), whether its check digit
    holds, and look-alike corrections whose check digit does."""

    read: str
    valid: bool
    corrections: tuple[str, ...] = ()


def _clean(line: str) -> str:
    folded = unicodedata.normalize("NFKC", line).upper()
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def _fix_forbidden(text: str) -> str:
    return "".join(_NEVER_IN_VINS.get(ch, ch) for ch in text)


def _looks_like_vin(text: str) -> bool:
    # Positions 14-17 are the serial number's digits on every light vehicle; this keeps
    # label text and part numbers out.
    return (
        all(ch in ALPHABET for ch in text)
        and text[-4:].isdigit()
        and text[9] not in "UZ0"  # never a model-year code
        and any(ch.isalpha() for ch in text)
    )


def _serial_digits(text: str) -> str:
    """Read look-alike letters in the serial number (the last 4 positions) as the digits they resemble."""
    return text[:-4] + "".join(_DIGIT_FOR.get(ch, ch) for ch in text[-4:])


def vins_in_text(lines: Sequence[str]) -> list[VinReading]:
    """Return the VIN candidates in OCR output lines, best first.

    Each line (and each pair of neighbouring lines, for a VIN printed in two boxes)
    is reduced to its letters and digits, and its 17-character windows are read as
    VINs: I, O and Q become 1, 0 and 0, and letters in the serial number become the
    digits they resemble. A window whose check digit holds wins; otherwise a line that
    is little more than one VIN is offered with its check-digit-valid look-alike
    corrections (`tools.domain.vin.suggest`).
    """
    texts = [_clean(line) for line in lines]
    texts += [a + b for a, b in itertools.pairwise(texts)]
    readings: dict[str, VinReading] = {}
    for text in texts:
        if len(text) < VIN_LENGTH:
            continue
        windows = [
            _serial_digits(_fix_forbidden(text[i : i + VIN_LENGTH]))
            for i in range(len(text) - VIN_LENGTH + 1)
        ]
        windows = [w for w in windows if _looks_like_vin(w)]
        valid = [w for w in windows if has_valid_check_digit(w)]
        for window in valid:
            readings.setdefault(window, VinReading(window, True))
        if valid or len(text) > VIN_LENGTH + 3:
            continue
        for window in windows:
            corrections = tuple(c for c in suggest(window) if c != window)[:MAX_CORRECTIONS]
            readings.setdefault(window, VinReading(window, False, corrections))
    ranked = sorted(readings.values(), key=lambda r: (not r.valid, not r.corrections))
    return ranked[:MAX_READINGS]


class VinPlateReader:
    """Read the text lines in an image with RapidOCR, off the event loop, one image at a time."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._build_lock = threading.Lock()
        self._busy = asyncio.Semaphore(1)

    def _ocr(self) -> Any:
        with self._build_lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR  # loads onnxruntime and three models

                self._engine = RapidOCR()
            return self._engine

    def _read_sync(self, image: bytes) -> list[str]:
        result, _elapsed = self._ocr()(image)
        if not result:
            return []
        # Each item is [box, text, score]; keep the reading order RapidOCR gives (top to bottom).
        return [str(item[1]) for item in result]

    async def read_lines(self, image: bytes) -> list[str]:
        """Return the text lines RapidOCR finds in `image` (JPEG or PNG bytes)."""
        async with self._busy:
            return await asyncio.to_thread(self._read_sync, image)

    async def read_vins(self, image: bytes) -> list[VinReading]:
        """Return the VIN candidates in `image`, best first."""
        lines = await self.read_lines(image)
        logger.debug("OCR read %d lines", len(lines))
        return vins_in_text(lines)
