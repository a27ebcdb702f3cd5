"""Workflow runs: start (202 once durably recorded), list, read, cancel, resume."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.schemas import RunAccepted, RunPage, StartWorkflowRequest
from orchestrator.models.common import RunStatus
from orchestrator.models.run import RunView

router = APIRouter(prefix=f"{API_PREFIX}/workflows", tags=["workflows"], dependencies=AUTHENTICATED)


def accepted(response: Response, view: RunView) -> RunAccepted:
    response.headers["Location"] = f"/api/workflows/{view.run_id}"
    return RunAccepted(run_id=view.run_id, status=view.status)


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Start a workflow from a template or a definition")
def start_workflow(
    body: StartWorkflowRequest, response: Response, service: ServiceDep, principal: PrincipalDep
) -> RunAccepted:
    view = service.start_workflow(
        principal,
        template_id=body.template_id,
        definition=body.definition,
        parameters=body.parameters,
        priority=body.priority,
        idempotency_key=body.idempotency_key,
        source="http",
    )
    return accepted(response, view)


@router.get("", summary="Runs, newest first, paged")
def list_runs(
    service: ServiceDep,
    status_filter: Annotated[RunStatus | None, Query(alias="status", description="Only runs in this status")] = None,
    template_id: Annotated[str | None, Query(description="Only runs of this template")] = None,
    since: Annotated[datetime | None, Query(description="Only runs created at or after this ISO-8601 time")] = None,
    until: Annotated[datetime | None, Query(description="Only runs created at or before this ISO-8601 time")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunPage:
    status = status_filter.value if status_filter else None
    items, total = service.list_runs(
        status=status, template_id=template_id, since=since, until=until, offset=offset, limit=limit
    )
    return RunPage(items=items, total=total, offset=offset, limit=limit)


@router.get("/{run_id}", summary="One run: status, steps, attempts, results, error")
def get_run(run_id: str, service: ServiceDep) -> RunView:
    return service.get_run(run_id)


@router.post("/{run_id}/cancel", summary="Cancel a pending or running run (409 ORCH_3002 otherwise)")
def cancel_run(run_id: str, service: ServiceDep, principal: PrincipalDep) -> RunView:
    return service.cancel_run(principal, run_id)


@router.post("/{run_id}/resume", summary="Resume a failed or cancelled run: only unfinished steps run again")
def resume_run(run_id: str, service: ServiceDep, principal: PrincipalDep) -> RunView:
    return service.resume_run(principal, run_id)
