"""A run read back from its hash: the plan, each step's state, the run's status (no Redis access here).

Why a module of its own: the run store and the run listing both turn hashes into views, and the listing is
also what the store calls to keep its indexes; decoding in one place below both keeps them apart.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import StateCorruptedError
from orchestrator.models.common import Priority, RunStatus, StepStatus
from orchestrator.models.run import ErrorInfo, RunView, StepState
from orchestrator.models.workflow import PlannedStep


def read_meta(data: dict[str, str], run_id: str) -> dict[str, Any]:
    raw = data.get("meta")
    if raw is None:
        raise StateCorruptedError(
            f"Run '{run_id}' has state but no record of its plan (a partial write); it cannot be read. "
            "The reconciler fails such runs; inspect it with the audit log",
            {"run_id": run_id},
        )
    meta: dict[str, Any] = json.loads(raw)
    return meta


def read_spec(raw: str, run_id: str, step_id: str) -> PlannedStep:
    try:
        return PlannedStep.model_validate_json(raw)
    except ValueError as exc:
        raise StateCorruptedError(
            f"Step '{step_id}' of run '{run_id}' cannot be read back ({type(exc).__name__}); it is refused",
            {"run_id": run_id, "step_id": step_id},
        ) from exc


def _after_cancel(data: dict[str, str], outcome: dict[str, Any]) -> bool:
    """A step that finished (for real) after its run was cancelled: its effect happened, the run had stopped."""
    finished, cancelled_at = outcome.get("finished_at"), data.get("finished_at")
    return bool(
        data.get("status") == RunStatus.CANCELLED.value
        and finished
        and cancelled_at
        and not outcome.get("stopped")
        and finished > cancelled_at
    )


def view_from_hash(data: dict[str, str], run_id: str = "?") -> RunView:
    """Assemble the public run shape from the hash fields."""
    meta = read_meta(data, run_id)
    steps: list[StepState] = []
    for step_id in meta["order"]:
        spec = json.loads(data[f"p:{step_id}"])
        outcome = json.loads(data[f"r:{step_id}"]) if f"r:{step_id}" in data else {}
        error = outcome.get("error")
        steps.append(
            StepState(
                step_id=step_id,
                agent_id=spec["agent_id"],
                action=spec["action"],
                status=StepStatus(data.get(f"st:{step_id}", "pending")),
                attempts=int(data.get(f"at:{step_id}", 0)),
                started_at=data.get(f"t0:{step_id}"),
                finished_at=outcome.get("finished_at"),
                duration_ms=outcome.get("duration_ms"),
                result=outcome.get("result"),
                error=ErrorInfo(**error) if error else None,
                queue=outcome.get("queue"),
                depends_on=spec["depends_on"],
                stopped=outcome.get("stopped"),
                after_cancel=_after_cancel(data, outcome),
            )
        )
    error_raw = data.get("error")
    return RunView(
        run_id=meta["run_id"],
        template_id=meta["template_id"],
        name=meta["name"],
        status=RunStatus(data["status"]),
        priority=Priority(meta["priority"]),
        steps=steps,
        steps_completed=[s.step_id for s in steps if s.status == StepStatus.COMPLETED],
        steps_remaining=[s.step_id for s in steps if not s.status.is_done],
        error=ErrorInfo.model_validate_json(error_raw) if error_raw else None,
        parameters=meta["parameters"],
        created_by=meta["created_by"],
        created_at=meta["created_at"],
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        generation=int(data.get("generation", 0)),
        cancelled_by=data.get("cancelled_by"),
        repairs=int(data.get("regen", 0)),
    )
