"""How the bot talks to the Bot API: PTB's `BaseRequest` over asyncio streams, and `AnswerBot`.

python-telegram-bot's default `HTTPXRequest` goes through httpx, httpcore and anyio: on
the bench's machine an httpx POST to the Bot API stand-in cost 2.6 ms of CPU, more than
the bot's own work for an update. `StreamRequest` is the same contract (PTB supports
custom request classes: `ApplicationBuilder.request` / `get_updates_request`) in a few
layers: HTTP/1.1 with keep-alive connections, a bounded pool, httptools (already the
API's HTTP parser) for responses, and JSON request bodies as the Bot API accepts them
(files go as multipart/form-data). An answer's `sendMessage` fell from 4.6 ms of CPU
(`send_message` over httpx) to 0.4 ms (`AnswerBot.send_html` over `StreamRequest`).

`AnswerBot` is PTB's `ExtBot` with `send_html`, a `sendMessage` that does not build a
`Message` from the reply (the answers' path never reads it; parsing it was ~0.5 ms)
and takes its keyboard as plain rows.

Failures map onto PTB's errors as `HTTPXRequest` maps them: a timeout is `TimedOut`
(a full pool says so and sends nothing), anything else on the wire is `NetworkError`.
A connection is reused only while it is open and has been idle less than
`KEEPALIVE_S`, shorter than servers' usual keep-alive (uvicorn's is 5 s), so a request
is not written to a connection the server is closing.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import certifi
import httptools
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.constants import ParseMode
from telegram.error import NetworkError, TimedOut
from telegram.ext import ExtBot
from telegram.request import BaseRequest, RequestData

KEEPALIVE_S = 4.0
CHUNK = 65_536
Origin = tuple[str, str, int]


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        """Whether the connection is still open and fresh enough to send a request on."""
        return (
            now - self.idle_since < KEEPALIVE_S
            and not self.reader.at_eof()
            and not self.writer.transport.is_closing()
        )

    def close(self) -> None:
        self.writer.transport.abort()


class _Response:
    """Collects one response from httptools' callbacks."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.status = 0
        self.keep_alive = False
        self.complete = False

    def on_headers_complete(self) -> None:
        # Read here: the parser resets itself for the next message once this one is complete.
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


@dataclass(frozen=True)
class Timeouts:
    """Default timeouts in seconds, as `HTTPXRequest` takes them (None: wait forever)."""

    read: float | None = 5.0
    write: float | None = 5.0
    connect: float | None = 5.0
    pool: float | None = 1.0
    media_write: float | None = 20.0


