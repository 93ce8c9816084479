"""Map errors to HTTP: every expected error is JSON with a stable code and the right status.

The body is always `{"error": <code>, "message": <for people>, ...}` (plus `retry_after`,
`reason`/`suggestions` or `details` when they apply), the same shape the model and the
SSE `error` event see. Expected errors (`AppError`, request validation, unknown routes)
are never 500. `LastResortMiddleware` is the transport's one top-level handler: it logs
anything unexpected once and answers 500 `internal_error` without internals.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.errors import AppError, DomainError, ProviderError, RateLimited

logger = logging.getLogger(__name__)

STATUS_BY_CODE: Mapping[str, int] = {
    "domain_error": 422,
    "invalid_input": 422,
    "invalid_vin": 422,
    "unsupported_comparison": 422,
    "not_allowed": 403,
    "vehicle_not_found": 404,
    "job_not_found": 404,
    "rate_limited": 429,
    "provider_error": 503,
    "provider_unavailable": 503,
    "bad_provider_response": 503,
}
"""HTTP status of each `AppError` code; codes not listed fall back by their class."""

INTERNAL_ERROR: Mapping[str, object] = {
    "error": "internal_error",
    "message": "Something went wrong on our side. Please try again later.",
}

_HTTP_CODES: Mapping[int, str] = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def status_for(error: AppError) -> int:
    """Return the HTTP status of `error`."""
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    if isinstance(error, ProviderError):
        return 503
    if isinstance(error, DomainError):
        return 422
    return 400


def retry_after_header(error: RateLimited) -> str:
    """Return the `Retry-After` value of `error`: whole seconds, rounded up, at least 1."""
    seconds = error.retry_after
    if not math.isfinite(seconds):
        seconds = 60.0
    return str(max(1, math.ceil(seconds)))


def error_response(error: AppError) -> JSONResponse:
    """Render an expected error."""
    headers = {"Retry-After": retry_after_header(error)} if isinstance(error, RateLimited) else None
    return JSONResponse(error.to_dict(), status_code=status_for(error), headers=headers)


def validation_body(errors: Sequence[Any]) -> dict[str, object]:
    """Return the `invalid_input` body for FastAPI's (Pydantic's) validation errors.

    Only `loc`, `msg` and `type` are kept: the rest (`input`, `ctx`) may echo large
    inputs or objects that are not JSON.
    """
    details: list[dict[str, object]] = []
    parts: list[str] = []
    for item in errors:
        if not isinstance(item, Mapping):
            continue
        loc = [str(part) for part in item.get("loc", ())]
        msg = str(item.get("msg", ""))
        details.append({"loc": loc, "msg": msg, "type": str(item.get("type", ""))})
        # ("body", "conversation_id") reads as "conversation_id"; a whole bad body as "body".
        parts.append(f"{'.'.join(loc[1:]) or '.'.join(loc)}: {msg}")
    message = "Invalid request. " + "; ".join(parts) if parts else "Invalid request."
    return {"error": "invalid_input", "message": message, "details": details}


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)  # noqa: S101 - registered for AppError only
    logger.info("%s %s -> %s", request.method, request.url.path, exc.code)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    return JSONResponse(validation_body(exc.errors()), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "The request failed."
    return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers of expected errors and the last-resort middleware on `app`."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(LastResortMiddleware)


def log_unexpected(exc: BaseException, where: str) -> dict[str, object]:
    """Log an unexpected error once and return the `internal_error` body that replaces it."""
    logger.error("unexpected error while %s", where, exc_info=exc)
    return dict(INTERNAL_ERROR)


class LastResortMiddleware:
    """Answer 500 `internal_error` for any exception nothing else handled, and log it once.

    A pure ASGI middleware rather than an `Exception` handler: Starlette re-raises
    after calling such a handler, so the server would log the same error again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as e:  # the transport's one top-level handler
            if started:  # too late for a 500: let the server drop the connection
                raise
            body = log_unexpected(e, f"serving {scope.get('method', '')} {scope.get('path', '')}")
            await JSONResponse(body, status_code=500)(scope, receive, send)
