"""A stand-in for Upstash's Redis REST API, forwarding every command to a real Redis.

Wire format (what upstash-redis 1.8.0 sends and reads):

* ``POST /`` with a JSON array command (``["SET", "k", "v", "EX", 60]``) answers
  ``{"result": ...}``, or ``{"error": "ERR ..."}`` with HTTP 400;
* ``POST /pipeline`` and ``POST /multi-exec`` take an array of commands and answer an
  array of ``{"result"|"error"}`` (multi-exec runs them in MULTI/EXEC);
* ``Authorization: Bearer <token>`` is required (401 otherwise);
* with ``Upstash-Encoding: base64`` (the SDK's default) every string in a result is
  base64-encoded except the status ``OK``; integers, nulls and arrays stay as they are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from standins import serving

Command = list[str | int | float]


def _error(e: ResponseError) -> dict[str, Any]:
    # redis-py strips the error code it recognises ("ERR", "NOSCRIPT"); put it back.
    return {"error": f"{e.status_code} {e}" if e.status_code else str(e)}


def _encode(value: Any, base64_strings: bool) -> Any:
    if isinstance(value, list):
        return [_encode(v, base64_strings) for v in value]
    if isinstance(value, bytes):
        if not base64_strings:
            return value.decode(errors="replace")
        return "OK" if value == b"OK" else base64.b64encode(value).decode()
    return value  # int or None


def _commands(body: Any, *, batch: bool) -> list[Command]:
    commands = body if batch else [body]
    if not isinstance(commands, list) or not commands:
        raise ValueError("empty command")
    for cmd in commands:
        if not isinstance(cmd, list) or not cmd:
            raise ValueError("a command is a non-empty JSON array")
        if not all(isinstance(a, str | int | float) and not isinstance(a, bool) for a in cmd):
            raise ValueError("command arguments are strings or numbers")
    return commands


async def _run(conn: Connection, cmd: Command) -> dict[str, Any]:
    await conn.send_command(*cmd)
    try:
        return {"result": await conn.read_response()}
    except ResponseError as e:
        return _error(e)


async def _transaction(conn: Connection, commands: list[Command]) -> list[dict[str, Any]] | dict[str, Any]:
    await _run(conn, ["MULTI"])
    for cmd in commands:
        await _run(conn, cmd)
    done = await _run(conn, ["EXEC"])
    if "error" in done:  # EXECABORT: a command was rejected while queueing
        return done
    return [_error(r) if isinstance(r, ResponseError) else {"result": r} for r in done["result"]]


def upstash_app(pool: aioredis.ConnectionPool, *, token: str) -> Starlette:
    """Build the app; every command runs on a connection from `pool` (RESP2, no decoding)."""

    async def handle(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        kind = request.url.path.strip("/")  # "", "pipeline" or "multi-exec"
        try:
            commands = _commands(json.loads(await request.body()), batch=bool(kind))
        except ValueError as e:  # JSONDecodeError included
            return JSONResponse({"error": f"ERR failed to parse command: {e}"}, status_code=400)
        b64 = request.headers.get("upstash-encoding") == "base64"
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]  # decorated, so untyped
        try:
            if kind == "multi-exec":
                replies = await _transaction(conn, commands)
            else:
                replies = [await _run(conn, cmd) for cmd in commands]
        finally:
            await pool.release(conn)
        if isinstance(replies, dict):
            return JSONResponse(replies, status_code=400)
        out = [{k: _encode(v, b64) for k, v in r.items()} for r in replies]
        if kind:
            return JSONResponse(out)
        return JSONResponse(out[0], status_code=400 if "error" in out[0] else 200)

    paths = ("/", "/pipeline", "/multi-exec")
    return Starlette(routes=[Route(path, handle, methods=["POST"]) for path in paths])


@asynccontextmanager
async def serving_upstash(redis_url: str, *, token: str) -> AsyncIterator[str]:
    """Serve the stand-in in front of `redis_url` (any redis-py URL); yield its REST URL."""
    pool = aioredis.ConnectionPool.from_url(redis_url, protocol=2)
    try:
        async with serving(upstash_app(pool, token=token)) as url:
            yield url
    finally:
        await pool.disconnect()
