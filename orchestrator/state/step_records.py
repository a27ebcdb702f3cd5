"""What a step's outcome writes beside it, pre-encoded so the finish script commits it atomically.

Used by the workers (every outcome) and by the reconciler (outcomes it decides: a step past its deadline).

Why pre-encoded: the finish script appends the audit entry (hash-chained), emits the event and adds the dead
letter in the same atomic step as the state change, so a crash can never leave an outcome without its trail.
Closing records of a run that *fails* carry summary tokens the script fills in; a run that *completes* gets
its closing entry and event from the script alone (nothing to build per step on the happy path).
"""

from __future__ import annotations

import json
import os
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from orchestrator.errors import (
    DeliveryLimitError,
    OrchestratorError,
    RetryExhaustedError,
    TaskTimeoutError,
    WorkflowStepFailedError,
)
from orchestrator.models.common import iso_now
from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep
from orchestrator.state import events as ev
from orchestrator.state.audit import audit_body
from orchestrator.state.events import new_event_json
from orchestrator.state.runs import Records

SUMMARY_TOKENS = {
    "steps_completed": "@@steps_completed@@",
    "steps_remaining": "@@steps_remaining@@",
    "steps_failed": "@@steps_failed@@",
}


def event(actor: str, event_type: str, run_id: str, payload: dict[str, Any]) -> str:
    return new_event_json(event_type, run_id, payload, actor)


def started(actor: str, run_id: str, step_id: str, agent_id: str | None) -> str:
    """``workflow.step.started`` with an ``@@attempt@@`` token the begin script fills.

    Written by hand (every step writes one): the same text ``new_event_json`` gives for this payload."""
    return (
        f'{{"event_id":"{os.urandom(16).hex()}","event_type":"{ev.STEP_STARTED}","source":{encode_basestring(actor)},'
        f'"correlation_id":{encode_basestring(run_id)},"payload":{{"step_id":{encode_basestring(step_id)},'
        f'"agent_id":{_str_or_null(agent_id)},"attempt":"@@attempt@@"}},"timestamp":"{iso_now()}"}}'
    )


def completed(actor: str, run_id: str, spec: PlannedStep, attempt: int, duration_ms: float) -> Records:
    """The happy path's event and audit entry, written by hand: the same texts ``new_event_json`` and
    ``audit_body`` give (the audit body is canonical JSON: sorted keys, compact, ASCII), at a fraction of the
    cost of encoding dicts, since every step writes them."""
    now = iso_now()
    step_id, action = spec.step_id, spec.action
    event = (
        f'{{"event_id":"{os.urandom(16).hex()}","event_type":"{ev.STEP_COMPLETED}","source":{encode_basestring(actor)},'
        f'"correlation_id":{encode_basestring(run_id)},"payload":{{"step_id":{encode_basestring(step_id)},'
        f'"agent_id":{_str_or_null(spec.agent_id)},"action":{encode_basestring(action)},"attempt":{attempt!r},'
        f'"duration_ms":{duration_ms!r}}},"timestamp":"{now}"}}'
    )
    audit = (
        f'{{"actor":{encode_basestring_ascii(actor)},"details":{{"action":{encode_basestring_ascii(action)},'
        f'"attempt":{attempt!r}}},"entry_id":"{os.urandom(16).hex()}","event_type":"task_executed",'
        f'"result":"success","target":{encode_basestring_ascii(f"{run_id}/{step_id}")},"timestamp":"{now}"}}'
    )
    return Records(event=event, audit=audit)


def _str_or_null(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def retrying(
    actor: str, run_id: str, spec: PlannedStep, attempt: int, delay: float, error: OrchestratorError
) -> Records:
    payload = {
        "step_id": spec.step_id,
        "attempt": attempt,
        "next_in_seconds": round(delay, 3),
        "error": error.to_dict(),
    }
    return Records(event=event(actor, ev.STEP_RETRYING, run_id, payload))


def failed(
    actor: str,
    run_id: str,
    spec: PlannedStep,
    attempt: int,
    error: OrchestratorError,
    *,
    run_error: ErrorInfo | None,
    dead_letter_reason: str | None,
    event_type: str = ev.STEP_FAILED,
    audit_type: str = "task_failed",
    extra: dict[str, Any] | None = None,
) -> Records:
    """A failed step: its event and audit entry, an optional dead letter, and closing templates if it stops."""
    payload = {
        "step_id": spec.step_id,
        "agent_id": spec.agent_id,
        "action": spec.action,
        "attempt": attempt,
        "error": error.to_dict(),
        "on_failure": spec.on_failure.value,
        **(extra or {}),
    }
    details = {"action": spec.action, "attempt": attempt, "error": error.to_dict(), **(extra or {})}
    records = Records(
        event=event(actor, event_type, run_id, payload),
        audit=audit_body(audit_type, actor, f"{run_id}/{spec.step_id}", details, result="failure"),
        dead_letter=dead_letter(run_id, spec, error, dead_letter_reason) if dead_letter_reason else "",
    )
    if run_error is None:
        return records
    closing = {"status": "failed", **SUMMARY_TOKENS, "failed_step": spec.step_id, "error": run_error.model_dump()}
    return Records(
        event=records.event,
        audit=records.audit,
        dead_letter=records.dead_letter,
        closing_audit=audit_body("workflow_failed", actor, run_id, closing, result="failure"),
        closing_event=event(actor, ev.WORKFLOW_FAILED, run_id, closing),
    )


def dead_letter(run_id: str | None, spec: PlannedStep, error: OrchestratorError, reason: str) -> str:
    """One dead letter: the step's payload and error, where an operator can inspect and re-drive it."""
    return json.dumps(
        {
            "run_id": run_id,
            "step_id": spec.step_id,
            "agent_id": spec.agent_id,
            "action": spec.action,
            "reason": reason,
            "params": spec.parameters,
            "error": error.to_dict(),
            "at": iso_now(),
            "redriven": False,
        },
        default=str,
    )


def run_error_for(spec: PlannedStep, error: OrchestratorError) -> ErrorInfo:
    """The run's error when this step stops it: ORCH_3003 naming the step, or the step's own 7002/7004/7005."""
    keep = isinstance(error, RetryExhaustedError | TaskTimeoutError | DeliveryLimitError)
    code = error.code if keep else WorkflowStepFailedError.code
    return ErrorInfo(
        code=code,
        message=f"Step '{spec.step_id}' failed: {error.message}",
        details={"step_id": spec.step_id, "cause": error.to_dict()},
    )
