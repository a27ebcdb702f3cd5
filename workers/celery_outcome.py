"""How a step's end looks to Celery, and so to Flower and Celery's own events.

Why: a task that returns normally is SUCCESS in Celery whatever the run state says, so Flower showed every
failed step as a success. A step whose failure is recorded now raises ``StepFailed`` (state FAILURE);
retries already raise Celery's ``Retry`` (state RETRY).

When raising is safe: Celery stops a chain and errors a chord when a task raises. A step that failed under
the ``stop`` policy ended its run, so nothing after it may run anyway. A step under ``skip`` ends its canvas
(the compiler starts its dependents from triggers that the finish script releases, see
``orchestrator.workflows.decompose``), so there is nothing for Celery to stop. A message compiled otherwise
(still carrying a chain, link or chord body, e.g. from a canvas stored before the compiler did this) keeps its
old behaviour: it returns, so its dependents still run.

What Flower sees: the error code and class, the run, step, action and attempt; never the error's free text,
which may quote parameters (they may hold secrets). The run's state has the whole error.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.models.common import FailurePolicy
from orchestrator.models.workflow import PlannedStep


class StepFailed(Exception):
    """Raised after a step's failure is recorded, so Celery marks the task FAILURE (an expected error: the
    worker logs it without a traceback)."""


def continues(request: Any) -> bool:
    """Whether Celery would apply something after this task (the rest of a chain, a link, a chord body)."""
    return any(getattr(request, name, None) for name in ("chain", "callbacks", "chord"))


def may_fail(request: Any, policy: FailurePolicy) -> bool:
    """A recorded failure may be raised to Celery: the run stopped, or nothing follows the task."""
    return policy != FailurePolicy.SKIP or not continues(request)


def step_failed(
    run_id: str, spec: PlannedStep | None, step_id: str, error: OrchestratorError, attempt: int
) -> StepFailed:
    """The exception Flower shows for a failed step (ids, action and error code only)."""
    action = f" ({spec.action})" if spec is not None else ""
    policy = f", policy {spec.on_failure.value}" if spec is not None else ""
    return StepFailed(
        f"{error.code} {type(error).__name__}: step '{step_id}'{action} of run {run_id}, attempt {attempt}{policy}; "
        f"the error is in the run's state (itom-orch status {run_id})"
    )
