"""``GET /api/worklog``: recent workflow runs, single tasks and chat exchanges, in the shape itom-chat-ui reads.

The UI expects ``{items: [{type, number, short_description, priority, state, opened_at, due_date,
assigned_to, sys_id}], status}``; here each item is one of our runs or chat turns (``type`` is ``workflow``,
``task`` or ``chat``; ``number`` and ``sys_id`` are the run or message id). Serves the opt-in anonymous
principal too, as the UI sends no token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.http.deps import ChatPrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["chat"])


@router.get("/worklog", summary="Recent runs, tasks and chat exchanges (itom-chat-ui's work items)")
def worklog(
    service: ServiceDep,
    principal: ChatPrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Most items returned, newest first")] = 50,
) -> dict[str, Any]:
    return service.worklog(principal, limit=limit)
