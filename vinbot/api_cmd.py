"""`vinbot api`: the HTTP API in one process, or in several worker processes on one socket.

    vinbot api [--host H] [--port P] [--workers N]

`--workers` defaults to `VINBOT_API_WORKERS`, else one per CPU core. One uvicorn worker
is one event loop on at most one core, so several workers multiply the requests per
second the machine can answer. With several workers this process starts (or attaches
to) the embedded PostgreSQL and Redis that nothing configures, migrates once, and hands
their URLs to the workers, which then share them; it stops them after the workers exit.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from fastapi import FastAPI

from tools.settings import Settings, get_settings

WORKERS_ENV = "VINBOT_API_WORKERS"
# One worker per usable core, at most this many: each keeps `VINBOT_DB_POOL_SIZE` connections.
DEFAULT_WORKERS_MAX = 4
# How the parent tells its workers the -v count it was given (they configure their own logging).
_VERBOSITY_ENV = "VINBOT_API_VERBOSITY"
WORKER_APP = "vinbot.api_cmd:worker_app"


@dataclass(frozen=True)
class ApiOptions:
    """The options of `vinbot api`."""

    host: str
    port: int
    workers: int | None  # None: VINBOT_API_WORKERS, else one per CPU core
    verbose: int = 0


def worker_count(given: int | None) -> int:
    """Return the worker processes to run: `given`, else `VINBOT_API_WORKERS`, else the cores (up to 4)."""
    if given is not None:
        return max(1, given)
    configured = os.environ.get(WORKERS_ENV, "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise SystemExit(f"{WORKERS_ENV} must be a whole number, not {configured!r}") from None
    return min(len(os.sched_getaffinity(0)), DEFAULT_WORKERS_MAX)


def run_api(settings: Settings, options: ApiOptions) -> int:
    """Serve until interrupted; return the exit status."""
    from api.app import serve, serve_workers
    from bot.webhook import webhook_routers

    workers = worker_count(options.workers)
    if workers == 1:
        routers = webhook_routers(settings)  # the Telegram webhook, in webhook mode only
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server is stopped
            serve(settings, host=options.host, port=options.port, routers=routers)
        return 0

    from tools.bootstrap import shared_embedded_servers

    with shared_embedded_servers(settings) as env:
        # The workers are spawned processes: they read these from the environment.
        os.environ.update(env)
        os.environ[_VERBOSITY_ENV] = str(options.verbose)
        with contextlib.suppress(KeyboardInterrupt):
            serve_workers(WORKER_APP, host=options.host, port=options.port, workers=workers)
    return 0


def worker_app() -> FastAPI:
    """Build one worker's app, as `run_api` does for a single process (uvicorn calls this)."""
    from api.app import create_app
    from bot.webhook import webhook_routers
    from vinbot.cli import configure_process

    settings = get_settings()
    configure_process(settings, int(os.environ.get(_VERBOSITY_ENV, "0") or 0))
    return create_app(settings, routers=webhook_routers(settings))
