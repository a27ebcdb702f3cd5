"""``GET /api/health``: the one open route (no token), polled by load balancers and the chat UI.

503 with ``status: unhealthy`` and an ORCH code when Redis does not answer (found out in about half a second:
the probe has short timeouts and no retries), so a load balancer takes the instance out instead of waiting.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.http.deps import ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.schemas import HealthUnavailable

router = APIRouter(prefix=API_PREFIX, tags=["system"])


@router.get(
    "/health",
    summary="Liveness and the original's health fields (no token needed); 503 when Redis does not answer",
    response_model=dict[str, Any],
    responses={503: {"model": HealthUnavailable, "description": "Redis does not answer (status unhealthy)"}},
)
def health(service: ServiceDep) -> Any:  # dict, or a 503 JSONResponse
    body = service.health()
    if body.get("status") == "unhealthy":
        return JSONResponse(body, status_code=503)
    return body
