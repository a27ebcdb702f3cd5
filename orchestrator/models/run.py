"""How a run reads back: the JSON shape both front doors return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from orchestrator.models.common import Priority, RunStatus, StepStatus


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class StepState(BaseModel):
    step_id: str
    agent_id: str
    action: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    result: Any = None
    error: ErrorInfo | None = None
    depends_on: list[str] = Field(default_factory=list)
    queue: str | None = Field(default=None, description="The broker queue the step was delivered on")
    after_cancel: bool = Field(default=False, description="It finished after its run was cancelled")
    stopped: str | None = Field(
        default=None, description="How a step running at cancel time stopped: interrupted or terminated"
    )


class RunView(BaseModel):
    run_id: str
    template_id: str | None
    name: str
    status: RunStatus
    priority: Priority
    steps: list[StepState]
    steps_completed: list[str]
    steps_remaining: list[str]
    error: ErrorInfo | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    created_by: str = "system"
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    generation: int = Field(
        default=0, description="How often the run was re-dispatched (each resume or repair starts a new generation)"
    )
    cancelled_by: str | None = None
    repairs: int = Field(default=0, description="Re-dispatches by the reconciler after lost messages")
