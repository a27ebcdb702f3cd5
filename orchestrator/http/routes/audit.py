"""The tamper-evident audit log: query, export as JSON Lines (streamed), verify the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.models.events import AuditEntry

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"], dependencies=AUTHENTICATED)
Since = Annotated[datetime | None, Query(description="ISO-8601 time, inclusive")]
Until = Annotated[datetime | None, Query(description="ISO-8601 time, inclusive")]


@router.get("", summary="Audit entries, newest first, filtered")
def query_audit(
    *,
    service: ServiceDep,
    principal: PrincipalDep,
    event_type: Annotated[str | None, Query(description="e.g. workflow_started, permission_denied")] = None,
    actor: Annotated[str | None, Query(description="e.g. operator:ann")] = None,
    target: Annotated[str | None, Query(description="A run id, agent id, dead-letter id...")] = None,
    run_id: Annotated[
        str | None, Query(max_length=200, description="Only this run and its steps (other filters ignored)")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    if run_id is not None:
        tail = service.run_audit(principal, run_id, limit=limit)
        return {"entries": [e.model_dump(mode="json") for e in tail], "count": len(tail)}
    entries: list[AuditEntry] = service.audit_query(
        principal, event_type=event_type, actor=actor, target=target, since=since, until=until, limit=limit
    )
    return {"entries": [e.model_dump(mode="json") for e in entries], "count": len(entries)}


@router.get(
    "/export",
    summary="Every entry in the window as JSON Lines, oldest first (streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One JSON entry per line"}},
)
def export_audit(
    service: ServiceDep, principal: PrincipalDep, since: Since = None, until: Until = None
) -> StreamingResponse:
    return StreamingResponse(
        service.audit_export(principal, since=since, until=until),  # each line ends in its own newline
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


@router.get("/verify", summary="Check the hash chain end to end (ok, count, and where it breaks)")
def verify_audit(service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.audit_verify(principal)
