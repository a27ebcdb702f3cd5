"""Agent messaging: a message to an agent, delivered through its queue (priority, optional expiry)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

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
