"""Workflow definitions, templates and validated plans: data only, no I/O."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.models.common import Access, FailurePolicy, Priority

STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class WorkflowStep(BaseModel):
    """One step as a user writes it: an action, its parameters and what it waits for."""

    model_config = ConfigDict(extra="forbid")

    step_id: str = Field(pattern=STEP_ID_PATTERN, description="Unique id within the workflow")
    name: str = ""
    action: str = Field(description="Catalog action, '<domain>.<verb>'", pattern=r"^[a-z]+\.[a-z_]+$")
    agent: str | None = Field(default=None, description="Agent to run it; defaults to the action's agent")
    parameters: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    on_failure: FailurePolicy = FailurePolicy.STOP
    max_retries: int = Field(default=2, ge=0, le=20)
    timeout_seconds: float | None = Field(default=None, gt=0, le=24 * 3600)
    target_domain: str | None = Field(default=None, description="Domain the action works on (policy check)")


ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


class TemplateParameter(BaseModel):
    """A declared, typed template parameter; steps reference it as ``"{{name}}"``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: ParamType = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None


class WorkflowDefinition(BaseModel):
    """A workflow as data: a template file's body, or an inline definition submitted by a user."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    version: str = "1.0.0"
    parameters: list[TemplateParameter] = Field(default_factory=list)
    steps: list[WorkflowStep] = Field(min_length=1, max_length=20_000)

    @field_validator("steps")
    @classmethod
    def _non_empty(cls, steps: list[WorkflowStep]) -> list[WorkflowStep]:
        if not steps:
            raise ValueError("a workflow needs at least one step")
        return steps


class Template(WorkflowDefinition):
    """A named, shipped or user-provided workflow definition."""

    template_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    domain: str = ""
    tags: list[str] = Field(default_factory=list)
    source: str = "builtin"


class PlannedStep(BaseModel):
    """A step after validation: agent, access and limits resolved from the catalog, parameters bound."""

    step_id: str
    name: str
    action: str
    agent_id: str
    domain: str
    target_domain: str
    access: Access
    idempotent: bool
    parameters: dict[str, Any]
    depends_on: list[str]
    on_failure: FailurePolicy
    max_retries: int
    timeout_seconds: float


class WorkflowPlan(BaseModel):
    """A validated DAG ready to compile: steps in a topological order."""

    template_id: str | None
    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    steps: list[PlannedStep]

    def step(self, step_id: str) -> PlannedStep:
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)
