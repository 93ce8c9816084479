"""What the assistant returns and streams, the same for every transport.

Nothing LangChain-specific crosses a transport boundary: transports see `Answer`
and the `AgentEvent`s below, all plain Pydantic models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Language = Literal["en", "es", "fr", "de"]
LANGUAGES: tuple[Language, ...] = ("en", "es", "fr", "de")


class SourceRef(BaseModel):
    """Where a fact came from: provider, dataset, record and data date."""

    model_config = ConfigDict(frozen=True)

    provider: str
    dataset: str
    record_id: str | None = None
    data_date: str | None = None
    title: str | None = None


class ToolCallRecord(BaseModel):
    """One tool call made while answering."""

    name: str
    args: dict[str, Any]
    duration_ms: float
    ok: bool = True
    error: str | None = None
    record_ids: list[str] = Field(
        default_factory=list,
        description="Knowledge tools: the records the tool returned, best first ('<dataset>:<record id>').",
    )


class Attachment(BaseModel):
    """A file that goes with an answer, such as a comparison chart; transports send or show it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["chart"] = "chart"
    media_type: str = Field(description="The file's media type, such as image/png.")
    name: str = Field(description="A file name for clients that save it: comparison.png.")
    title: str | None = Field(None, description="What the file shows, for alt text and captions.")
    data_base64: str = Field(description="The file's bytes, base64-encoded.")


class Usage(BaseModel):
    """Tokens spent on an answer and their estimated cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost_usd: float = 0.0


class Answer(BaseModel):
    """One answer to one question."""

    answer: str
    language: Language = "en"
    conversation_id: str
    sources: list[SourceRef] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    planner: str = Field(description="Which planner produced the answer: offline, or llm:<model>.")
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float = 0.0
    truncated: bool = Field(False, description="True when the step budget ran out before a full answer.")
    # Not part of the published answer: the id under which the assistant stored it, for
    # transports that refer back to it (the bot's 👍/👎 buttons).
    _message_id: int | None = PrivateAttr(default=None)

    @property
    def message_id(self) -> int | None:
        """Return the stored answer's id (`messages.id`), or None if it was not stored."""
        return self._message_id

    def stored_as(self, message_id: int | None) -> Answer:
        """Record the id under which the answer was stored; return the answer."""
        self._message_id = message_id
        return self


class TokenEvent(BaseModel):
    """A piece of the answer text, as it is written."""

    type: Literal["token"] = "token"
    text: str


class ToolCallEvent(BaseModel):
    """The assistant decided to call a tool."""

    type: Literal["tool_call"] = "tool_call"
    name: str
    args: dict[str, Any]


class ToolResultEvent(BaseModel):
    """A tool finished."""

    type: Literal["tool_result"] = "tool_result"
    name: str
    ok: bool
    duration_ms: float


class AnswerEvent(BaseModel):
    """The final answer; always the last event of a stream."""

    type: Literal["answer"] = "answer"
    answer: Answer


AgentEvent = Annotated[
    TokenEvent | ToolCallEvent | ToolResultEvent | AnswerEvent, Field(discriminator="type")
]
