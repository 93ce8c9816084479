"""The request and response bodies of the HTTP API (what OpenAPI documents at `/docs`)."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.answer import Answer, Language

CONVERSATION_ID_PATTERN = r"^api:[0-9a-f]{32}$"
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)

VinProvider = Literal["offline", "nhtsa", "autodev"]


def new_conversation_id() -> str:
    """Return a fresh server-generated conversation id (`api:<uuid4 hex>`)."""
    return f"api:{uuid.uuid4().hex}"


def is_conversation_id(value: str) -> bool:
    """Tell whether `value` has the shape of an API conversation id."""
    return _CONVERSATION_ID.fullmatch(value) is not None


class AskRequest(BaseModel):
    """One question to the assistant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"message": "What car is 1HGCM82633A004352?"},
                {
                    "message": "And its engine?",
                    "conversation_id": "api:6f1c2b0e9d7a4c5e8b3a2f1d0c9e8b7a",
                    "language": "en",
                },
            ]
        },
    )

    message: str = Field(min_length=1, description="The question, in plain language.")
    conversation_id: str | None = Field(
        None,
        pattern=CONVERSATION_ID_PATTERN,
        description="Continue this conversation. Omit it to start a new one; the server returns the new id.",
    )
    language: Language | None = Field(
        None, description="Answer in this language; by default the language of the question."
    )


class AskResponse(Answer):
    """The assistant's answer, with the conversation id to send with the next question."""


class ErrorResponse(BaseModel):
    """Every error the API returns, whatever the status."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A stable code: invalid_input, invalid_vin, rate_limited, ...")
    message: str = Field(description="What went wrong, for people.")
    retry_after: float | None = Field(None, description="rate_limited: seconds until a retry can succeed.")
    reason: str | None = Field(None, description="invalid_vin: why the text is not a VIN.")
    suggestions: list[str] | None = Field(None, description="invalid_vin: VINs the caller may have meant.")
    details: list[dict[str, object]] | None = Field(
        None, description="invalid_input from request validation: one entry per bad field."
    )


class HealthResponse(BaseModel):
    """Whether the service can answer: every part must be up for `ok`."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(description="database, cache and agent: true when ready.")
    down: list[str] = Field(default_factory=list, description="The parts that are not ready.")
