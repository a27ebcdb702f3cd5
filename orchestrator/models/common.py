"""Small shared vocabularies (enums and time helpers) used across the models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_now() -> str:
    """ISO-8601 UTC timestamp, the one format every record uses."""
    return utcnow().isoformat()


def as_utc(moment: datetime) -> datetime:
    """``moment`` with a zone: one given without a zone (``?since=2026-12-01``) is read as UTC, as records are."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class Priority(StrEnum):
    """Run priority; mapped onto the Redis transport's priority steps (0 is served first)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def broker_priority(self) -> int:
        return {"critical": 0, "high": 3, "medium": 5, "low": 8}[self.value]


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"


class FailurePolicy(StrEnum):
    STOP = "stop"
    SKIP = "skip"
    RETRY = "retry"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    DENIED = "denied"
    CANCELLED = "cancelled"

    @property
    def is_done(self) -> bool:
        """Done steps count toward the run's completion (``failed`` only under the skip policy)."""
        return self in {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}


class PrincipalRole(StrEnum):
    """Roles of the people and programs calling the front doors (not agent roles)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
