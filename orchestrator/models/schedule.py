"""Schedules: a template started on a cron schedule with fixed parameters. Data only, no I/O."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models.common import Priority
from orchestrator.models.run import ErrorInfo

SCHEDULE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class ScheduleSpec(BaseModel):
    """What an operator asks for: which template, when (cron, UTC), with which parameters."""

    model_config = ConfigDict(extra="forbid")

    schedule_id: str = Field(pattern=SCHEDULE_ID_PATTERN, description="Unique name, e.g. 'nightly-cmdb-health'")
    template_id: str = Field(min_length=1, max_length=64, description="A template id from GET /api/templates")
    cron: str = Field(min_length=1, max_length=200, description="Five fields in UTC, e.g. '0 3 * * *', or '@daily'")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Values for the template's parameters")
    priority: Priority = Priority.MEDIUM
    description: str = Field(default="", max_length=500)


class ScheduleView(ScheduleSpec):
    """A stored schedule with its history and whether it can still start (``problem`` says why not)."""

    created_by: str
    created_at: str
    next_run_at: str | None = None
    last_fired_at: str | None = None
    last_run_id: str | None = None
    runs_started: int = 0
    failures: int = 0
    state: Literal["ok", "invalid", "failing"] = Field(
        default="ok",
        description="ok; invalid: its template or parameters no longer plan; failing: its last start failed",
    )
    problem: ErrorInfo | None = Field(default=None, description="Why it is invalid or failing (ORCH code + message)")
