"""`GET /healthz`: 200 when the database, the cache and the agent are ready, else 503."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import HealthResponse

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A part is down; `down` names it."}},
    summary="Readiness",
)
async def healthz(services: ServicesDep) -> JSONResponse:
    """Report whether every part the service needs is ready."""
    checks = dict(await services.health())
    down = [name for name, ok in checks.items() if not ok]
    health = HealthResponse(status="unavailable" if down else "ok", checks=checks, down=down)
    return JSONResponse(health.model_dump(mode="json"), status_code=503 if down else 200)
