"""Pydantic models only, no I/O."""

from orchestrator.models.common import Access, FailurePolicy, PrincipalRole, Priority, RunStatus, StepStatus
from orchestrator.models.events import AuditEntry, Event
from orchestrator.models.run import ErrorInfo, RunView, StepState
from orchestrator.models.workflow import (
    PlannedStep,
    PlannedStepModel,
    Template,
    TemplateParameter,
    WorkflowDefinition,
    WorkflowPlan,
    WorkflowStep,
)

__all__ = [
    "Access",
    "AuditEntry",
    "ErrorInfo",
    "Event",
    "FailurePolicy",
    "PlannedStep",
    "PlannedStepModel",
    "PrincipalRole",
    "Priority",
    "RunStatus",
    "RunView",
    "StepState",
    "StepStatus",
    "Template",
    "TemplateParameter",
    "WorkflowDefinition",
    "WorkflowPlan",
    "WorkflowStep",
]
