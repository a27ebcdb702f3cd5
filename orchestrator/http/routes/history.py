"""``GET /api/execution-history``: the compatible per-attempt execution records, stats and active tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.http.deps import AUTHENTICATED, ServiceDep
from orchestrator.http.routes import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["tasks"], dependencies=AUTHENTICATED)


@router.get("/execution-history", summary="Execution records (newest first), stats and active tasks")
def execution_history(
    service: ServiceDep,
    task_id: Annotated[str | None, Query(description="Only records of this task (run) id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    return service.execution_history(task_id=task_id, limit=limit)
