"""Dead letters: steps that exhausted their retries or were refused, and re-driving them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/dlq", tags=["dead letters"], dependencies=AUTHENTICATED)
DlqId = Annotated[str, Path(pattern=r"^\d+-\d+$", description="A dead-letter id from GET /api/dlq")]


@router.get("", summary="Dead letters, newest first")
def list_dead_letters(
    service: ServiceDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    reason: Annotated[str | None, Query(description="Only this reason, e.g. retries_exhausted")] = None,
) -> dict[str, Any]:
    entries = service.dlq_list(principal, limit=limit, reason=reason)
    return {"entries": entries, "count": len(entries)}


@router.get("/{dlq_id}", summary="One dead letter with its payload and error")
def show_dead_letter(dlq_id: DlqId, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.dlq_show(principal, dlq_id)


@router.post("/{dlq_id}/redrive", summary="Re-drive: resume its run, or run its action again")
def redrive_dead_letter(dlq_id: DlqId, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.dlq_redrive(principal, dlq_id)
