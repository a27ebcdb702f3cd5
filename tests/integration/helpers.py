"""Helpers for integration tests: inline workflows, fault plans, waiting with deadlines."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator import keys
from orchestrator.models import WorkflowDefinition, WorkflowPlan
from orchestrator.models.run import RunView
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator

OPERATOR = Principal("tester", "operator")
ADMIN = Principal("tester", "admin")


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def step(step_id: str, action: str = "cmdb.ping", deps: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"step_id": step_id, "action": action, "depends_on": deps or [], **extra}


def definition(*steps: dict[str, Any], name: str = "test") -> dict[str, Any]:
    return {"name": name, "steps": list(steps)}


def planned(*steps: dict[str, Any]) -> WorkflowPlan:
    """The plan of an inline workflow of ``steps`` (what a start compiles), to check what it compiles to."""
    from orchestrator.workflows import plan

    return plan(WorkflowDefinition.model_validate(definition(*steps)))


def inject(rclient: Any, step_id: str, **plan: Any) -> None:
    rclient.set(keys.fault_key(step_id), json.dumps(plan), ex=600)


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)  # polling interval, bounded by the deadline
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_and_wait(orch: Orchestrator, defn: dict[str, Any], *, timeout: float = 60.0, **kwargs: Any) -> RunView:
    view = orch.start_workflow(OPERATOR, definition=defn, **kwargs)
    return orch.wait_for_run(view.run_id, timeout=timeout)


def step_of(view: RunView, step_id: str) -> Any:
    return next(s for s in view.steps if s.step_id == step_id)


def ts(value: str | None) -> float:
    from datetime import datetime

    assert value is not None
    return datetime.fromisoformat(value).timestamp()


def release(rclient: Any, step_id: str) -> None:
    """Let a step injected with ``hold`` finish."""
    rclient.set(keys.fault_mark_key(step_id, "release"), "1", ex=600)


def logging_writes(client: Any) -> bool:
    """The server logs every write to its append-only file (switched on, and its first rewrite done)."""
    persistence = client.info("persistence")
    return bool(
        persistence["aof_enabled"]
        and not persistence["aof_rewrite_in_progress"]
        and not persistence["aof_rewrite_scheduled"]
    )
