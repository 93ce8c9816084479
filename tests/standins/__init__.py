"""Stand-in servers for the HTTP services vinbot calls, speaking their real wire formats.

Each stand-in is a Starlette app; `serving` runs one with uvicorn on 127.0.0.1, on a
free port, as a task in the test's event loop, so tests reach it over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


class LoopbackServer(uvicorn.Server):
    """uvicorn as a task of the test's event loop; the test process keeps its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(app: ASGIApp, *, lifespan: Literal["on", "off"] = "off") -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yield its base URL (`http://127.0.0.1:<port>`).

    `lifespan="on"` runs the app's start-up and shut-down (the real API opens its
    database and cache there).
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then, and without it every reply
    # waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_config=None,
        ws="none",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = LoopbackServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(120):
            while not server.started:
                if task.done():
                    task.result()  # surfaces the start-up error
                    raise RuntimeError("the server stopped during start-up")
                await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
