"""Agent registry and health: the original's routes and shapes, backed by real worker heartbeats."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.http.deps import AUTHENTICATED, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.mcp import views

router = APIRouter(prefix=f"{API_PREFIX}/agents", tags=["agents"], dependencies=AUTHENTICATED)
ForceCheck = Annotated[bool, Query(description="Also ping the agent's workers over Celery's control channel")]


@router.get("", summary="Registered agents (one filter applies: capability > domain > status)")
def list_agents(
    service: ServiceDep,
    domain: Annotated[str | None, Query(description="cmdb, discovery, asset, csa, audit, ...")] = None,
    status: Annotated[str | None, Query(description="online, offline, degraded or maintenance")] = None,
    capability: Annotated[str | None, Query(description="An action name, e.g. cmdb.query")] = None,
) -> dict[str, Any]:
    return views.agent_registry(service, domain=domain, status=status, capability=capability)


@router.get("/status", summary="Every agent's status and the status counts")
def agents_status(service: ServiceDep, force_check: ForceCheck = False) -> dict[str, Any]:
    return service.agents.summary(force=force_check)


@router.get("/{agent_id}", summary="One agent's full record, with capability schemas")
def agent_details(service: ServiceDep, agent_id: str) -> dict[str, Any]:
    return views.agent_details(service, agent_id)


@router.get("/{agent_id}/health", summary="One agent's health view and check history")
def agent_health(service: ServiceDep, agent_id: str, force_check: ForceCheck = False) -> dict[str, Any]:
    return service.agents.health_view(agent_id, force=force_check)
