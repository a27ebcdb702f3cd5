"""The one module that starts work: policy check, durable record with its outbox, then the broker.

Why one module: every path that starts work (workflow, single task, resume, repair, chat) passes the same
gate, so a denied action can never slip onto a queue through a side door. Every start is recorded together
with the canvas it must enqueue (the outbox), so a crash or a broker outage between the record and the
broker delays the run instead of losing it. When the broker is the Redis that holds run state, a start's
messages are pushed inside the record's own transaction instead: recorded and enqueued at once, in one round trip.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn
from uuid import uuid4

from celery import Celery

from orchestrator import keys
from orchestrator.dispatch.outbox import Outbox, prepare_canvas_json
from orchestrator.errors import InvalidStateTransitionError, RoleViolationError, WorkflowNotFoundError
from orchestrator.models.common import RunStatus, StepStatus, iso_now
from orchestrator.models.events import ORCHESTRATOR_SOURCE, Event
from orchestrator.models.run import RunView
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.runtime.capture import Command
from orchestrator.security.policy import PolicyGate
from orchestrator.settings import ReliabilitySettings
from orchestrator.state import events as ev
from orchestrator.state import outcome_metrics
from orchestrator.state.audit import AuditLog, audit_body
from orchestrator.state.events import EventBus, encode, new_event_json
from orchestrator.state.runs import Lease, RunStore
from orchestrator.workflows.compiler import CompiledPlan, compile_plan
from orchestrator.workflows.dag import subplan
from orchestrator.workflows.triggers import TriggerTable
from policies import Decision

log = logging.getLogger(__name__)

RESUME_POLL_SECONDS = 0.1


def new_run_id() -> str:
    return f"run-{uuid4().hex[:16]}"


@dataclass
class CancelReport:
    """A cancelled run and how each step that was running stopped."""

    view: RunView
    stopped: dict[str, str] = field(default_factory=dict)  # step -> interrupted | terminated | finished


class Dispatcher:
    """Starts, resumes, repairs and cancels runs. Front doors reach it only through the service."""

    def __init__(
        self,
        app: Celery,
        runs: RunStore,
        events: EventBus,
        audit: AuditLog,
        gate: PolicyGate,
        reliability: ReliabilitySettings | None = None,
    ) -> None:
        self.app = app
        self.runs = runs
        self.events = events
        self.audit = audit
        self.gate = gate
        self.reliability = reliability or ReliabilitySettings()
        self.broker_url = str(app.conf.broker_url or "")
        self.outbox = Outbox(runs, app)

    # -- policy -----------------------------------------------------------------------------------------
    def authorize(self, plan: WorkflowPlan, *, actor: str, run_id: str | None = None) -> str:
        """Check every step against its agent's role before anything exists; deny = audit + event + ORCH_6001.

        Returns the canonical body of the passed check's audit entry (written with the state change)."""
        denied = self.gate.first_denied(plan.steps)
        if denied is not None:
            self._deny(*denied, actor=actor, run_id=run_id)
        details = {"steps": len(plan.steps), "actions": sorted({s.action for s in plan.steps})}
        return audit_body("permission_check", actor, run_id or plan.name, details)

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
        denial = outcome_metrics.field(outcome_metrics.POLICY_DENIALS, "dispatch", step.action)
        self.runs.redis.hincrby(keys.METRICS, denial, 1)
        raise RoleViolationError(
            f"Role '{step.agent_id}' may not run '{step.action}' (step '{step.step_id}'): {decision.reason}", details
        )

    # -- start ------------------------------------------------------------------------------------------
    def start(self, plan: WorkflowPlan, *, actor: str, run_id: str | None = None, source: str = "api") -> RunView:
        """Authorize, record durably with the canvas in the outbox, then enqueue it.

        Returns the run as recorded. If the broker refuses the canvas, the run stays recorded and the
        reconciler enqueues it once the broker is back: accepted work is never dropped.
        """
        run_id = run_id or new_run_id()
        created_at = iso_now()  # before its first audit entries, so "entries since the run began" finds them
        check = self.authorize(plan, actor=actor, run_id=run_id)
        compiled = lean(compile_plan(plan, run_id, 0), self.broker_url)
        payload = _announcement(plan, {"source": source})
        # Broker = state Redis: the canvas's messages go onto the queue in the record's own transaction.
        publishes = None if compiled.canvas is None else self.outbox.capture_start(compiled.canvas)
        confirms = self.outbox.pending.take()  # earlier starts' entries ride on this transaction
        try:
            view = self._record(run_id, plan, actor, compiled, check, payload, source, created_at, confirms, publishes)
        except BaseException:
            self.outbox.pending.put_back(confirms)
            raise
        if compiled.canvas is not None and publishes is None:
            try:  # the canvas is in hand: apply it (confirmed with the next write), without reading the outbox back
                self.outbox.apply_start(run_id, compiled.canvas, generation=0)
            except Exception:  # broker down: the outbox keeps the entry, the reconciler retries
                log.warning("run %s: enqueue deferred to the reconciler (broker unavailable)", run_id, exc_info=True)
        return view

    def _record(
        self,
        run_id: str,
        plan: WorkflowPlan,
        actor: str,
        compiled: Lean,
        check: str,
        payload: dict[str, Any],
        source: str,
        created_at: str,
        confirms: list[tuple[str, str]],
        publishes: list[Command] | None,
    ) -> RunView:
        return self.runs.create(
            run_id,
            plan,
            created_by=actor,
            triggers=compiled.triggers,
            start=True,
            canvas=compiled.canvas if publishes is None else None,  # published with the record: no outbox entry
            publishes=publishes,
            audit_bodies=[check, audit_body("workflow_started", actor, run_id, payload)],
            started_event=new_event_json(ev.WORKFLOW_STARTED, run_id, payload, ORCHESTRATOR_SOURCE),
            source=source,
            created_at=created_at,
            confirm=confirms,
        )

    def drain(self, run_id: str, only: list[str] | None = None) -> None:
        """Apply the run's outbox now; a broker error is logged and left to the reconciler."""
        try:
            self.outbox.drain(run_id, only)
        except Exception:  # broker down: the outbox keeps the entry, the reconciler retries
            log.warning("run %s: enqueue deferred to the reconciler (broker unavailable)", run_id, exc_info=True)

    # -- resume and repair ------------------------------------------------------------------------------
    def resume(self, run_id: str, *, actor: str) -> RunView:
        """Re-run only the steps that did not complete, as generation N+1 (one compare-and-set).

        Waits up to ``resume_wait_seconds`` for steps of the old generation that are still stopping (after a
        cancel); two concurrent resumes cannot both win (the second gets ORCH_3002).
        """
        view = self.runs.get(run_id)
        if view.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise InvalidStateTransitionError(
                f"Run '{run_id}' is {view.status.value}; only failed or cancelled runs can be resumed",
                {"run_id": run_id, "status": view.status.value},
            )
        done = set(view.steps_completed)
        remaining = subplan(self.runs.plan(run_id), done)
        self.authorize(remaining, actor=actor, run_id=run_id)
        self._redispatch(view, remaining, mode="resume", actor=actor, extra={"reused": sorted(done)})
        return self.runs.get(run_id)

    def repair(self, run_id: str, *, actor: str, reason: str) -> tuple[str, str]:
        """Re-dispatch a running run whose messages were lost, as generation N+1 (the reconciler's repair).

        Steps that finished (completed, or failed under the skip policy) stay as they are; the rest run again.
        Returns the compare-and-set verdict (``ok``, or why not now).
        """
        view = self.runs.get(run_id)
        done = {s.step_id for s in view.steps if s.status.is_done}
        remaining = subplan(self.runs.plan(run_id), done)
        return self._redispatch(view, remaining, mode="repair", actor=actor, extra={"reason": reason}, wait=False)

    def _redispatch(
        self,
        view: RunView,
        remaining: WorkflowPlan,
        *,
        mode: str,
        actor: str,
        extra: dict[str, Any],
        wait: bool = True,
    ) -> tuple[str, str]:
        run_id = view.run_id
        generation = view.generation + 1
        compiled = lean(compile_plan(remaining, run_id, generation), self.broker_url)
        audit_type, event_type = ("workflow_resumed", ev.WORKFLOW_RESUMED)
        if mode == "repair":
            audit_type, event_type = ("workflow_repaired", ev.WORKFLOW_REPAIRED)
        payload = _announcement(remaining, {"generation": generation, **extra})
        deadline = time.monotonic() + (self.reliability.resume_wait_seconds if wait else 0)
        while True:
            verdict, detail, other = self.runs.redispatch(
                run_id,
                mode=mode,
                expected_generation=view.generation,
                redo=[s.step_id for s in remaining.steps],
                canvas=compiled.canvas,
                triggers=compiled.triggers,
                audit_body=audit_body(audit_type, actor, run_id, payload),
                event=encode(Event(event_type=event_type, correlation_id=run_id, payload=payload, source=actor)),
                lease_ttl=self.reliability.lease_ttl_seconds,
                priority=remaining.priority.broker_priority,
            )
            if verdict != "busy" or time.monotonic() >= deadline:
                break
            time.sleep(RESUME_POLL_SECONDS)  # a step of the old generation is still stopping; bounded by deadline
        if verdict == "ok":
            self.drain(run_id)
            return verdict, detail
        if not wait:
            return verdict, detail
        if verdict == "missing":
            raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
        if verdict == "busy":
            raise InvalidStateTransitionError(
                f"Run '{run_id}': step '{detail}' of generation {view.generation} is still running "
                f"(held by {Lease.parse(other).instance}); it is being stopped, retry the resume in a few seconds",
                {"run_id": run_id, "step_id": detail, "generation": view.generation},
            )
        raise InvalidStateTransitionError(
            f"Run '{run_id}' changed while resuming ({verdict} {detail}): it was resumed or repaired concurrently",
            {"run_id": run_id, "verdict": verdict},
        )

    # -- cancel -----------------------------------------------------------------------------------------
    def cancel(self, run_id: str, *, actor: str) -> CancelReport:
        """Cancel: flag, status and waiting steps in one script; revoke what is queued; stop what runs.

        A running step is first interrupted inside its worker (Celery raises in the task, which records the step
        cancelled); one that has not stopped after ``cancel_grace_seconds`` is terminated (its process killed).
        """
        payload = {
            "cancelled_by": actor,
            "steps_cancelled": "@@steps_cancelled@@",
            "steps_running": "@@steps_running@@",
        }
        result = self.runs.cancel(
            run_id,
            actor=actor,
            audit_template=audit_body("workflow_cancelled", actor, run_id, payload),
            event_template=encode(Event(event_type=ev.WORKFLOW_CANCELLED, correlation_id=run_id, payload=payload)),
        )
        generation = self.runs.get(run_id).generation
        queued = [keys.step_task_id(run_id, sid, generation) for sid in result.cancelled]
        if queued:
            self.revoke(queued)
        stopped = self._stop_running(run_id, result.running) if result.running else {}
        return CancelReport(self.runs.get(run_id), stopped)

    def _stop_running(self, run_id: str, running: list[str]) -> dict[str, str]:
        owners = {sid: self._owner(run_id, sid) for sid in running}
        for owner in owners.values():
            self.signal_step(owner, "SIGUSR1")  # raises inside the task, which records itself cancelled
        deadline = time.monotonic() + self.reliability.cancel_grace_seconds
        still = list(running)
        while still and time.monotonic() < deadline:
            time.sleep(RESUME_POLL_SECONDS)  # waiting for interrupted steps to record themselves; bounded
            still = [sid for sid in still if self._step_status(run_id, sid) == StepStatus.RUNNING]
        stopped = {sid: self._how_stopped(run_id, sid) for sid in running if sid not in still}
        for sid in still:
            self.signal_step(owners[sid], "SIGKILL")
            event = encode(
                Event(
                    event_type=ev.STEP_CANCELLED,
                    correlation_id=run_id,
                    payload={"step_id": sid, "stopped": "terminated"},
                )
            )
            verdict, _ = self.runs.release_step(
                run_id,
                sid,
                status=StepStatus.CANCELLED,
                outcome={"finished_at": None, "error": None, "stopped": "terminated"},
                event=event,
            )
            stopped[sid] = "terminated" if verdict == "ok" else self._how_stopped(run_id, sid)
        return stopped

    def _owner(self, run_id: str, step_id: str) -> Lease | None:
        raw = self.runs.redis.hget(keys.run_key(run_id), f"ow:{step_id}")
        return Lease.parse(raw) if raw else None

    def signal_step(self, owner: Lease | None, signal: str) -> None:
        """Ask the worker instance holding a lease to signal the pool process running it."""
        if owner is None or not owner.pid:
            return
        try:
            self.app.control.broadcast(
                "orch_signal_step", arguments={"instance": owner.instance, "pid": owner.pid, "signal": signal}
            )
        except Exception:  # a broker hiccup: the reconciler's deadline still ends the step
            log.warning("could not signal %s", owner.token, exc_info=True)

    def _step_status(self, run_id: str, step_id: str) -> StepStatus:
        raw = self.runs.redis.hget(keys.run_key(run_id), f"st:{step_id}")
        return StepStatus(raw or "pending")

    def _how_stopped(self, run_id: str, step_id: str) -> str:
        status = self._step_status(run_id, step_id)
        return "interrupted" if status == StepStatus.CANCELLED else f"finished ({status.value})"

    def revoke(self, task_ids: list[str], *, terminate: bool = False, signal: str | None = None) -> None:
        try:
            self.app.control.revoke(task_ids, terminate=terminate, signal=signal)
        except Exception:  # a broker hiccup: the steps still refuse to run (cancel flag), the reconciler cleans up
            log.warning("could not revoke %s", task_ids, exc_info=True)


def _announcement(plan: WorkflowPlan, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "template_id": plan.template_id,
        "name": plan.name,
        "steps": [s.step_id for s in plan.steps],
        "priority": plan.priority.value,
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Lean:
    """A compiled plan ready for the broker: the main canvas in Celery's dict form, and the triggers to store."""

    canvas: dict[str, Any] | None
    triggers: TriggerTable


def lean(compiled: CompiledPlan, broker_url: str = "") -> Lean:
    """``prepare_canvas`` on the main canvas, parsed from the compiler's JSON text (one parse, no copy); trigger
    canvases are built and prepared when they fire (``Outbox``)."""
    main = compiled.main_json
    canvas = None if main is None else prepare_canvas_json(main, broker_url)
    return Lean(canvas, compiled.triggers)


__all__ = ["CancelReport", "Dispatcher", "Lean", "lean", "new_run_id"]