class StreamRequest(BaseRequest):
    """Send Bot API requests over pooled keep-alive HTTP/1.1 connections (asyncio streams)."""

    def __init__(self, *, pool_size: int = 256, timeouts: Timeouts | None = None) -> None:
        self._timeouts = timeouts or Timeouts()
        self._closed = False
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds it to `getUpdates`' long-poll timeout)."""
        return self._timeouts.read

    async def initialize(self) -> None:
        """Nothing to open: connections open on first use."""
        self._closed = False

    async def shutdown(self) -> None:
        """Close every idle connection (those in use close when their request ends)."""
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; return its status code and body."""
        parts = urlsplit(url)
        head, body = _encode(request_data)
        media = request_data is not None and request_data.contains_files
        t = self._timeouts
        try:
            if self._slots.locked():  # else acquiring does not wait: no timer to arm
                async with asyncio.timeout(_given(pool_timeout, t.pool)):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()
        except TimeoutError as e:
            raise TimedOut(
                "Pool timeout: all connections in the pool are in use; the request was not sent."
            ) from e
        try:
            return await self._exchange(
                parts,
                method,
                head,
                body,
                connect_s=_given(connect_timeout, t.connect),
                write_s=_given(write_timeout, t.media_write if media else t.write),
                read_s=_given(read_timeout, t.read),
            )
        finally:
            self._slots.release()

    async def _exchange(
        self,
        parts: SplitResult,
        method: str,
        head: dict[str, str],
        body: bytes,
        *,
        connect_s: float | None,
        write_s: float | None,
        read_s: float | None,
    ) -> tuple[int, bytes]:
        origin = _origin(parts)
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(connect_s):
                connection = await self._connection(origin)
            async with asyncio.timeout(write_s):
                connection.writer.write(_request_head(parts, method, head, len(body)) + body)
                await connection.writer.drain()
            async with asyncio.timeout(read_s):
                response = await _read_response(connection.reader)
        except TimeoutError as e:
            if connection is not None:
                connection.close()
            raise TimedOut from e
        except (OSError, httptools.HttpParserError, EOFError) as e:
            if connection is not None:
                connection.close()
            raise NetworkError(f"{type(e).__name__}: {e}") from e
        except BaseException:  # cancelled mid-request: the connection's state is unknown
            if connection is not None:
                connection.close()
            raise
        if response.keep_alive and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()
        return response.status, b"".join(response.body)

    async def _connection(self, origin: Origin) -> _Connection:
        """Return an idle connection to `origin` that is still usable, or a new one."""
        idle, now = self._idle.get(origin, []), time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.usable(now):
                return connection
            connection.close()
        scheme, host, port = origin
        tls = self._tls_context() if scheme == "https" else None
        reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=CHUNK)
        return _Connection(reader, writer)

    def _tls_context(self) -> ssl.SSLContext:
        # certifi's CA bundle, as httpx (PTB's default client) verifies with: slim images
        # (the deployment's) may have no system CA store.
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls


Buttons = Sequence[Sequence[tuple[str, str]]]
"""An inline keyboard: rows of (text, callback data) buttons."""


class AnswerBot(ExtBot[None]):
    """PTB's bot with `send_html`: a `sendMessage` whose reply is not parsed into a `Message`."""

    async def send_html(self, chat_id: int, text: str, *, buttons: Buttons = ()) -> None:
        """Send `text` as an HTML message with an inline keyboard; errors raise as `send_message`'s do.

        `_post` is the one method every PTB bot method sends through (defaults, the rate
        limiter, error mapping); only the `Message.de_json` of the result is left out. The
        keyboard goes as the JSON string that form-encoded requests carry (the Bot API reads
        either), built from plain tuples: no `InlineKeyboardButton` objects to build and
        then serialize again.
        """
        data: dict[str, object] = {"chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML}
        keyboard = [
            [{"text": label, "callback_data": value} for label, value in row] for row in buttons if row
        ]
        if keyboard:
            data["reply_markup"] = json.dumps({"inline_keyboard": keyboard})
        await self._post("sendMessage", data)


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _origin(parts: SplitResult) -> Origin:
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NetworkError(f"cannot send a request to a {parts.scheme or 'relative'} URL")
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _encode(request_data: RequestData | None) -> tuple[dict[str, str], bytes]:
    """Return the body's headers and bytes: JSON, or multipart/form-data when files are sent."""
    if request_data is None:
        return {}, b""
    if not request_data.contains_files:
        return {"Content-Type": "application/json"}, json.dumps(request_data.parameters).encode()
    boundary = os.urandom(16).hex()
    chunks: list[bytes] = []
    for name, value in request_data.json_parameters.items():
        chunks.append(_part_head(boundary, name) + b"\r\n" + value.encode() + b"\r\n")
    for name, (filename, content, mime_type) in request_data.multipart_data.items():
        data = content if isinstance(content, bytes) else content.read()
        disposition = _part_head(boundary, name, filename)
        chunks.append(disposition + f"Content-Type: {mime_type}\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, b"".join(chunks)


def _part_head(boundary: str, name: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{_quoted(name)}"'
    if filename is not None:
        disposition += f'; filename="{_quoted(filename)}"'
    return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()


def _quoted(value: str) -> str:
    # As browsers and httpx write multipart names: quotes and line breaks percent-encoded.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _request_head(parts: SplitResult, method: str, headers: dict[str, str], length: int) -> bytes:
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"User-Agent: {BaseRequest.USER_AGENT}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_response(reader: asyncio.StreamReader) -> _Response:
    """Read one HTTP/1.1 response."""
    response = _Response()
    while not response.complete:
        data = await reader.read(CHUNK)
        if not data:  # the Bot API sends a length or chunks: a body never ends with the connection
            raise EOFError("the server closed the connection before its response ended")
        response.parser.feed_data(data)
    return response
