"""Agent messaging: a message to an agent, delivered through its queue (priority, optional expiry)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.schemas import SendMessageRequest

router = APIRouter(prefix=f"{API_PREFIX}/messages", tags=["messages"], dependencies=AUTHENTICATED)


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Send a message to an agent")
def send_message(body: SendMessageRequest, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.send_message(
        principal,
        sender=body.sender,
        recipient=body.recipient,
        message_type=body.message_type,
        payload=body.payload,
        priority=body.priority,
        expires_in_seconds=body.expires_in_seconds,
    )


@router.get("/{agent_id}", summary="An agent's inbox: delivered messages, newest first")
def inbox(
    agent_id: str, service: ServiceDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> dict[str, Any]:
    messages = service.inbox(principal, agent_id, limit=limit)
    return {"agent_id": agent_id, "messages": messages, "count": len(messages)}
