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
    generation: int = 0
