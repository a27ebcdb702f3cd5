"""``GET /api/health`` (and ``HEAD``): the one open route (no token), polled by load balancers and the chat UI.

503 with ``status: unhealthy`` and an ORCH code when Redis does not answer (found out in about half a second:
the probe has short timeouts and no retries), so a load balancer takes the instance out instead of waiting.
Its own few threads keep it answering while every shared worker thread is busy with other routes.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orchestrator.http.deps import ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.schemas import HealthUnavailable

router = APIRouter(prefix=API_PREFIX, tags=["system"])
HEALTH_THREADS = 4


def _limiter(request: Request) -> anyio.CapacityLimiter:
    """Health checks run on threads of their own: a load balancer's probe never queues behind busy routes."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "health_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(HEALTH_THREADS)
        request.app.state.health_limiter = limiter
    return limiter


@router.get(
    "/health",
    summary="Liveness and the compatible health fields (no token needed); 503 when Redis does not answer",
    response_model=dict[str, Any],
    responses={503: {"model": HealthUnavailable, "description": "Redis does not answer (status unhealthy)"}},
)
async def health(request: Request, service: ServiceDep) -> Any:  # dict, or a 503 JSONResponse
    body = await anyio.to_thread.run_sync(service.health, limiter=_limiter(request))
    if body.get("status") == "unhealthy":
        return JSONResponse(body, status_code=503)
    return body


@router.head("/health", include_in_schema=False)
async def health_head(request: Request, service: ServiceDep) -> Any:
    """The same answer without a body, for load balancers and monitors that probe with HEAD (they read the status)."""
    return await health(request, service)
