"""The step task: every workflow step, on every agent, runs through ``run_step``.

Order of checks, each before any effect: the run exists and is running (cancel flag, terminal runs), the
worker's own role may run the step's action (forged or misrouted messages stop here), the write's
idempotency claim. Then the action runs under the step's soft time limit and the outcome is recorded in one
atomic script, which also completes the run and fires gated joins.
"""

from __future__ import annotations

import logging
import random
from time import time
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded
from celery import shared_task
from celery.exceptions import Retry

from orchestrator import deadletters as dlq
from orchestrator import events as ev
from orchestrator import keys
from orchestrator.errors import (
    OrchestratorError,
    RetryExhaustedError,
    RoleViolationError,
    TaskExecutionError,
    TaskTimeoutError,
    WorkflowStepFailedError,
)
from orchestrator.events import encode
from orchestrator.logging_config import agent_name, correlation_id
from orchestrator.models.common import Access, FailurePolicy, RunStatus, StepStatus
from orchestrator.models.events import Event
from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep
from orchestrator.redis_client import execute_pipeline
from workers import faults, idempotency
from workers.actions import execute_action
from workers.context import ActionContext
from workers.runtime import WorkerRuntime, runtime

log = logging.getLogger(__name__)


def _encoded(rt: WorkerRuntime, event_type: str, run_id: str, payload: dict[str, Any]) -> str:
    """An event pre-encoded for the run scripts, which emit it atomically with the state change."""
    return encode(Event(event_type=event_type, correlation_id=run_id, payload=payload, source=rt.actor))


def _event(rt: WorkerRuntime, pipe: Any, event_type: str, run_id: str, payload: dict[str, Any]) -> None:
    rt.events.publish_to(pipe, Event(event_type=event_type, correlation_id=run_id, payload=payload, source=rt.actor))


def backoff_seconds(rt: WorkerRuntime, attempt: int) -> float:
    """Exponential backoff with a cap and full jitter in the upper half (avoids retry stampedes)."""
    base = rt.settings.retry_backoff_base_seconds * (2 ** max(0, attempt - 1))
    capped = min(base, rt.settings.retry_backoff_max_seconds)
    return capped * random.uniform(0.5, 1.0)


