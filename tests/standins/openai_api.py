"""A stand-in for OpenAI's chat-completions endpoint, in its real wire format.

* ``POST /v1/chat/completions``: a ``chat.completion`` object, or with ``"stream": true``
  a ``text/event-stream`` of ``chat.completion.chunk`` objects ending in ``data: [DONE]``
  (with a usage-only chunk before it when ``stream_options.include_usage`` is set).

The shapes follow the installed `openai` package's types (`ChatCompletion`,
`ChatCompletionChunk`, `CompletionUsage`). The stand-in is scripted: each request takes
the next planned `Reply` (text, tool calls, or a fault), and every request is kept in
`received` so tests can check what the client sent (tools, tool results,
`response_format`, the Authorization header). `fail` makes every request misbehave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

Fault = Literal[
    "error",  # 500 with OpenAI's error body
    "garbage",  # 200 with a body that is not JSON (an HTML proxy page)
    "cut",  # streams: the connection drops mid-answer; otherwise half a JSON body
    "slow",  # hold the answer until released (or `slow_s`), so the client times out
    "stall",  # streams: one chunk, then only SSE keep-alive comments until released; else "slow"
]

DEFAULT_MODEL = "gpt-4o-mini"
_GARBAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"


class StreamCut(Exception):
    """Raised inside a streaming response to drop the connection mid-answer."""


class _HideStreamCut(logging.Filter):
    """Keep uvicorn from logging the stand-in's deliberate cuts as application errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _is_cut(record.exc_info[1] if record.exc_info else None)


def _is_cut(exc: BaseException | None, depth: int = 0) -> bool:
    """Tell whether `exc` is, wraps or groups a `StreamCut` (the server may wrap it)."""
    if exc is None or depth > 8:
        return False
    if isinstance(exc, StreamCut):
        return True
    if isinstance(exc, BaseExceptionGroup) and any(_is_cut(e, depth + 1) for e in exc.exceptions):
        return True
    return _is_cut(exc.__cause__ or exc.__context__, depth + 1)


