"""Schedules behind the service: add (validated), list (with what is wrong now), remove, and fire.

Why validate at add *and* on every list: a schedule is checked like a start (cron, template, parameters and
the policy gate) before it is stored, but templates change later; ``list`` plans each one again so a schedule
that can no longer start shows ``invalid`` with the reason at once, not only after it failed at 3 a.m.

Why the beat fires through the service: a scheduled start is an ordinary ``start_workflow`` by the principal
``scheduler`` (same plan, same policy gate, same audit entries, under actor ``scheduler``); when it cannot
start, the schedule records the error and an audit entry and a ``schedule.failed`` event say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from orchestrator.errors import InputInvalidError, OrchestratorError, RoleViolationError
from orchestrator.models.common import utcnow
from orchestrator.models.run import ErrorInfo, RunView
from orchestrator.models.schedule import ScheduleSpec, ScheduleView
from orchestrator.schedules import cron
from orchestrator.schedules.store import ScheduleStore, configure_redbeat
from orchestrator.security.principals import Principal, require
from orchestrator.workflows.dag import plan as plan_workflow

if TYPE_CHECKING:
    from celery import Celery

    from orchestrator.runtime.redis_client import RedisClient
    from orchestrator.security.policy import PolicyGate
    from orchestrator.settings import Settings
    from orchestrator.state.audit import AuditLog
    from orchestrator.state.events import EventBus
    from orchestrator.state.templates import TemplateRegistry

log = logging.getLogger(__name__)

SCHEDULE_ADDED = "schedule.added"
SCHEDULE_REMOVED = "schedule.removed"
SCHEDULE_FIRED = "schedule.fired"
SCHEDULE_FAILED = "schedule.failed"
EVENT_SOURCE = "scheduler"


@dataclass(frozen=True)
class SchedulerPrincipal(Principal):
    """Who starts scheduled runs: operator rights, recorded in the audit log as plain ``scheduler``."""

    @property
    def actor(self) -> str:
        return "scheduler"


SCHEDULER = SchedulerPrincipal("scheduler", "operator")


class Scheduling:
    """The schedule operations of ``Orchestrator`` (which delegates to this).

    It gets the stores it writes and the service's ``start_workflow`` (the one way a schedule starts work),
    never the service itself, so the dependency runs one way.
    """

    def __init__(
        self,
        *,
        app: Celery,
        redis: RedisClient,
        settings: Settings,
        audit: AuditLog,
        events: EventBus,
        templates: TemplateRegistry,
        gate: PolicyGate,
        start_workflow: Callable[..., RunView],
    ) -> None:
        self.audit = audit
        self.events = events
        self.templates = templates
        self.gate = gate
        self.start_workflow = start_workflow
        configure_redbeat(
            app,
            settings.redis_url,
            client=redis,
            max_interval=settings.schedules.max_interval_seconds,
        )
        self.store = ScheduleStore(app, redis)

    def add(self, principal: Principal, spec: ScheduleSpec | dict[str, Any]) -> ScheduleView:
        require(principal, "schedule.manage")
        if not isinstance(spec, ScheduleSpec):
            try:
                spec = ScheduleSpec.model_validate(spec)
            except ValidationError as exc:
                raise InputInvalidError(f"Invalid schedule: {_describe(exc)}") from None
        spec = spec.model_copy(update={"cron": cron.normalize(spec.cron)})
        self.check(spec)
        self.store.create(spec, created_by=principal.actor)
        details = {"template_id": spec.template_id, "cron": spec.cron, "parameters": spec.parameters}
        self.audit.append("schedule_added", principal.actor, spec.schedule_id, details)
        self.events.emit(SCHEDULE_ADDED, {"schedule_id": spec.schedule_id, **details}, source=EVENT_SOURCE)
        return self.store.get(spec.schedule_id)

    def check(self, spec: ScheduleSpec) -> None:
        """Raise what starting it now would raise: unknown or broken template, bad parameters, policy denial."""
        template = self.templates.get(spec.template_id)
        planned = plan_workflow(template, spec.parameters, template_id=spec.template_id, priority=spec.priority)
        denied = self.gate.first_denied(planned.steps)
        if denied is not None:
            step, decision = denied
            raise RoleViolationError(
                f"Role '{step.agent_id}' may not run '{step.action}' (step '{step.step_id}'): {decision.reason}",
                {"step_id": step.step_id, "action": step.action, "agent_id": step.agent_id},
            )

    def list(self, principal: Principal) -> list[ScheduleView]:
        require(principal, "read")
        return [self._with_problem(view) for view in self.store.list()]

    def get(self, principal: Principal, schedule_id: str) -> ScheduleView:
        require(principal, "read")
        return self._with_problem(self.store.get(schedule_id))

    def remove(self, principal: Principal, schedule_id: str) -> dict[str, Any]:
        require(principal, "schedule.manage")
        view = self.store.get(schedule_id)
        self.store.remove(schedule_id)
        details = {"template_id": view.template_id, "cron": view.cron}
        self.audit.append("schedule_removed", principal.actor, schedule_id, details)
        self.events.emit(SCHEDULE_REMOVED, {"schedule_id": schedule_id, **details}, source=EVENT_SOURCE)
        return {"schedule_id": schedule_id, "removed": True}

    def fire(self, schedule_id: str) -> RunView | None:
        """Start one scheduled run now (the beat calls this when the schedule is due); None when it could not."""
        try:
            view = self.store.get(schedule_id)
        except OrchestratorError:
            log.warning("schedule %s is due but no longer exists", schedule_id)
            return None
        minute = utcnow().strftime("%Y%m%dT%H%M")
        try:
            run = self.start_workflow(
                SCHEDULER,
                template_id=view.template_id,
                parameters=view.parameters,
                priority=view.priority,
                idempotency_key=f"schedule:{schedule_id}:{minute}",  # two beats in one minute start one run
                source="schedule",
            )
        except OrchestratorError as exc:
            self._failed(view, exc)
            return None
        self.store.record_fired(schedule_id, run.run_id)
        details = {"run_id": run.run_id, "template_id": view.template_id, "created_by": view.created_by}
        self.audit.append("schedule_fired", SCHEDULER.actor, schedule_id, details)
        self.events.emit(
            SCHEDULE_FIRED, {"schedule_id": schedule_id, **details}, run_id=run.run_id, source=EVENT_SOURCE
        )
        return run

    def _failed(self, view: ScheduleView, exc: OrchestratorError) -> None:
        error = exc.to_dict()
        log.warning("schedule %s could not start: %s", view.schedule_id, exc)
        self.store.record_failed(view.schedule_id, error)
        details = {"template_id": view.template_id, "error": error}
        self.audit.append("schedule_failed", SCHEDULER.actor, view.schedule_id, details, result="failure")
        self.events.emit(SCHEDULE_FAILED, {"schedule_id": view.schedule_id, **details}, source=EVENT_SOURCE)

    def _with_problem(self, view: ScheduleView) -> ScheduleView:
        """The view with ``invalid`` and the reason when it would not plan now (else as stored)."""
        try:
            self.check(view)
        except OrchestratorError as exc:
            return view.model_copy(update={"state": "invalid", "problem": ErrorInfo(**exc.to_dict())})
        return view


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
