"""ASGI middleware of the API: a request id on every request, its logs and its response."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.observability import log_context

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only when it is short and plain: it ends up in every log line.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(headers: Headers) -> str:
    """Return the caller's `X-Request-ID` when it is acceptable, else a new one."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _ACCEPTABLE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Tag the request's logs with its id and send the id back in `X-Request-ID`.

    The id covers the whole response, streamed bodies included, because the
    context is set around the entire ASGI call.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)
