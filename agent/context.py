"""Per-run identity, set by the transport and injected into tools; never chosen by the model."""

from __future__ import annotations

from dataclasses import dataclass

from agent.answer import Language
from tools.settings import Tier


@dataclass(frozen=True, slots=True)
class RunContext:
    """Who is asking, where, and in which language."""

    user_id: int
    conversation_id: str
    channel: str = "api"
    tier: Tier = "free"
    language: Language = "en"  # the language to answer in when the message itself shows none
