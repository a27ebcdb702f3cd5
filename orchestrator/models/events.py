"""The event envelope (the compatible fields plus correlation_id) and the audit entry."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field

from orchestrator.models.common import iso_now

# The source of the events the orchestrator itself emits (dispatch, reconciler), the default of ``Event.source``.
ORCHESTRATOR_SOURCE = "orchestrator"


class Event(BaseModel):
    event_id: str = Field(default_factory=lambda: uuid4().hex)
    event_type: str
    source: str = ORCHESTRATOR_SOURCE
    correlation_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    timestamp: str = Field(default_factory=iso_now)
    stream_id: str | None = None


class AuditEntry(BaseModel):
    entry_id: str
    event_type: str
    actor: str
    target: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    result: str = "success"
    timestamp: str
    prev_hash: str = ""
    hash: str = ""
    stream_id: str | None = None
