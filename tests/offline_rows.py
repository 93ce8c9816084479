"""Offline decodes of generated VINs, for the tests of the vPIC-to-vehicle builders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ultravin


def offline_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """ultravin decodes of generated VINs: about a third with defects, a quarter with a year hint."""
    vins = ultravin.generate(count, seed=seed, now=datetime(2026, 6, 1), invalid_rate=0.3)  # noqa: DTZ001
    return [ultravin.decode(v, year=None if i % 4 else 1985 + i % 45) for i, v in enumerate(vins)]
