"""The step task: every workflow step, on every agent, runs through ``run_step``.

Order of checks, each before any effect: the message is well formed and of the run's current generation;
the run exists and is running (cancel flag, terminal runs); no live delivery holds the step's lease (a
redelivered or duplicated message never runs a step twice), and the step has not been delivered more often
than the cap (a message that kills its worker is failed, not retried forever); the worker's own role may run
the step's action (forged or misrouted messages stop here); the write's idempotency claim. Then the action
runs under the step's soft time limit and the outcome is recorded in one atomic script, together with its
audit entry, event, dead letter and the outbox entries of the joins it released. A failure, once recorded, is
raised to Celery (``celery_outcome``) so Celery, its events and Flower say FAILURE; a retry says RETRY.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from time import time
from typing import Any, NoReturn

from billiard.exceptions import SoftTimeLimitExceeded
from celery import Task, shared_task
from celery.exceptions import Reject, Retry

from orchestrator import keys
from orchestrator.errors import (
    DeliveryLimitError,
    OrchestratorError,
    RetryExhaustedError,
    RoleViolationError,
    StateCorruptedError,
    TaskExecutionError,
    TaskTimeoutError,
)
from orchestrator.models.common import Access, FailurePolicy, StepStatus
from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep
from orchestrator.runtime.logging_config import agent_name, correlation_id
from orchestrator.state import events as ev
from orchestrator.state import step_records as records
from orchestrator.state.runs import BeginResult, FinishResult, Lease, Records
from orchestrator.state.step_records import run_error_for
from workers import faults, idempotency
from workers.actions import execute_action
from workers.celery_outcome import StepFailed, may_fail, step_failed
from workers.chain_handoff import COMPLETED_RETVAL, NextLink, capture_next_link
from workers.chord_handoff import chord_join, handed_off
from workers.context import ActionContext
from workers.durable import RecordingLost, durable
from workers.instance import Executing, holder_alive, lease_for
from workers.messages_guard import StepMessage, refuse_malformed
from workers.runtime import WorkerRuntime, runtime

log = logging.getLogger(__name__)

HARD_LIMIT_GRACE_SECONDS = 5.0
FAILED = (StepStatus.FAILED.value, StepStatus.DENIED.value)


def backoff_seconds(rt: WorkerRuntime, attempt: int) -> float:
    """Exponential backoff with a cap and full jitter in the upper half (avoids retry stampedes)."""
    base: float = rt.settings.retry_backoff_base_seconds * (2 ** max(0, attempt - 1))
    capped = min(base, rt.settings.retry_backoff_max_seconds)
    return capped * random.uniform(0.5, 1.0)


class StepTask(Task):  # type: ignore[misc]
    """Records what Celery decides about a step outside the task body.

    A hard time limit kills the pool process, so the task cannot record its own end: Celery reports it in
    the worker's main process through ``on_failure``, which records ORCH_7002 and applies the failure policy.
    """

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        from billiard.exceptions import TimeLimitExceeded

        if isinstance(exc, TimeLimitExceeded):
            message = StepMessage.parse(args, kwargs)
            if message is not None:
                from workers.timeouts import record_hard_timeout

                record_hard_timeout(
                    runtime(), message, exc, record_finish=record_finish, backoff_seconds=backoff_seconds
                )


@shared_task(
    name=keys.TASK_RUN_STEP, bind=True, base=StepTask, acks_late=True, reject_on_worker_lost=True, throws=(StepFailed,)
)
def run_step(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | str:
    rt = runtime()
    message = StepMessage.parse(args, kwargs)
    if message is None:
        refused = refuse_malformed(rt, args, kwargs, self.request)
        raise StepFailed(f"ORCH_4002 malformed step message refused: {refused['reason']}")
    run_id, step_id = message.run_id, message.step_id
    correlation_id.set(run_id)
    agent_name.set(rt.agent_id)
    lease = lease_for(rt.agent_id, delivery_tag(self.request))
    begun = _Begin(rt, message, lease, self.request)  # sent: Redis runs it while the next link is built
    try:
        next_link = capture_next_link(rt, self.request, COMPLETED_RETVAL)
    finally:
        begin = begun.verdict()  # read even if a time limit interrupts the build: its connection goes back
    if begin.verdict == "unreadable":
        _fail_unreadable(rt, message, lease, begin.detail)
    if begin.verdict == "missing" or begin.spec is None:
        _refuse(rt, run_id, step_id, "no such run or step (forged or expired message)")
    if begin.verdict == "poison":
        return _poisoned(rt, message, begin.spec, lease, int(begin.detail or 0), self.request)
    if begin.verdict != "run":
        if begin.outbox_pending and begin.verdict == "done":
            rt.outbox.drain(run_id)  # a crash may have left this run's released joins unapplied
        if begin.verdict == "done" and begin.detail in FAILED and may_fail(self.request, begin.spec.on_failure):
            raise StepFailed(f"step '{step_id}' of run {run_id} already {begin.detail} (a redelivered message)")
        return {"step_id": step_id, "skipped": begin.verdict, "detail": begin.detail}
    spec = begin.spec
    decision = rt.gate.check(rt.role or "", spec) if rt.role else None
    if decision is None or not decision.allowed or spec.agent_id != rt.agent_id:
        reason = decision.reason if decision else "worker has no role configured"
        if decision is not None and decision.allowed:
            reason = f"step belongs to agent '{spec.agent_id}', this worker serves '{rt.agent_id}'"
        _deny(rt, message, spec, lease, reason, self.request)
    started = time()
    queue = (self.request.delivery_info or {}).get("routing_key")
    outcome = _Outcome(rt, message, spec, lease, begin.attempt, started, queue, self.request, next_link)
    try:
        with Executing(lease.token):
            result = _execute(rt, run_id, spec, begin.attempt)
    except Retry:
        raise
    except SoftTimeLimitExceeded:
        if rt.redis.exists(keys.run_cancel_key(run_id)):
            return outcome.cancelled()
        return outcome.failed(self, TaskTimeoutError(f"Step '{step_id}' timed out after {spec.timeout_seconds:g}s"))
    except OrchestratorError as exc:
        return outcome.failed(self, exc)
    except RecordingLost:
        log.critical("step %s of %s: Redis lost around its effect; exiting so it is redelivered", step_id, run_id)
        os._exit(75)
    except Exception as exc:
        log.exception("step %s of %s crashed", step_id, run_id)
        return outcome.failed(
            self, TaskExecutionError(f"{type(exc).__name__}: {exc}", {"exception": type(exc).__name__})
        )
    return outcome.completed(result)


def delivery_tag(request: Any) -> str | None:
    """The broker's tag of the message being executed (kept in its properties on the Redis transport)."""
    properties = getattr(request, "properties", None) or {}
    tag = properties.get("delivery_tag") or (request.delivery_info or {}).get("delivery_tag")
    return str(tag) if tag else None


