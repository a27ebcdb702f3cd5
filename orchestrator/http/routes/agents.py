"""Agent registry and health: the compatible routes and shapes, backed by real worker heartbeats.

``GET /api/agents/status`` also serves the opt-in anonymous principal (itom-chat-ui polls it without a
token); every other route here needs a bearer token. ``POST /api/agents/{id}/status`` sets the persisted
administrative status (``maintenance`` takes the agent out of chat routing until set back to ``active``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from orchestrator.http.deps import AUTHENTICATED, ChatPrincipalDep, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/agents", tags=["agents"])
ForceCheck = Annotated[bool, Query(description="Also ping the agent's workers over Celery's control channel")]


class AgentStatusChange(BaseModel):
    """``active``: status follows the workers' heartbeats; ``maintenance``: shown as such, skipped by routing."""

    status: Literal["active", "maintenance"]
    reason: str | None = Field(default=None, max_length=500)


@router.get("", summary="Registered agents (one filter: capability > domain > status)", dependencies=AUTHENTICATED)
def list_agents(
    service: ServiceDep,
    domain: Annotated[str | None, Query(description="cmdb, discovery, asset, csa, audit, ...")] = None,
    status: Annotated[str | None, Query(description="online, offline, degraded or maintenance")] = None,
    capability: Annotated[str | None, Query(description="An action name, e.g. cmdb.query")] = None,
) -> dict[str, Any]:
    return service.agent_registry(domain=domain, status=status, capability=capability)


@router.get("/status", summary="Every agent's status and the status counts")
def agents_status(service: ServiceDep, principal: ChatPrincipalDep, force_check: ForceCheck = False) -> dict[str, Any]:
    return service.agents_summary(force=force_check)


@router.get("/{agent_id}", summary="One agent's full record, with capability schemas", dependencies=AUTHENTICATED)
def agent_details(service: ServiceDep, agent_id: str) -> dict[str, Any]:
    return service.agent_details(agent_id)


@router.get("/{agent_id}/health", summary="One agent's health view and check history", dependencies=AUTHENTICATED)
def agent_health(service: ServiceDep, agent_id: str, force_check: ForceCheck = False) -> dict[str, Any]:
    return service.agent_health(agent_id, force=force_check)


@router.post("/{agent_id}/status", summary="Set an agent's administrative status (persisted in the registry file)")
def set_agent_status(
    service: ServiceDep, principal: PrincipalDep, agent_id: str, body: AgentStatusChange
) -> dict[str, Any]:
    return service.set_agent_status(principal, agent_id, body.status, reason=body.reason)
