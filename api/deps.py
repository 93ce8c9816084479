"""What the routes receive: `Annotated` dependencies read from the lifespan state.

The lifespan (`api.app.create_app`) builds one `Services` and yields it as the typed
`State`; nothing here creates clients or reads settings on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, TypedDict

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agent.assistant import Asker, Assistant
from tools.bulk import BulkDeps
from tools.providers.base import Limit, LimitCheck, RateLimiter
from tools.settings import Settings, Tier
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user
from tools.vin import Caller, VinDeps

HealthCheck = Callable[[], Awaitable[Mapping[str, bool]]]
"""Return the readiness of each part (`database`, `cache`, `agent`): True when ready."""


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once per process by the lifespan."""

    settings: Settings
    assistant: Assistant
    limiter: RateLimiter
    vin: VinDeps
    sessions: async_sessionmaker[AsyncSession]
    health: HealthCheck
    bulk: BulkDeps | None = None  # None: bulk jobs are off (no Redis broker)


class State(TypedDict):
    """The typed lifespan state: Starlette copies it into each request's `request.state`."""

    services: Services


@dataclass(frozen=True, slots=True)
class Client:
    """Who is calling over HTTP.

    Every caller is anonymous for now, limited per IP address. API keys (a later
    issue) will authenticate here and set the tier and a stable external id.
    """

    ip: str
    tier: Tier = "free"
    limits: tuple[LimitCheck, ...] = ()  # not spent yet: the assistant spends them with its own

    def asker(self, conversation_id: str, *, new: bool = False) -> Asker:
        """Return the assistant's view of this caller in `conversation_id`.

        An anonymous caller is identified by the conversation itself: whoever holds
        the (unguessable, server-generated) id owns the conversation, and nobody
        else's history is in reach. `new`: the id was generated for this request, so
        its user cannot exist yet.
        """
        return Asker(external_id=f"anon:{conversation_id}", channel="api", limits=self.limits, new_user=new)

    @property
    def external_id(self) -> str:
        """The user behind direct capability calls (VIN decodes) from this caller.

        The address is hashed so that the users table holds no IP addresses.
        """
        digest = hashlib.sha256(self.ip.encode()).hexdigest()[:24]
        return f"anon:ip:{digest}"


# The dependencies below are `async def` although they never await: FastAPI runs a plain
# `def` dependency in its thread pool, a thread hop per dependency and request.


async def get_services(request: Request) -> Services:
    """Return the process's services from the lifespan state."""
    services: Services = request.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    """Return the settings the app was created with."""
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def client_ip(request: Request) -> str:
    """Return the caller's address as the server saw it (after trusted proxy headers)."""
    return request.client.host if request.client is not None else "unknown"


def per_ip(services: Services, ip: str) -> LimitCheck:
    """Return the per-address request limit (`limits.anonymous_requests_per_minute`)."""
    limit = Limit(services.settings.limits.anonymous_requests_per_minute, timedelta(minutes=1))
    return LimitCheck(f"ip:{ip}:requests:minute", limit)


async def current_client(request: Request, services: ServicesDep) -> Client:
    """Identify the caller and spend one request of its per-IP limit.

    Raises:
        RateLimited: the address has used `limits.anonymous_requests_per_minute`.
    """
    ip = client_ip(request)
    await services.limiter.acquire_all([per_ip(services, ip)])
    return Client(ip=ip)


ClientDep = Annotated[Client, Depends(current_client)]


@dataclass(frozen=True, slots=True)
class Asking:
    """What `POST /ask` needs: the assistant, and who is asking."""

    assistant: Assistant
    client: Client


async def asking(request: Request) -> Asking:
    """Return the assistant and its caller; the caller's per-IP limit is spent by the assistant.

    The assistant spends it together with the user's own limit, in one round trip to
    Redis, before it answers or writes anything (`Asker.limits`). One dependency without
    sub-dependencies: FastAPI's resolution of each dependency cost more CPU per `/ask`
    than the route's own code.
    """
    services = await get_services(request)
    ip = client_ip(request)
    return Asking(services.assistant, Client(ip=ip, limits=(per_ip(services, ip),)))


AskingDep = Annotated[Asking, Depends(asking)]


async def current_caller(client: ClientDep, services: ServicesDep) -> Caller:
    """Return the capability `Caller` of this client (its user is created on first contact)."""
    async with transaction(services.sessions) as session:
        user = await get_or_create_user(session, client.external_id, tier=client.tier)
    return Caller(user_id=user.id, tier=client.tier, channel="api")


CallerDep = Annotated[Caller, Depends(current_caller)]


async def get_vin_deps(services: ServicesDep) -> VinDeps:
    """Return what the VIN capability needs."""
    return services.vin


VinDepsDep = Annotated[VinDeps, Depends(get_vin_deps)]
