"""Server-Sent Events for `/ask`: the assistant's events as `event:` + `data:` frames.

Each frame is one event type and one line of JSON::

    event: token          data: {"type": "token", "text": "The "}
    event: tool_call      data: {"type": "tool_call", "name": "decode_vin", "args": {...}}
    event: tool_result    data: {"type": "tool_result", "name": "decode_vin", "ok": true, "duration_ms": 3.1}
    event: answer         data: <the same JSON as a plain POST /ask answer>
    event: error          data: {"error": "<code>", "message": "...", ...}

`answer` and `error` are always last. While the assistant is quiet a comment line
(`: keep-alive`) is sent every `heartbeat_s` seconds so proxies keep the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Final

from fastapi.responses import StreamingResponse

from agent.answer import AgentEvent, AnswerEvent
from api.errors import log_unexpected
from tools.errors import AppError

logger = logging.getLogger(__name__)

MEDIA_TYPE = "text/event-stream"
HEARTBEAT_S = 15.0
KEEP_ALIVE: Final = ": keep-alive\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class _End:
    """Marks the end of the assistant's events in the queue."""


_END: Final = _End()


def frame(event: str, data: str) -> str:
    """Return one SSE frame; `data` is JSON, which never spans lines."""
    return f"event: {event}\ndata: {data}\n\n"


def render(event: AgentEvent) -> str:
    """Return the frame of one assistant event."""
    if isinstance(event, AnswerEvent):
        return frame("answer", event.answer.model_dump_json())
    return frame(event.type, event.model_dump_json())


def error_frame(body: dict[str, object]) -> str:
    """Return the `error` frame of an error body."""
    return frame("error", json.dumps(body, ensure_ascii=False))


async def event_stream_response(
    events: AsyncIterator[AgentEvent], *, heartbeat_s: float = HEARTBEAT_S
) -> StreamingResponse:
    """Start the assistant's stream and return it as an SSE response.

    The assistant runs in its own task, so the response can send heartbeats while it
    thinks. Its first event is awaited before any byte is sent: an error raised before
    it (bad input, a spent limit, someone else's conversation) becomes an ordinary
    JSON error with its HTTP status and `Retry-After`, not a 200 stream.
    """
    queue: asyncio.Queue[AgentEvent | _End] = asyncio.Queue()

    async def produce() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
        finally:
            queue.put_nowait(_END)

    task = asyncio.create_task(produce())
    try:
        first = await queue.get()
        if isinstance(first, _End):
            await task  # re-raises what ended the stream before its first event
    except BaseException:
        task.cancel()
        raise
    return StreamingResponse(
        _frames(first, queue, task, heartbeat_s), media_type=MEDIA_TYPE, headers=_HEADERS
    )


async def _frames(
    first: AgentEvent | _End,
    queue: asyncio.Queue[AgentEvent | _End],
    task: asyncio.Task[None],
    heartbeat_s: float,
) -> AsyncIterator[str]:
    item = first
    try:
        while not isinstance(item, _End):
            yield render(item)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), heartbeat_s)
                    break
                except TimeoutError:
                    yield KEEP_ALIVE
        await task  # re-raises what ended the stream early
    except AppError as e:
        logger.info("stream ended early -> %s", e.code)
        yield error_frame(e.to_dict())
    except Exception as e:  # the stream's top-level handler: the 200 status is already sent
        yield error_frame(log_unexpected(e, "streaming an answer"))
    finally:
        if not task.done():  # the client went away: stop the assistant
            task.cancel()
