"""The FastAPI application: its one composition root (the lifespan) and `serve`, the entry function.

    vinbot api --host 0.0.0.0 --port 8000   ->   api.app.serve(settings, host, port)
    vinbot api --workers 2                  ->   api.app.serve_workers("vinbot.api_cmd:worker_app", ...)

`create_app` wires routes, error mapping and middleware; its lifespan opens the
infrastructure (PostgreSQL, Redis, HTTP client), builds the tools' dependencies and
the assistant, and yields them as the typed lifespan state. Nothing is built at import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.supervisors import Multiprocess

from agent.assistant import Assistant
from agent.bootstrap import build_assistant
from api.deps import Services, State
from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware
from api.routes import ask, health, jobs, vin, web
from tools.bootstrap import Infrastructure, ToolDeps, build_tool_deps, open_infrastructure
from tools.settings import Settings

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 5.0

AssistantFactory = Callable[[Settings, ToolDeps], Assistant]
"""Build the assistant from settings and the tools' dependencies (`agent.bootstrap.build_assistant`)."""

ServicesFactory = Callable[[Settings, AssistantFactory], AbstractAsyncContextManager[Services]]
"""Open everything the routes need for the life of the app, and close it on exit."""

DESCRIPTION = """
A conversational vehicle assistant over HTTP.

* `POST /ask` answers a question as JSON, or as Server-Sent Events with `Accept: text/event-stream`
  (`token`, `tool_call`, `tool_result`, then `answer`; `error` ends a failed stream).
* `GET /api/v1/vin/{vin}` decodes a VIN.
* `POST /api/v1/jobs` starts a bulk decode job (a JSON list of VINs or an uploaded CSV/text file);
  `GET /api/v1/jobs/{id}` reads its progress, `GET /api/v1/jobs/{id}/results?format=csv|json` its
  results and `DELETE /api/v1/jobs/{id}` cancels it. A job is visible only to the caller who started it.

Errors are JSON `{"error": <stable code>, "message": ...}`: 422 `invalid_input`/`invalid_vin`,
403 `not_allowed`, 404 `vehicle_not_found`/`job_not_found`, 429 `rate_limited` (with `Retry-After`), 503
`provider_unavailable`. Anonymous callers are limited per IP address
(`VINBOT_LIMITS__ANONYMOUS_REQUESTS_PER_MINUTE`) and per user (`VINBOT_LIMITS__MESSAGES_PER_MINUTE`).
"""


def create_app(
    settings: Settings,
    *,
    assistant_factory: AssistantFactory | None = None,
    services_factory: ServicesFactory | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Return the API application.

    Args:
        settings: The process's settings.
        assistant_factory: Builds the assistant; `agent.bootstrap.build_assistant` by default.
        services_factory: Opens the services; by default the real infrastructure
            (tests pass one that yields fakes).
        routers: Extra routers the composition root mounts (the Telegram webhook); their
            lifespans run inside the app's.
    """
    build = assistant_factory or build_assistant
    open_services = services_factory or open_real_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        async with open_services(settings, build) as services:
            yield {"services": services}

    app = FastAPI(
        title="vinbot",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    # Added last, so it is outermost: even a last-resort 500 carries the request id.
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(ask.router)
    app.include_router(vin.router)
    app.include_router(jobs.router)
    app.include_router(web.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    return app


@asynccontextmanager
async def open_real_services(settings: Settings, build: AssistantFactory) -> AsyncIterator[Services]:
    """Open the infrastructure, build the tools' dependencies and the assistant; close all on exit."""
    async with open_infrastructure(settings) as infra:
        deps = build_tool_deps(settings, infra)
        assistant = build(settings, deps)
        yield Services(
            settings=settings,
            assistant=assistant,
            limiter=deps.limiter,
            vin=deps.vin,
            sessions=deps.sessions,
            health=InfrastructureHealth(infra),
            bulk=deps.bulk,
        )


@dataclass(frozen=True)
class InfrastructureHealth:
    """The `HealthCheck` of the real services: database and cache probes, bounded in time."""

    infra: Infrastructure
    timeout_s: float = HEALTH_TIMEOUT_S

    async def __call__(self) -> Mapping[str, bool]:
        try:
            async with asyncio.timeout(self.timeout_s):
                status = await self.infra.check()
        except TimeoutError:
            logger.warning("health check timed out after %.1f s", self.timeout_s)
            status = {"database": False, "cache": False}
        # The lifespan builds the assistant before the first request, or the app does not
        # start; with no LLM reachable it still answers with the offline planner.
        return {**status, "agent": True}


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 8000, routers: Sequence[APIRouter] = ()
) -> None:
    """Serve the API with uvicorn in this process until interrupted (`vinbot api --workers 1`).

    Logging is the caller's (`configure_logging`); uvicorn only adds its records to it.
    Proxy headers (`X-Forwarded-For`) are trusted from the addresses in uvicorn's
    `FORWARDED_ALLOW_IPS` (default 127.0.0.1), so the per-IP limit sees real clients.
    uvicorn runs on uvloop and parses HTTP with httptools (both installed; its "auto" choice).
    """
    _announce(host, port)
    uvicorn.Server(
        uvicorn.Config(create_app(settings, routers=routers), host=host, port=port, **_OPTIONS)
    ).run()


def serve_workers(app_factory: str, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 2) -> None:
    """Serve the API in `workers` processes sharing one socket until interrupted (`vinbot api`).

    Each worker process imports `app_factory` ("module:function", called with no argument),
    which builds its settings and app as `serve` does; uvicorn's supervisor restarts a worker
    that dies. The caller starts the embedded servers (if any) and passes their URLs to the
    workers in the environment, so they all attach to the same PostgreSQL and Redis.
    """
    _announce(host, port)
    config = uvicorn.Config(app_factory, host=host, port=port, factory=True, workers=workers, **_OPTIONS)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


# One set of uvicorn options for one process or several.
_OPTIONS: dict[str, Any] = {
    "log_config": None,
    "proxy_headers": True,
    "server_header": False,
    "ws": "none",
    "lifespan": "on",
    "timeout_graceful_shutdown": 10,
}


def _announce(host: str, port: int) -> None:
    # Say where the server listens even when the process logs only warnings.
    announce = logging.getLogger("uvicorn.error")
    announce.setLevel(logging.INFO)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only for display
    announce.info(
        "vinbot: chat page at http://%s:%d/ ; ask over HTTP with: curl -s -X POST http://%s:%d/ask "
        "-H 'content-type: application/json' -d '{\"message\": \"what can you do?\"}'",
        shown,
        port,
        shown,
        port,
    )