_HIDE_STREAM_CUT = _HideStreamCut()


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model makes; `arguments` as a dict, or a raw string sent as it is."""

    name: str
    arguments: dict[str, Any] | str
    id: str = field(default_factory=_call_id)

    @property
    def arguments_json(self) -> str:
        """The arguments as the wire carries them: a JSON string."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One planned answer: text, tool calls, or a fault, with the usage to report."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    fault: Fault | None = None
    prompt_tokens: int = 50
    completion_tokens: int = 10
    finish_reason: str | None = None  # None: "tool_calls" when calling tools, else "stop"

    @property
    def finish(self) -> str:
        """The `finish_reason` the wire carries."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


def text(content: str, *, prompt_tokens: int = 50, completion_tokens: int = 10) -> Reply:
    """Plan a text answer."""
    return Reply(content=content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def tool_call(
    name: str, arguments: dict[str, Any] | str, *, prompt_tokens: int = 50, completion_tokens: int = 10
) -> Reply:
    """Plan one native tool call (`tool_calls` in the message)."""
    return Reply(
        tool_calls=(ToolCall(name, arguments),),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )


def tool_calls(*calls: ToolCall, prompt_tokens: int = 50, completion_tokens: int = 10) -> Reply:
    """Plan several native tool calls in one message."""
    return Reply(tool_calls=calls, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def json_tool_call(
    name: str, arguments: dict[str, Any], *, prompt_tokens: int = 50, completion_tokens: int = 10
) -> Reply:
    """Plan a tool call written as JSON text, as a schema-constrained local model writes it."""
    content = json.dumps({"tool": name, "arguments": arguments})
    return text(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)


def failure(fault: Fault) -> Reply:
    """Plan a fault for one request."""
    return Reply(fault=fault)


@dataclass(frozen=True)
class Received:
    """One request the stand-in received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def authorization(self) -> str | None:
        """The Authorization header, as sent."""
        return self.headers.get("authorization")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's messages."""
        return list(self.body.get("messages", []))

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools offered to the model."""
        return [t["function"]["name"] for t in self.body.get("tools", [])]

    @property
    def streamed(self) -> bool:
        """True when the client asked for a stream."""
        return bool(self.body.get("stream"))

    def tool_results(self) -> list[dict[str, Any]]:
        """The `tool` role messages the client sent back (tool results)."""
        return [m for m in self.messages if m.get("role") == "tool"]


@dataclass
class OpenAIStandIn:
    """The stand-in's script and what it saw. Make one per test (or `reset` it)."""

    slow_s: float = 5.0
    replies: deque[Reply] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    unplanned: int = 0  # requests that found no planned reply (answered with a 500)
    stalls_cut: int = 0  # stalled streams the stand-in ended itself after `slow_s` (nobody gave up first)
    _fault: Fault | None = None
    _fault_times: int | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def plan(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        self.replies.extend(replies)

    def fail(self, fault: Fault, *, times: int | None = None) -> None:
        """Misbehave for the next `times` requests (None: until reset), before any planned reply."""
        self._fault = fault
        self._fault_times = times

    def release(self) -> None:
        """Let held ("slow") requests finish."""
        self._release.set()

    def reset(self) -> None:
        """Forget the script, the faults and what was received; release anything held."""
        self._release.set()
        self._release = asyncio.Event()
        self.replies.clear()
        self.received.clear()
        self.unplanned = 0
        self.stalls_cut = 0
        self._fault = None
        self._fault_times = None

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        uvicorn_errors = logging.getLogger("uvicorn.error")
        if _HIDE_STREAM_CUT not in uvicorn_errors.filters:
            uvicorn_errors.addFilter(_HIDE_STREAM_CUT)
        return Starlette(routes=[Route("/v1/chat/completions", self._chat_completions, methods=["POST"])])

    def _next_reply(self) -> Reply | None:
        if self._fault is not None and (self._fault_times is None or self._fault_times > 0):
            if self._fault_times is not None:
                self._fault_times -= 1
            return failure(self._fault)
        if self.replies:
            return self.replies.popleft()
        return None

    async def _chat_completions(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        self.received.append(Received(request.url.path, dict(request.headers), body))
        reply = self._next_reply()
        if reply is None:
            self.unplanned += 1
            return _error(500, "The stand-in has no planned reply for this request.", "server_error")
        streamed = bool(body.get("stream"))
        if reply.fault == "slow" or (reply.fault == "stall" and not streamed):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.slow_s)
        if reply.fault == "error":
            return _error(500, "The server had an error while processing your request.", "server_error")
        if reply.fault == "garbage":
            return PlainTextResponse(_GARBAGE, media_type="text/html")
        model = str(body.get("model", DEFAULT_MODEL))
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(time.time())
        if streamed:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _chunks(reply, completion_id, created, model, include_usage=include_usage)
            if reply.fault == "stall":
                return StreamingResponse(self._stalled(chunks), media_type="text/event-stream")
            return StreamingResponse(
                _events(chunks, cut=reply.fault == "cut"), media_type="text/event-stream"
            )
        completion = _completion(reply, completion_id, created, model)
        if reply.fault == "cut":
            whole = json.dumps(completion)
            return Response(whole[: len(whole) // 2], media_type="application/json")
        return JSONResponse(completion)

    async def _stalled(self, chunks: list[dict[str, Any]]) -> AsyncIterator[str]:
        """Send the first chunk, then keep the connection busy with comments but no content.

        The comments keep an HTTP read timeout from firing, as OpenAI's keep-alives do,
        so only a timeout on the gap between parsed chunks notices the stall.
        """
        yield f"data: {json.dumps(chunks[0])}\n\n"
        deadline = asyncio.get_running_loop().time() + self.slow_s
        while not self._release.is_set() and asyncio.get_running_loop().time() < deadline:
            yield ": keep-alive\n\n"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), 0.05)
        self.stalls_cut += 1
        raise StreamCut("the stalled stream ends without finishing")


def _error(status: int, message: str, error_type: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "param": None, "code": None}}, status_code=status
    )


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _completion(reply: Reply, completion_id: str, created: int, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
            for c in reply.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish}],
        "usage": _usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_standin",
    }


def _pieces(value: str, parts: int) -> list[str]:
    """Split `value` into `parts` roughly equal, non-empty pieces (fewer if it is short)."""
    size = max(1, -(-len(value) // parts))
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def _chunks(
    reply: Reply, completion_id: str, created: int, model: str, *, include_usage: bool
) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            data["usage"] = None
        return data

    chunks = [chunk({"role": "assistant", "content": "" if reply.content is not None else None})]
    if reply.content:
        # Word by word, keeping the spaces, as the real API streams tokens.
        chunks += [chunk({"content": piece}) for piece in re.findall(r"\S+\s*|\s+", reply.content)]
    for index, call in enumerate(reply.tool_calls):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in _pieces(call.arguments_json, 3)
        ]
    chunks.append(chunk({}, reply.finish))
    if include_usage:
        usage_chunk = chunk({})
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _usage(reply)
        chunks.append(usage_chunk)
    return chunks


async def _events(chunks: list[dict[str, Any]], *, cut: bool) -> AsyncIterator[str]:
    if cut:
        for data in chunks[: max(2, len(chunks) // 2)]:
            yield f"data: {json.dumps(data)}\n\n"
            await asyncio.sleep(0)
        raise StreamCut("the stand-in drops the connection mid-stream")
    for data in chunks:
        yield f"data: {json.dumps(data)}\n\n"
    yield "data: [DONE]\n\n"
