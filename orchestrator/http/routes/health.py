"""``GET /api/health``: the one open route (no token), polled by load balancers and the chat UI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from orchestrator.http.deps import ServiceDep
from orchestrator.http.routes import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["system"])


@router.get("/health", summary="Liveness and the compatible health fields (no token needed)")
def health(service: ServiceDep) -> dict[str, Any]:
    return service.health()
