"""Request and response bodies of the HTTP routes that are not already service models.

Why separate from ``orchestrator/models``: these are transport shapes (pages, 202 acknowledgements, bodies
with HTTP-only switches such as ``wait``); the service never sees them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.models.common import Priority, RunStatus
from orchestrator.models.run import RunView
from orchestrator.models.workflow import WorkflowDefinition

IDEMPOTENCY_KEY = Field(
    default=None,
    min_length=1,
    max_length=200,
    description="Repeat a request with the same key to get the same run instead of a new one (the key with a "
    "different request: 422 ORCH_8011)",
)


class StartWorkflowRequest(BaseModel):
    """Start from a template (``template_id``) or from an inline ``definition``: exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    template_id: str | None = Field(default=None, description="A template id from GET /api/templates")
    definition: WorkflowDefinition | None = Field(default=None, description="An inline workflow definition")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Values for the declared parameters")
    priority: Priority = Priority.MEDIUM
    idempotency_key: str | None = IDEMPOTENCY_KEY

    @model_validator(mode="after")
    def _exactly_one_source(self) -> StartWorkflowRequest:
        if (self.template_id is None) == (self.definition is None):
            raise ValueError("give exactly one of 'template_id' or 'definition'")
        return self


class ExecuteTaskRequest(BaseModel):
    """One catalog action as a one-step run; ``wait`` returns the finished run instead of 202."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(min_length=1, description="Catalog action '<domain>.<verb>', e.g. 'cmdb.query'")
    parameters: dict[str, Any] = Field(default_factory=dict, description="The action's parameters")
    agent_id: str | None = Field(default=None, description="Agent to run it on (default: the action's agent)")
    priority: Priority = Priority.MEDIUM
    idempotency_key: str | None = IDEMPOTENCY_KEY
    wait: bool = Field(default=False, description="Block until the run ends and return it (200)")
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=24 * 3600,
        allow_inf_nan=False,
        description="The step's time limit; with wait=true the wait lasts this plus 10 s, at most "
        "ORCH_FRONTDOOR__WAIT_MAX_SECONDS (300 s by default; a larger value with wait=true is refused, ORCH_8003)",
    )


class SendMessageRequest(BaseModel):
    """An agent-to-agent message, delivered through the recipient's queue."""

    model_config = ConfigDict(extra="forbid")

    sender: str = Field(min_length=1, description="Sending agent id (or a caller name)")
    recipient: str = Field(min_length=1, description="Receiving agent id")
    message_type: str = Field(min_length=1, description="What kind of message, e.g. 'notification'")
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: Literal["critical", "high", "normal", "low"] = "normal"
    expires_in_seconds: float | None = Field(
        default=None,
        gt=0,
        le=30 * 24 * 3600,
        allow_inf_nan=False,
        description="Drop it if not delivered in time (at most 30 days)",
    )


class RunAccepted(BaseModel):
    """202 body: the run is durably recorded and enqueued; follow it at GET /api/workflows/{run_id}."""

    run_id: str
    status: RunStatus


class RunPage(BaseModel):
    items: list[RunView]
    total: int
    offset: int
    limit: int


class FieldError(BaseModel):
    """One bad field of a 422: where (``field``), why (``message``) and the validator's ``type``."""

    field: str
    message: str
    type: str


class ErrorDetail(BaseModel):
    error_code: str
    error_message: str
    timestamp: str


class ErrorBody(BaseModel):
    """Every error: an ORCH code, a message that says what to fix, and when. A 422 adds ``errors``; the chat
    routes add ``detail`` (the same object, for itom-chat-ui) and, for clarification errors, ``legacy_code``."""

    error_code: str = Field(pattern=r"^ORCH_\d{4}$", examples=["ORCH_8003"])
    error_message: str
    timestamp: str
    errors: list[FieldError] | None = None
    detail: ErrorDetail | None = None
    legacy_code: str | None = None


class HealthUnavailable(BaseModel):
    """503 from ``/api/health``: Redis does not answer."""

    model_config = ConfigDict(extra="allow")

    status: Literal["unhealthy"]
    reason: str
    error_code: str
    error_message: str
    timestamp: str
    version: str
    uptime_seconds: float
