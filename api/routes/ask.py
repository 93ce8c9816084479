"""`POST /ask`: one question in, the `Answer` out, as JSON or as Server-Sent Events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import AskingDep
from api.schemas import AskRequest, AskResponse, ErrorResponse, new_conversation_id
from api.sse import MEDIA_TYPE, event_stream_response
from tools.observability import log_context

router = APIRouter(tags=["assistant"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "not_allowed: the conversation belongs to someone else."},
    422: {"model": ErrorResponse, "description": "invalid_input: a bad body or question."},
    429: {"model": ErrorResponse, "description": "rate_limited: see the Retry-After header."},
    503: {"model": ErrorResponse, "description": "provider_unavailable: a backing service is down."},
}


def wants_event_stream(request: Request) -> bool:
    """Tell whether the client asked for Server-Sent Events (`Accept: text/event-stream`)."""
    return MEDIA_TYPE in request.headers.get("accept", "").lower()


@router.post(
    "/ask",
    response_model=AskResponse,
    responses={
        200: {
            "description": "The answer as JSON; with `Accept: text/event-stream`, a stream of "
            "`token`, `tool_call`, `tool_result` events ending with `answer` (or `error`).",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **_ERRORS,
    },
    summary="Ask the assistant",
)
async def ask(body: AskRequest, request: Request, asking: AskingDep) -> Response:
    """Answer one question; omit `conversation_id` to start a conversation (its id is returned)."""
    conversation_id = body.conversation_id or new_conversation_id()
    asker = asking.client.asker(conversation_id, new=body.conversation_id is None)
    assistant = asking.assistant
    with log_context(conversation_id=conversation_id):
        if wants_event_stream(request):
            events = assistant.stream(
                body.message, conversation_id=conversation_id, asker=asker, language=body.language
            )
            return await event_stream_response(events)
        answer = await assistant.ask(
            body.message, conversation_id=conversation_id, asker=asker, language=body.language
        )
    # `AskResponse` is `Answer` under its API name: serialised once, straight to JSON bytes.
    return Response(answer.model_dump_json(), media_type="application/json")
