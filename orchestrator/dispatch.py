"""The one module that enqueues: policy check, durable record, audit and event, then ``apply_async``.

Why one module: every path that starts work (workflow, single task, resume, chat) passes the same gate, so
a denied action can never slip onto a queue through a side door.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any, NoReturn
from uuid import uuid4

from celery import Celery

from orchestrator import events as ev
from orchestrator import keys
from orchestrator.audit import AuditLog
from orchestrator.canvas_results import drop_unused_results, map_priorities
from orchestrator.celery_app import broker_priority
from orchestrator.errors import BrokerUnavailableError, InvalidStateTransitionError, RoleViolationError
from orchestrator.events import EventBus
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.models.run import ErrorInfo, RunView
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.policy import PolicyGate
from orchestrator.redis_client import execute_pipeline
from orchestrator.runs import RunStore
from orchestrator.workflows.compiler import CompiledPlan, compile_plan
from orchestrator.workflows.dag import subplan
from policies import Decision

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return f"run-{uuid4().hex[:16]}"


class Dispatcher:
    """Starts, resumes and cancels runs. Front doors reach it only through the service."""

    def __init__(self, app: Celery, runs: RunStore, events: EventBus, audit: AuditLog, gate: PolicyGate) -> None:
        self.app = app
        self.runs = runs
        self.events = events
        self.audit = audit
        self.gate = gate
        self.broker_url = str(app.conf.broker_url or "")

    def authorize(self, plan: WorkflowPlan, *, actor: str, run_id: str | None = None) -> None:
        """Check every step against its agent's role before anything exists; deny = audit + event + ORCH_6001."""
        denied = self.gate.first_denied(plan.steps)
        if denied is not None:
            self._deny(*denied, actor=actor, run_id=run_id)
        self._audit_allowed(None, plan, actor=actor, target=run_id or plan.name)

    def _audit_allowed(self, pipe: Any, plan: WorkflowPlan, *, actor: str, target: str) -> None:
        """Record the passed check, on ``pipe`` when given (batched with the run's creation), else at once."""
        details = {"steps": len(plan.steps), "actions": sorted({s.action for s in plan.steps})}
        if pipe is None:
            self.audit.append("permission_check", actor, target, details)
        else:
            self.audit.append_to(pipe, "permission_check", actor, target, details)

    def _deny(self, step: PlannedStep, decision: Decision, *, actor: str, run_id: str | None) -> NoReturn:
        details = {
            "step_id": step.step_id,
            "action": step.action,
            "agent_id": step.agent_id,
            "domain": step.target_domain,
            "access": step.access.value,
            "reason": decision.reason,
        }
        self.audit.append("permission_denied", actor, step.agent_id, details, result="failure")
        self.events.emit(ev.POLICY_DENIED, details, run_id=run_id)
        raise RoleViolationError(
            f"Role '{step.agent_id}' may not run '{step.action}' (step '{step.step_id}'): {decision.reason}", details
        )

    def start(self, plan: WorkflowPlan, *, actor: str, run_id: str | None = None) -> RunView:
        """Authorize, record durably, then enqueue. Returns the run as recorded (before any step ran)."""
        run_id = run_id or new_run_id()
        denied = self.gate.first_denied(plan.steps)
        if denied is not None:
            self._deny(*denied, actor=actor, run_id=run_id)
        compiled = lean(compile_plan(plan, run_id, 0), self.broker_url)

        def announce(pipe: Any) -> None:
            self._audit_allowed(pipe, plan, actor=actor, target=run_id)
            self._announce_to(pipe, run_id, "workflow_started", ev.WORKFLOW_STARTED, actor, plan, {})

        # One round trip: the run, its triggers, pending -> running, the audit entries and the started event.
        view = self.runs.create(
            run_id,
            plan,
            created_by=actor,
            triggers=compiled.triggers,
            trigger_index=compiled.trigger_index,
            start=True,
            also=announce,
        )
        self._enqueue(run_id, compiled.canvas)
        return view

    def resume(self, run_id: str, *, actor: str) -> RunView:
        """Re-run only the steps that did not complete, as generation N+1."""
        view = self.runs.get(run_id)
        if view.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise InvalidStateTransitionError(
                f"Run '{run_id}' is {view.status.value}; only failed or cancelled runs can be resumed",
                {"run_id": run_id, "status": view.status.value},
            )
        plan = self.runs.plan(run_id)
        done = set(view.steps_completed)
        remaining = subplan(plan, done)
        self.authorize(remaining, actor=actor, run_id=run_id)
        generation = view.generation + 1
        compiled = lean(compile_plan(remaining, run_id, generation), self.broker_url)
        self.runs.prepare_resume(run_id, generation, compiled.triggers, compiled.trigger_index)
        self.runs.transition(run_id, RunStatus.RUNNING)
        self._announce(
            run_id,
            "workflow_resumed",
            ev.WORKFLOW_RESUMED,
            actor,
            remaining,
            {"generation": generation, "reused": sorted(done)},
        )
        self._enqueue(run_id, compiled.canvas)
        return self.runs.get(run_id)

    def cancel(self, run_id: str, *, actor: str) -> RunView:
        """Durable flag first (every step checks it), then mark, then revoke what is queued."""
        view = self.runs.get(run_id)
        if view.status.is_terminal:
            raise InvalidStateTransitionError(
                f"Run '{run_id}' is already {view.status.value}; only pending or running runs can be cancelled",
                {"run_id": run_id, "status": view.status.value},
            )
        self.runs.set_cancel_flag(run_id)
        self.runs.transition(run_id, RunStatus.CANCELLED, ErrorInfo(code="ORCH_3002", message=f"Cancelled by {actor}"))
        waiting = [s.step_id for s in view.steps if s.status in (StepStatus.PENDING, StepStatus.RETRYING)]
        self.runs.mark_steps(run_id, waiting, StepStatus.CANCELLED)
        task_ids = [keys.step_task_id(run_id, sid, view.generation) for sid in waiting]
        if task_ids:
            self.app.control.revoke(task_ids)
        pipe = self.runs.redis.pipeline(transaction=False)
        self.audit.append_to(pipe, "workflow_cancelled", actor, run_id, {"revoked": len(task_ids)})
        self.events.publish_to(
            pipe, ev_event(ev.WORKFLOW_CANCELLED, run_id, {"cancelled_by": actor, "steps_cancelled": waiting})
        )
        execute_pipeline(self.runs.redis, pipe)
        return self.runs.get(run_id)

    def _announce(
        self, run_id: str, audit_type: str, event_type: str, actor: str, plan: WorkflowPlan, extra: dict[str, Any]
    ) -> None:
        pipe = self.runs.redis.pipeline(transaction=False)
        self._announce_to(pipe, run_id, audit_type, event_type, actor, plan, extra)
        execute_pipeline(self.runs.redis, pipe)

    def _announce_to(
        self,
        pipe: Any,
        run_id: str,
        audit_type: str,
        event_type: str,
        actor: str,
        plan: WorkflowPlan,
        extra: dict[str, Any],
    ) -> None:
        payload = {
            "template_id": plan.template_id,
            "name": plan.name,
            "steps": [s.step_id for s in plan.steps],
            "priority": plan.priority.value,
            **extra,
        }
        self.audit.append_to(pipe, audit_type, actor, run_id, payload)
        self.events.publish_to(pipe, ev_event(event_type, run_id, payload))

    def _enqueue(self, run_id: str, canvas: Any) -> None:
        if canvas is None:
            return
        try:
            bind(self.app, canvas).apply_async()
        except Exception as exc:  # broker down: the run must not stay "running" forever
            error = BrokerUnavailableError(f"Could not enqueue run '{run_id}': {exc}")
            self.runs.transition(run_id, RunStatus.FAILED, ErrorInfo(**error.to_dict()))
            raise error from exc


def lean(compiled: CompiledPlan, broker_url: str = "") -> CompiledPlan:
    """The compiled plan ready for the broker: Celery result writes dropped wherever no chord reads them, and
    priorities in the broker's own order (flipped for AMQP)."""

    def prepare(canvas: dict[str, Any]) -> dict[str, Any]:
        return map_priorities(drop_unused_results(canvas), lambda p: broker_priority(p, broker_url))

    canvas = None if compiled.canvas is None else prepare(compiled.canvas)
    triggers = {tid: replace(t, canvas=prepare(t.canvas)) for tid, t in compiled.triggers.items()}
    return replace(compiled, canvas=canvas, triggers=triggers)


def bind(app: Celery, canvas: Any) -> Any:
    """Rebuild a canvas (or its JSON dict form) bound to ``app`` all the way down its nested signatures."""
    plain = canvas if type(canvas) is dict else json.loads(json.dumps(canvas))  # lean() already gives plain dicts
    return app.signature(plain)


def ev_event(event_type: str, run_id: str | None, payload: dict[str, Any]) -> Any:
    from orchestrator.models.events import Event

    return Event(event_type=event_type, correlation_id=run_id, payload=payload)
