"""Single actions: a one-step run on one agent (same policy gate, state and events as workflows)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.routes.workflows import accepted
from orchestrator.http.schemas import ExecuteTaskRequest, RunAccepted
from orchestrator.models.run import RunView
from orchestrator.service import wait_budget

router = APIRouter(prefix=f"{API_PREFIX}/tasks", tags=["tasks"], dependencies=AUTHENTICATED)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Run one action (202 with the run id; with wait=true, 200 with the finished run)",
    responses={200: {"model": RunView, "description": "wait=true: the run after it ended"}},
)
def execute_task(
    body: ExecuteTaskRequest, response: Response, service: ServiceDep, principal: PrincipalDep
) -> RunAccepted | RunView:
    view = service.execute_task(
        principal,
        action=body.action,
        parameters=body.parameters,
        agent_id=body.agent_id,
        priority=body.priority,
        timeout_seconds=body.timeout_seconds,
        idempotency_key=body.idempotency_key,
        source="http",
    )
    if not body.wait:
        return accepted(response, view)
    response.status_code = status.HTTP_200_OK
    return service.wait_for_run(view.run_id, timeout=wait_budget(body.timeout_seconds))