class _Begin:
    """The begin script of one delivery: takes the step's lease (retrying a lost Redis). It is sent at once and
    its verdict read when the step needs it; a dead holder of this same instance is taken over."""

    def __init__(self, rt: WorkerRuntime, message: StepMessage, lease: Lease, request: Any) -> None:
        reliability = rt.settings.reliability
        hard_limit = (request.timelimit or (None, None))[0] or 24 * 3600
        self.rt, self.message = rt, message
        self.started = records.started(rt.actor, message.run_id, message.step_id, rt.agent_id)
        self.options: dict[str, Any] = {
            "generation": message.generation,
            "lease": lease,
            "deadline": time() + float(hard_limit) + HARD_LIMIT_GRACE_SECONDS,
            "lease_ttl": reliability.lease_ttl_seconds,
            "max_deliveries": reliability.max_deliveries,
        }
        self.window = reliability.record_retry_seconds
        self.sent = rt.runs.send_begin_step(message.run_id, message.step_id, self.started, **self.options)

    def verdict(self) -> BeginResult:
        try:
            result = self._durable(self.sent)
            if result.verdict == "mine" and not holder_alive(Lease.parse(result.detail)):
                result = self._durable(lambda: self._call(takeover=result.detail))  # its pool process died
            if result.verdict == "mine":
                return BeginResult("busy", result.spec, detail=result.detail)
            return result
        except RecordingLost as exc:
            log.error("%s; the message is handed back to the broker", exc)
            raise Reject(str(exc), requeue=True) from exc
        except StateCorruptedError as exc:
            return BeginResult("unreadable", None, detail=exc.message)

    def _call(self, takeover: str) -> BeginResult:
        m = self.message
        return self.rt.runs.begin_step(m.run_id, m.step_id, self.started, takeover=takeover, **self.options)

    def _durable(self, call: Callable[[], BeginResult]) -> BeginResult:
        """``call`` retried across a Redis restart (a sent begin whose reply was lost is run again: the same
        lease token makes a repeat answer ``run``)."""
        m = self.message
        return durable(call, what=f"begin {m.run_id}/{m.step_id}", window=self.window)


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
        rt.redis,
        keys.idempotency_key(run_id, spec.step_id),
        action,
        ttl=rt.settings.retention.run_ttl_seconds,
        window=rt.settings.reliability.record_retry_seconds,
    )


class _Outcome:
    """Records how one execution of a step ended, then tells Celery (a failure raises, a retry retries)."""

    def __init__(
        self,
        rt: WorkerRuntime,
        message: StepMessage,
        spec: PlannedStep,
        lease: Lease,
        attempt: int,
        started: float,
        queue: str | None,
        request: Any,
        next_link: NextLink | None = None,
    ) -> None:
        self.rt, self.message, self.spec, self.lease = rt, message, spec, lease
        self.attempt, self.started, self.queue, self.request = attempt, started, queue, request
        self.next_link = next_link

    def finish(self, status: StepStatus, effect: str, recs: Records, **kwargs: Any) -> FinishResult:
        return record_finish(
            self.rt, self.message, self.lease, status, effect, recs, started=self.started, queue=self.queue, **kwargs
        )

    def completed(self, result: Any) -> dict[str, Any] | str:
        """Record the completion; the next chain link (built while the begin script ran) rides on the finish
        script when it can (``chain_handoff``), and so does a chord header part's count (``chord_handoff``)."""
        duration = round((time() - self.started) * 1000, 3)
        recs = records.completed(self.rt.actor, self.message.run_id, self.spec, self.attempt, duration)
        link = self.next_link
        join = chord_join(self.rt, self.request) if link is None else None
        publishes = link.commands if link is not None else [join.command()] if join is not None else None
        finish = self.finish(StepStatus.COMPLETED, "done", recs, result=result, publishes=publishes)
        if join is not None:
            handed_off(self.request)  # the script counted the part (or the run needs it no more)
        elif link is not None:
            link.adopt(self.request)  # the script pushed it (or the run needs it no more): not the tracer again
        if finish.duplicate:
            return {"step_id": self.spec.step_id, "duplicate": finish.verdict}
        return COMPLETED_RETVAL

    def cancelled(self) -> dict[str, Any]:
        event = records.event(
            self.rt.actor,
            ev.STEP_CANCELLED,
            self.message.run_id,
            {"step_id": self.spec.step_id, "stopped": "interrupted"},
        )
        self.finish(StepStatus.CANCELLED, "none", Records(event=event), extra={"stopped": "interrupted"})
        return {"step_id": self.spec.step_id, "status": "cancelled"}

    def failed(self, task: Any, error: OrchestratorError) -> dict[str, Any]:
        spec, run_id, rt = self.spec, self.message.run_id, self.rt
        timed_out = isinstance(error, TaskTimeoutError)
        may_retry = (spec.idempotent or error.retryable) and not (timed_out and not spec.idempotent)
        info = ErrorInfo(**error.to_dict())
        if spec.on_failure == FailurePolicy.RETRY and may_retry and self.attempt <= spec.max_retries:
            delay = backoff_seconds(rt, self.attempt)
            recs = records.retrying(rt.actor, run_id, spec, self.attempt, delay, error)
            self.finish(StepStatus.RETRYING, "retry", recs, error=info, retry_at=time() + delay)
            shown = getattr(self.request, "kwargsrepr", None)  # Celery drops it from a retry's message otherwise
            raise task.retry(countdown=delay, max_retries=None, **({"kwargsrepr": shown} if shown else {}))
        if spec.on_failure == FailurePolicy.RETRY and spec.max_retries > 0 and may_retry:
            error = RetryExhaustedError(
                f"All {self.attempt} retry attempts exhausted. Last error: {error}",
                {"attempts": self.attempt, "last_error": error.to_dict()},
            )
        return self.give_up(error, "retries_exhausted" if isinstance(error, RetryExhaustedError) else None)

    def give_up(self, error: OrchestratorError, dead_letter_reason: str | None, **extra: Any) -> dict[str, Any]:
        """The step failed for good: stop the run, or record it and go on under the skip policy; then raise
        ``StepFailed`` so Celery says FAILURE (see ``celery_outcome`` for when a skip-policy step returns)."""
        spec, run_id = self.spec, self.message.run_id
        skip = spec.on_failure == FailurePolicy.SKIP
        run_error = None if skip else run_error_for(spec, error)
        recs = records.failed(
            self.rt.actor, run_id, spec, self.attempt, error, run_error=run_error, dead_letter_reason=dead_letter_reason
        )
        self.finish(
            StepStatus.FAILED,
            "done" if skip else "stop",
            recs,
            error=ErrorInfo(**error.to_dict()),
            run_error=run_error,
            **extra,
        )
        if may_fail(self.request, spec.on_failure):
            raise step_failed(run_id, spec, spec.step_id, error, self.attempt) from None
        return {"step_id": spec.step_id, "status": "failed", "error": error.to_dict()}


def record_finish(
    rt: WorkerRuntime,
    message: StepMessage,
    lease: Lease,
    status: StepStatus,
    effect: str,
    recs: Records,
    **kwargs: Any,
) -> FinishResult:
    """The finish script, retried across a Redis restart; released joins are applied from the outbox at once.

    If Redis stays away for the whole window the pool process exits without acking, so the message comes back
    (``reject_on_worker_lost``) and the next delivery takes the lease over.
    """
    try:
        finish = durable(
            lambda: rt.runs.finish_step(
                message.run_id,
                message.step_id,
                status,
                effect=effect,
                records=recs,
                generation=message.generation,
                lease=lease,
                actor=rt.actor,
                **kwargs,
            ),
            what=f"record {message.run_id}/{message.step_id}",
            window=rt.settings.reliability.record_retry_seconds,
        )
    except RecordingLost:
        log.critical("could not record %s/%s; exiting so the message is redelivered", message.run_id, message.step_id)
        os._exit(75)
    if rt.settings.fault_injection:
        faults.crash_after_record(rt.redis, message.step_id)
    if finish.fired or finish.joined:
        released = [f"fire:{message.generation}:{t}" for t in finish.fired]
        rt.outbox_drain(message.run_id, [*released, *finish.joined])
    return finish


def _poisoned(
    rt: WorkerRuntime, message: StepMessage, spec: PlannedStep, lease: Lease, deliveries: int, request: Any
) -> dict[str, Any]:
    """A step delivered more often than allowed without ever finishing: fail it and dead-letter the message."""
    error = DeliveryLimitError(
        f"Step '{spec.step_id}' was delivered {deliveries} times and its worker never finished it "
        f"(the limit is {rt.settings.reliability.max_deliveries}); the message is dead-lettered",
        {"step_id": spec.step_id, "deliveries": deliveries},
    )
    outcome = _Outcome(rt, message, spec, lease, deliveries, time(), None, request)
    return outcome.give_up(error, "delivery_limit")


def _fail_unreadable(rt: WorkerRuntime, message: StepMessage, lease: Lease, reason: str) -> NoReturn:
    """A step whose stored plan cannot be read back: the run fails with the reason instead of crashing."""
    error = StateCorruptedError(reason, {"run_id": message.run_id, "step_id": message.step_id})
    info = ErrorInfo(**error.to_dict())
    recs = Records(
        event=records.event(rt.actor, ev.STEP_REFUSED, message.run_id, {"step_id": message.step_id, "reason": reason}),
    )
    record_finish(rt, message, lease, StepStatus.FAILED, "stop", recs, started=None, error=info, run_error=info)
    raise step_failed(message.run_id, None, message.step_id, error, 0)


def _deny(
    rt: WorkerRuntime, message: StepMessage, spec: PlannedStep, lease: Lease, reason: str, request: Any
) -> NoReturn:
    """A message this worker's role may not run: refused, audited, dead-lettered, never executed."""
    error = RoleViolationError(
        f"Worker role '{rt.role}' may not run '{spec.action}': {reason}",
        {"step_id": spec.step_id, "action": spec.action, "role": rt.role},
    )
    info = ErrorInfo(**error.to_dict())
    extra = {
        "role": rt.role,
        "reason": reason,
        "where": "worker",
        "delivery": {"queue": (request.delivery_info or {}).get("routing_key")},
    }
    recs = records.failed(
        rt.actor,
        message.run_id,
        spec,
        1,
        error,
        run_error=info,
        dead_letter_reason="refused",
        event_type=ev.STEP_DENIED,
        audit_type="permission_denied",
        extra=extra,
    )
    record_finish(rt, message, lease, StepStatus.DENIED, "stop", recs, started=None, error=info, run_error=info)
    raise step_failed(message.run_id, spec, spec.step_id, error, 1)


def _refuse(rt: WorkerRuntime, run_id: str, step_id: str, reason: str) -> NoReturn:
    rt.audit.append(
        "permission_denied",
        rt.actor,
        f"{run_id}/{step_id}",
        {"reason": reason, "where": "worker", "role": rt.role},
        result="failure",
    )
    raise StepFailed(f"ORCH_6001 refused step '{step_id}' of run {run_id}: {reason}")


@shared_task(name=keys.TASK_NOOP)
def bench_noop(*args: Any, **kwargs: Any) -> None:
    """A bare Celery no-op: the baseline the benchmark compares orchestrated steps against."""
    return None
