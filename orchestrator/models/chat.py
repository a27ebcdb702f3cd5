"""Chat contracts: what itom-chat-ui sends and reads back, plus the routing layer's own value objects.

Why these shapes: the chat UI (and its strict client) validates ``ChatResponse`` and ``ClarificationResponse``
field by field, so the field names, formats (``chat-`` + 12 hex, 32-hex tokens) and the string
``options`` stay exactly as they were. New fields (``run_id``, ``suggested_actions``) are optional additions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from orchestrator.models.common import iso_now

MAX_CHAT_MESSAGE_CHARS = 10_000  # the chat UI lets users type up to 10,000 characters
RoutingMethod = Literal["explicit", "rule", "domain", "capability", "session"]


def new_chat_message_id() -> str:
    """``chat-`` + 12 hex chars: the message id, which is also the task id of the chat turn."""
    return f"chat-{uuid4().hex[:12]}"


# ---- requests -------------------------------------------------------------------------------------------------


class ChatRequest(BaseModel):
    """``POST /api/chat``: a blank, whitespace-only or missing message is a 422 (pydantic), as the chat UI expects."""

    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_CHAT_MESSAGE_CHARS)]
    target_agent: str | None = None
    domain: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("Chat message must not be empty: send some text in 'message'")
        return value


class ClarifyRequest(BaseModel):
    """``POST /api/chat/clarify``.

    The answer is deliberately NOT checked for blankness here: the contract is a 400
    ``CLARIFICATION_ANSWER_EMPTY`` (checked by the service before the token is consumed), not a 422.
    """

    pending_message_token: str
    clarification_answer: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
    session_id: str | None = None


# ---- responses ------------------------------------------------------------------------------------------------


class SuggestedAction(BaseModel):
    """A follow-up pill: the UI sends ``message`` (to ``agent_target`` when set) when it is clicked."""

    label: str
    message: str
    agent_target: str | None = None


class RoutingSummary(BaseModel):
    method: RoutingMethod
    reason: str


class ChatResponseBody(BaseModel):
    """``ChatResponse.response``: the UI reads ``result.agent_response`` and ``result.suggested_actions``."""

    task_id: str
    result: dict[str, Any] = Field(default_factory=dict)
    routing: RoutingSummary


class ChatResponse(BaseModel):
    message_id: str = Field(default_factory=new_chat_message_id, pattern=r"^chat-[0-9a-f]{12}$")
    status: Literal["success"] = "success"
    agent_id: str
    agent_name: str
    domain: str
    response: ChatResponseBody
    routing_method: RoutingMethod
    timestamp: str = Field(default_factory=iso_now)
    session_id: str | None = None
    run_id: str | None = None


class ClarificationResponse(BaseModel):
    """Options are the labels, shown as buttons; the UI sends one back as ``clarification_answer``."""

    message_id: str = Field(default_factory=new_chat_message_id)
    response_type: Literal["clarification"] = "clarification"
    question: str
    options: list[str]
    pending_message_token: str = Field(pattern=r"^[0-9a-f]{32}$")
    session_id: str | None = None
    timestamp: str = Field(default_factory=iso_now)
    suggested_actions: list[SuggestedAction] | None = None


# ---- the routing layer's value objects ------------------------------------------------------------------------


class RouteRequest(BaseModel):
    """What routing looks at. ``check_ambiguity`` is True for chat, False for the ``route_task`` tool."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    domain: str | None = None
    target_agent: str | None = None
    required_capability: str | None = None
    last_agent_id: str | None = None
    check_ambiguity: bool = True

    @classmethod
    def for_chat(cls, request: ChatRequest) -> RouteRequest:
        """The chat UI's session continuity travels in ``context.last_agent_id``."""
        context = request.context
        last = context.get("last_agent_id")
        capability = context.get("required_capability")
        return cls(
            text=request.message,
            domain=request.domain,
            target_agent=request.target_agent,
            required_capability=capability if isinstance(capability, str) else None,
            last_agent_id=last if isinstance(last, str) else None,
            check_ambiguity=True,
        )

    @classmethod
    def for_task(
        cls,
        title: str,
        description: str = "",
        *,
        domain: str | None = None,
        target_agent: str | None = None,
        required_capability: str | None = None,
    ) -> RouteRequest:
        """``route_task``: title and description are matched together, and ambiguity is not asked about."""
        return cls(
            text=f"{title}\n{description}".strip(),
            domain=domain,
            target_agent=target_agent,
            required_capability=required_capability,
            check_ambiguity=False,
        )


class RoutingDecision(BaseModel):
    """Which agent takes a message, how it was chosen and why (also the ``route_task`` tool's answer)."""

    agent_id: str
    agent_name: str
    domain: str
    method: RoutingMethod
    reason: str
    candidates_evaluated: int = 1
    rule_id: str | None = None
    timestamp: str = Field(default_factory=iso_now)


class ClarificationOption(BaseModel):
    """One answer to a clarification; it names its agent outright, so choosing it settles the route."""

    label: str
    domain: str
    agent_id: str


class Clarification(BaseModel):
    """Two or more domains matched equally well: ask which one was meant."""

    question: str
    options: list[ClarificationOption]
    domains: list[str]

    @property
    def labels(self) -> list[str]:
        return [option.label for option in self.options]


class PendingClarification(BaseModel):
    """A chat message parked until the user answers its clarification (stored in Redis with a TTL)."""

    token: str
    message: str
    session_id: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    clarification: Clarification
    created_at: str = Field(default_factory=iso_now)
