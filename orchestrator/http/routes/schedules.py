"""Schedules: a template started on a cron schedule (UTC) with fixed parameters, by the beat.

Adding validates like a start (cron, template, parameters, policy) and answers 201 with the schedule; listing
shows each schedule's ``state`` (ok, invalid, failing) and ``problem`` so a broken one is never silent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.models.schedule import SCHEDULE_ID_PATTERN, ScheduleSpec, ScheduleView

router = APIRouter(prefix=f"{API_PREFIX}/schedules", tags=["schedules"], dependencies=AUTHENTICATED)
ScheduleId = Annotated[str, Path(pattern=SCHEDULE_ID_PATTERN, description="A schedule id from GET /api/schedules")]


@router.get("", summary="Schedules with next run, last run and whether each can still start")
def list_schedules(service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    schedules = service.list_schedules(principal)
    return {"schedules": [s.model_dump(mode="json") for s in schedules], "count": len(schedules)}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a schedule (validated now; runs at the next match)")
def add_schedule(body: ScheduleSpec, service: ServiceDep, principal: PrincipalDep) -> ScheduleView:
    return service.add_schedule(principal, body)


@router.get("/{schedule_id}", summary="One schedule")
def get_schedule(schedule_id: ScheduleId, service: ServiceDep, principal: PrincipalDep) -> ScheduleView:
    return service.get_schedule(principal, schedule_id)


@router.delete("/{schedule_id}", summary="Remove a schedule (runs it already started are not touched)")
def remove_schedule(schedule_id: ScheduleId, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    return service.remove_schedule(principal, schedule_id)
