"""Single actions: a one-step run on one agent (same policy gate, state and events as workflows)."""

from __future__ import annotations

import anyio.to_thread
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
async def execute_task(
    body: ExecuteTaskRequest, response: Response, service: ServiceDep, principal: PrincipalDep
) -> RunAccepted | RunView:
    """Async so that ``wait=true`` holds no thread: the wait is a coroutine on the process's event hub."""
    if body.wait:
        service.wait_seconds(body.timeout_seconds)  # ORCH_8003 above ORCH_FRONTDOOR__WAIT_MAX_SECONDS
    view = await anyio.to_thread.run_sync(
        lambda: service.execute_task(
            principal,
            action=body.action,
            parameters=body.parameters,
            agent_id=body.agent_id,
            priority=body.priority,
            timeout_seconds=body.timeout_seconds,
            idempotency_key=body.idempotency_key,
            source="http",
        )
    )
    if not body.wait:
        return accepted(response, view)
    response.status_code = status.HTTP_200_OK
    return await service.wait_for_run_async(view.run_id, timeout=wait_budget(body.timeout_seconds))