@shared_task(name=keys.TASK_RUN_STEP, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_step(self: Any, run_id: str, step_id: str, **extra: Any) -> dict[str, Any]:
    rt = runtime()
    correlation_id.set(run_id)
    agent_name.set(rt.agent_id)
    if extra:
        return _refuse(rt, run_id, step_id, f"unexpected message fields {sorted(extra)}")
    started_event = _encoded(rt, ev.STEP_STARTED, run_id, {"step_id": step_id, "agent_id": rt.agent_id})
    begin = rt.runs.begin_step(run_id, step_id, started_event)
    if begin.verdict == "missing" or begin.spec is None:
        return _refuse(rt, run_id, step_id, "no such run or step (forged or expired message)")
    if begin.verdict != "run":
        return {"step_id": step_id, "skipped": begin.verdict}
    spec = begin.spec
    decision = rt.gate.check(rt.role or "", spec) if rt.role else None
    if decision is None or not decision.allowed or spec.agent_id != rt.agent_id:
        reason = decision.reason if decision else "worker has no role configured"
        if decision is not None and decision.allowed:
            reason = f"step belongs to agent '{spec.agent_id}', this worker serves '{rt.agent_id}'"
        return _deny(rt, run_id, spec, reason, self.request)
    started = time()
    queue = (self.request.delivery_info or {}).get("routing_key")
    try:
        result = _execute(rt, run_id, spec, begin.attempt)
    except Retry:
        raise
    except SoftTimeLimitExceeded:
        error: OrchestratorError = TaskTimeoutError(f"Step '{step_id}' timed out after {spec.timeout_seconds:g}s")
        return _failed(self, rt, run_id, spec, begin.attempt, error, started, queue)
    except OrchestratorError as exc:
        return _failed(self, rt, run_id, spec, begin.attempt, exc, started, queue)
    except Exception as exc:
        log.exception("step %s of %s crashed", step_id, run_id)
        wrapped = TaskExecutionError(f"{type(exc).__name__}: {exc}", {"exception": type(exc).__name__})
        return _failed(self, rt, run_id, spec, begin.attempt, wrapped, started, queue)
    return _completed(rt, run_id, spec, begin.attempt, result, started, queue)


def _execute(rt: WorkerRuntime, run_id: str, spec: PlannedStep, attempt: int) -> Any:
    ctx = ActionContext(
        run_id=run_id,
        step_id=spec.step_id,
        agent_id=spec.agent_id,
        action=spec.action,
        params=spec.parameters,
        idempotency_key=f"{run_id}:{spec.step_id}",
        timeout_seconds=spec.timeout_seconds,
        attempt=attempt,
        earlier_results=lambda: rt.runs.results(run_id),
    )

    def action() -> Any:
        if rt.settings.fault_injection:
            return faults.wrap(rt.redis, ctx, execute_action)
        return execute_action(ctx)

    if spec.access == Access.READ:
        return action()
    return idempotency.run_once(
        rt.redis, keys.idempotency_key(run_id, spec.step_id), action, ttl=rt.settings.retention.run_ttl_seconds
    )


def _completed(
    rt: WorkerRuntime, run_id: str, spec: PlannedStep, attempt: int, result: Any, started: float, queue: str | None
) -> dict[str, Any]:
    payload = {
        "step_id": spec.step_id,
        "agent_id": spec.agent_id,
        "action": spec.action,
        "attempt": attempt,
        "duration_ms": round((time() - started) * 1000, 3),
    }

    def audit(pipe: Any) -> None:
        rt.audit.append_to(
            pipe, "task_executed", rt.actor, f"{run_id}/{spec.step_id}", {"action": spec.action, "attempt": attempt}
        )

    finish = rt.runs.finish_step(
        run_id,
        spec.step_id,
        StepStatus.COMPLETED,
        effect="done",
        started=started,
        result=result,
        event=_encoded(rt, ev.STEP_COMPLETED, run_id, payload),
        also=audit,
        queue=queue,
    )
    if finish.duplicate:
        return {"step_id": spec.step_id, "duplicate": True}
    _fire(rt, finish.fired)
    if finish.run_ended is not None:
        pipe = rt.redis.pipeline(transaction=False)
        _run_ended(rt, pipe, run_id, finish.run_ended, finish.summary)
        execute_pipeline(rt.redis, pipe)
    return {"step_id": spec.step_id, "status": "completed"}


def _failed(
    task: Any,
    rt: WorkerRuntime,
    run_id: str,
    spec: PlannedStep,
    attempt: int,
    error: OrchestratorError,
    started: float,
    queue: str | None,
) -> dict[str, Any]:
    timed_out = isinstance(error, TaskTimeoutError)
    may_retry = (spec.idempotent or error.retryable) and not (timed_out and not spec.idempotent)
    if spec.on_failure == FailurePolicy.RETRY and may_retry and attempt <= spec.max_retries:
        delay = backoff_seconds(rt, attempt)
        rt.runs.set_step_status(run_id, spec.step_id, StepStatus.RETRYING, ErrorInfo(**error.to_dict()))
        rt.events.publish(
            Event(
                event_type=ev.STEP_RETRYING,
                correlation_id=run_id,
                source=rt.actor,
                payload={
                    "step_id": spec.step_id,
                    "attempt": attempt,
                    "next_in_seconds": round(delay, 3),
                    "error": error.to_dict(),
                },
            )
        )
        raise task.retry(countdown=delay, max_retries=None)
    if spec.on_failure == FailurePolicy.RETRY and spec.max_retries > 0 and may_retry:
        error = RetryExhaustedError(
            f"All {attempt} retry attempts exhausted. Last error: {error}",
            {"attempts": attempt, "last_error": error.to_dict()},
        )
    step_error = ErrorInfo(**error.to_dict())
    skip = spec.on_failure == FailurePolicy.SKIP
    run_error = None
    if not skip:
        wrapper = (
            error
            if isinstance(error, RetryExhaustedError | TaskTimeoutError)
            else WorkflowStepFailedError(
                f"Step '{spec.step_id}' failed: {error}", {"step_id": spec.step_id, "cause": error.to_dict()}
            )
        )
        run_error = ErrorInfo(
            code=wrapper.code,
            message=f"Step '{spec.step_id}' failed: {error.message}",
            details={"step_id": spec.step_id, "cause": error.to_dict()},
        )
    finish = rt.runs.finish_step(
        run_id,
        spec.step_id,
        StepStatus.FAILED,
        effect="done" if skip else "stop",
        started=started,
        error=step_error,
        run_error=run_error,
        queue=queue,
    )
    if finish.duplicate:
        return {"step_id": spec.step_id, "duplicate": True}
    _fire(rt, finish.fired)
    pipe = rt.redis.pipeline(transaction=False)
    _event(
        rt,
        pipe,
        ev.STEP_FAILED,
        run_id,
        {
            "step_id": spec.step_id,
            "agent_id": spec.agent_id,
            "action": spec.action,
            "attempt": attempt,
            "error": error.to_dict(),
            "on_failure": spec.on_failure.value,
        },
    )
    rt.audit.append_to(
        pipe,
        "task_failed",
        rt.actor,
        f"{run_id}/{spec.step_id}",
        {"action": spec.action, "attempt": attempt, "error": error.to_dict()},
        result="failure",
    )
    if isinstance(error, RetryExhaustedError):
        _dead_letter(rt, pipe, run_id, spec, error, "retries_exhausted")
    _run_ended(rt, pipe, run_id, finish.run_ended, finish.summary, failed_step=spec.step_id, error=run_error)
    execute_pipeline(rt.redis, pipe)
    return {"step_id": spec.step_id, "status": "failed", "error": error.to_dict()}


def _deny(rt: WorkerRuntime, run_id: str, spec: PlannedStep, reason: str, request: Any) -> dict[str, Any]:
    """A message this worker's role may not run: refused, audited, dead-lettered, never executed."""
    error = RoleViolationError(
        f"Worker role '{rt.role}' may not run '{spec.action}': {reason}",
        {"step_id": spec.step_id, "action": spec.action, "role": rt.role},
    )
    info = ErrorInfo(**error.to_dict())
    finish = rt.runs.finish_step(
        run_id, spec.step_id, StepStatus.DENIED, effect="stop", started=None, error=info, run_error=info
    )
    pipe = rt.redis.pipeline(transaction=False)
    rt.audit.append_to(
        pipe,
        "permission_denied",
        rt.actor,
        f"{run_id}/{spec.step_id}",
        {
            "action": spec.action,
            "role": rt.role,
            "reason": reason,
            "where": "worker",
            "delivery": {"queue": (request.delivery_info or {}).get("routing_key")},
        },
        result="failure",
    )
    _event(
        rt,
        pipe,
        ev.STEP_DENIED,
        run_id,
        {"step_id": spec.step_id, "action": spec.action, "role": rt.role, "reason": reason},
    )
    _dead_letter(rt, pipe, run_id, spec, error, "refused")
    _run_ended(rt, pipe, run_id, finish.run_ended, finish.summary, failed_step=spec.step_id, error=info)
    execute_pipeline(rt.redis, pipe)
    return {"step_id": spec.step_id, "status": "denied"}


def _dead_letter(
    rt: WorkerRuntime, pipe: Any, run_id: str, spec: PlannedStep, error: OrchestratorError, reason: str
) -> None:
    """Keep the step's payload and error where an operator can inspect and re-drive it."""
    dlq.add_to(
        pipe,
        run_id=run_id,
        step_id=spec.step_id,
        agent_id=spec.agent_id,
        action=spec.action,
        params=spec.parameters,
        error=error.to_dict(),
        reason=reason,
        max_len=rt.settings.retention.dlq_max,
    )


def _refuse(rt: WorkerRuntime, run_id: str, step_id: str, reason: str) -> dict[str, Any]:
    rt.audit.append(
        "permission_denied",
        rt.actor,
        f"{run_id}/{step_id}",
        {"reason": reason, "where": "worker", "role": rt.role},
        result="failure",
    )
    return {"step_id": step_id, "status": "refused", "reason": reason}


def _fire(rt: WorkerRuntime, canvases: list[dict[str, Any]]) -> None:
    """Apply the gated joins this step released (their canvases were compiled at dispatch)."""
    from workers.app import app

    for canvas in canvases:
        app.signature(canvas).apply_async()


def _run_ended(
    rt: WorkerRuntime,
    pipe: Any,
    run_id: str,
    ended: RunStatus | None,
    summary: dict[str, list[str]],
    *,
    failed_step: str | None = None,
    error: ErrorInfo | None = None,
) -> None:
    if ended is None:
        return
    payload: dict[str, Any] = {"status": ended.value, **summary}
    # The audit entry goes first: whoever sees the closing event can read the complete trail.
    if ended == RunStatus.COMPLETED:
        rt.audit.append_to(pipe, "workflow_completed", rt.actor, run_id, payload)
        _event(rt, pipe, ev.WORKFLOW_COMPLETED, run_id, payload)
    else:
        payload.update(failed_step=failed_step, error=error.model_dump() if error else None)
        rt.audit.append_to(pipe, "workflow_failed", rt.actor, run_id, payload, result="failure")
        _event(rt, pipe, ev.WORKFLOW_FAILED, run_id, payload)


@shared_task(name=keys.TASK_NOOP)
def bench_noop(*args: Any, **kwargs: Any) -> None:
    """A bare Celery no-op: the baseline the benchmark compares orchestrated steps against."""
    return None
