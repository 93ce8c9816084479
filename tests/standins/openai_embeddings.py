"""A stand-in for OpenAI's embeddings endpoint, in its real wire format.

* ``POST /v1/embeddings`` with ``{"model", "input": str | [str], "dimensions"?, "encoding_format"?}``
  answers ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}],
  "model": ..., "usage": {"prompt_tokens": n, "total_tokens": n}}`` (the shapes of the `openai`
  package's `CreateEmbeddingResponse`). Vectors are deterministic unit vectors derived
  from the text, `dimensions` long (1536 by default, as text-embedding-3-small).
* errors use OpenAI's body: ``{"error": {"message", "type", "param", "code"}}`` (401 without
  a bearer token when one is required, 400 for a bad body).

`fail(status, times=n)` makes the next `n` requests answer `status` (429 carries
`Retry-After: 0`); every request body is kept in `received`, and `reverse` answers the
items in reverse order (the API does not promise order; clients must sort by `index`).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_DIMENSIONS = 1536


def vector_for(text: str, dimensions: int) -> list[float]:
    """Return the deterministic unit vector the stand-in answers for `text`."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(b / 127.5 - 1.0 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


@dataclass
class EmbeddingsStandIn:
    """The scripted server; `app` is the Starlette application to serve."""

    api_key: str | None = "test-key"
    reverse: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)

    def fail(self, status: int, *, times: int = 1) -> None:
        """Answer the next `times` requests with `status`."""
        self._failures.extend([status] * times)

    def reset(self) -> None:
        """Forget requests and planned failures."""
        self.received.clear()
        self.headers.clear()
        self._failures.clear()
        self.reverse = False

    @property
    def app(self) -> Starlette:
        """The ASGI app."""
        return Starlette(routes=[Route("/v1/embeddings", self._embeddings, methods=["POST"])])

    async def _embeddings(self, request: Request) -> Response:
        self.headers.append(dict(request.headers))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self.received.append(body)
        if self._failures:
            status = self._failures.pop(0)
            headers = {"Retry-After": "0"} if status == 429 else None
            return _error(
                status,
                "Rate limit reached." if status == 429 else "The server had an error.",
                "requests" if status == 429 else "server_error",
                headers=headers,
            )
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            return _error(
                400, "'input' must be a non-empty string or array of strings.", "invalid_request_error"
            )
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(t, dimensions)}
            for i, t in enumerate(texts)
        ]
        if self.reverse:
            data.reverse()
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "text-embedding-3-small"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _error(
    status: int, message: str, error_type: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )
