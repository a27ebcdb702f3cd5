"""A step killed at its hard time limit: recorded from the worker's main process, policy applied.

Why: the soft limit is a signal raised inside the task, so a step blocked in C (or a frozen process) never
sees it; the hard limit then kills the pool process and Celery acks the message. The step cannot record its
own end, so the main process does (``StepTask.on_failure``): ORCH_7002 and the step's failure policy. A step
that will run again (retry) lost its retry message with the killed process, so its run is marked for the
reconciler's repair (re-dispatch of what is left). A step under ``skip`` needs no repair: nothing follows it in
its canvas (its dependents start from triggers, which the finish script releases), and Celery already counts
the killed task as FAILURE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from orchestrator import keys
from orchestrator.errors import TaskTimeoutError
from orchestrator.models.common import FailurePolicy, StepStatus
from orchestrator.models.run import ErrorInfo
from orchestrator.state import step_records as records
from orchestrator.state.step_records import run_error_for
from workers.instance import lease_for
from workers.messages_guard import StepMessage
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def record_hard_timeout(
    rt: WorkerRuntime,
    message: StepMessage,
    exc: Any,
    *,
    record_finish: Callable[..., Any],
    backoff_seconds: Callable[[WorkerRuntime, int], float],
) -> None:
    """Record a step killed at its hard limit with the step task's own finish and backoff (passed in by it)."""
    try:
        plan = rt.runs.plan(message.run_id)
    except Exception:  # the run expired or Redis is gone: the reconciler's deadline check covers it
        log.warning("hard time limit of %s/%s not recorded", message.run_id, message.step_id, exc_info=True)
        return
    spec = next((s for s in plan.steps if s.step_id == message.step_id), None)
    if spec is None:
        return
    attempt = int(rt.redis.hget(keys.run_key(message.run_id), f"at:{spec.step_id}") or 1)
    error = TaskTimeoutError(
        f"Step '{spec.step_id}' was killed at its hard time limit ({exc}); it did not stop at its soft limit of "
        f"{spec.timeout_seconds:g}s (blocked outside Python, or frozen)",
        {"step_id": spec.step_id, "killed": True},
    )
    info = ErrorInfo(**error.to_dict())
    lease = lease_for(rt.agent_id, None)
    retry = spec.on_failure == FailurePolicy.RETRY and spec.idempotent and attempt <= spec.max_retries
    if retry:
        delay = backoff_seconds(rt, attempt)
        recs = records.retrying(rt.actor, message.run_id, spec, attempt, delay, error)
        record_finish(
            rt,
            message,
            lease,
            StepStatus.RETRYING,
            "retry",
            recs,
            started=None,
            error=info,
            retry_at=time.time() + delay,
        )
    else:
        skip = spec.on_failure == FailurePolicy.SKIP
        run_error = None if skip else run_error_for(spec, error)
        recs = records.failed(
            rt.actor, message.run_id, spec, attempt, error, run_error=run_error, dead_letter_reason=None
        )
        record_finish(
            rt,
            message,
            lease,
            StepStatus.FAILED,
            "done" if skip else "stop",
            recs,
            started=None,
            error=info,
            run_error=run_error,
        )
        return
    rt.redis.zadd(keys.REPAIRS, {message.run_id: time.time()})  # its Celery continuation died with the process
