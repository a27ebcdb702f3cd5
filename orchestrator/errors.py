"""The one error tree: every failure the product reports carries an ORCH_xxxx code.

Why one tree: front doors translate errors mechanically (HTTP status, MCP ``[ORCH_xxxx]`` prefix) and
workers decide whether to retry from ``retryable``. Celery re-creates exceptions from ``args`` when a
result crosses process boundaries, so every class rebuilds from ``(message, details)`` alone.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OrchestratorError(Exception):
    """Base class: a stable code, an HTTP status and whether retrying may help."""

    code: ClassVar[str] = "ORCH_0000"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details or {})
        self.message = message
        self.details: dict[str, Any] = details or {}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form used in run state, events and HTTP bodies."""
        return {"code": self.code, "message": self.message, "details": self.details}


# 1xxx registry
class AgentNotFoundError(OrchestratorError):
    code, http_status = "ORCH_1001", 404


class AgentAlreadyRegisteredError(OrchestratorError):
    code, http_status = "ORCH_1002", 409


class AgentRegistrationInvalidError(OrchestratorError):
    code, http_status = "ORCH_1003", 422


class RegistryLoadError(OrchestratorError):
    code, http_status = "ORCH_1004", 500


class RegistrySaveError(OrchestratorError):
    code, http_status = "ORCH_1005", 500


# 2xxx routing
class NoRouteFoundError(OrchestratorError):
    code, http_status = "ORCH_2001", 502


class AgentUnavailableError(OrchestratorError):
    code, http_status, retryable = "ORCH_2002", 502, True


class RoutingRuleInvalidError(OrchestratorError):
    code, http_status = "ORCH_2003", 422


class RoutingRulesLoadError(OrchestratorError):
    code, http_status = "ORCH_2004", 500


class AmbiguousRouteError(OrchestratorError):
    code, http_status = "ORCH_2005", 409


# 3xxx workflows
class WorkflowNotFoundError(OrchestratorError):
    code, http_status = "ORCH_3001", 404


class InvalidStateTransitionError(OrchestratorError):
    code, http_status = "ORCH_3002", 409


class WorkflowStepFailedError(OrchestratorError):
    code, http_status = "ORCH_3003", 502


class WorkflowTimeoutError(OrchestratorError):
    code, http_status = "ORCH_3004", 504


class WorkflowDefinitionInvalidError(OrchestratorError):
    code, http_status = "ORCH_3006", 422


class RunStalledError(OrchestratorError):
    """A run that can no longer progress (its work was lost and could not be re-dispatched)."""

    code, http_status = "ORCH_3007", 500


# 4xxx messaging and events
class MessageDeliveryError(OrchestratorError):
    code, http_status, retryable = "ORCH_4001", 502, True


class MessageInvalidError(OrchestratorError):
    code, http_status = "ORCH_4002", 422


class EventDispatchError(OrchestratorError):
    code, http_status, retryable = "ORCH_4003", 500, True


# 5xxx state
class StateWriteError(OrchestratorError):
    code, http_status, retryable = "ORCH_5001", 503, True


class StateReadError(OrchestratorError):
    code, http_status, retryable = "ORCH_5002", 503, True


class StateCorruptedError(OrchestratorError):
    code, http_status = "ORCH_5003", 500


# 6xxx policy and audit
class RoleViolationError(OrchestratorError):
    code, http_status = "ORCH_6001", 403


class RoleConfigInvalidError(OrchestratorError):
    code, http_status = "ORCH_6003", 422


class AuditWriteError(OrchestratorError):
    code, http_status, retryable = "ORCH_6004", 503, True


# 7xxx task execution
class TaskExecutionError(OrchestratorError):
    code, http_status = "ORCH_7001", 502


class RetryableTaskError(TaskExecutionError):
    """An execution failure the action says is safe to retry (e.g. a connection reset before any effect).

    Its own code, so an error rebuilt from run state or an event (``from_dict``) is still retryable."""

    code, retryable = "ORCH_7006", True


class TaskTimeoutError(OrchestratorError):
    code, http_status = "ORCH_7002", 504


class TaskInvalidError(OrchestratorError):
    code, http_status = "ORCH_7003", 422


class RetryExhaustedError(OrchestratorError):
    code, http_status = "ORCH_7004", 502


class DeliveryLimitError(OrchestratorError):
    """A step delivered more often than the cap allows without ever finishing (it kills its worker)."""

    code, http_status = "ORCH_7005", 502


# 8xxx front door (new in this project)
class AuthenticationError(OrchestratorError):
    code, http_status = "ORCH_8001", 401


class PayloadTooLargeError(OrchestratorError):
    code, http_status = "ORCH_8002", 413


class InputInvalidError(OrchestratorError):
    code, http_status = "ORCH_8003", 400


class NotFoundError(OrchestratorError):
    code, http_status = "ORCH_8004", 404


class BrokerUnavailableError(OrchestratorError):
    code, http_status, retryable = "ORCH_8005", 503, True


class TooManyStreamsError(OrchestratorError):
    """A principal holds as many live event streams as ORCH_FRONTDOOR__MAX_STREAMS_PER_PRINCIPAL allows."""

    code, http_status, retryable = "ORCH_8006", 429, True


class ShuttingDownError(OrchestratorError):
    """The process is stopping: waits and streams end at once instead of holding the shutdown up."""

    code, http_status, retryable = "ORCH_8007", 503, True


class MethodNotAllowedError(OrchestratorError):
    code, http_status = "ORCH_8008", 405


class RedisUnavailableError(OrchestratorError):
    """Redis did not answer (down, restarting, or a timeout): nothing was changed; retry later."""

    code, http_status, retryable = "ORCH_8009", 503, True


class IdempotencyKeyReusedError(OrchestratorError):
    """A start repeated an idempotency key with a different request: answering with the first request's run would
    tell the caller that something ran which it never asked for."""

    code, http_status = "ORCH_8011", 422


class InternalError(OrchestratorError):
    """A failure nobody anticipated: the response still has the common shape, the log has the traceback."""

    code, http_status = "ORCH_8010", 500


def _all_subclasses(cls: type[OrchestratorError]) -> list[type[OrchestratorError]]:
    found: list[type[OrchestratorError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def error_class_for(code: str) -> type[OrchestratorError]:
    """Map a stored code back to its class (first class that owns the code)."""
    for cls in _all_subclasses(OrchestratorError):
        if cls.code == code:
            return cls
    return OrchestratorError


def from_dict(data: dict[str, Any]) -> OrchestratorError:
    """Rebuild an error from its ``to_dict`` form (run state, events)."""
    cls = error_class_for(str(data.get("code", "")))
    return cls(str(data.get("message", "")), dict(data.get("details") or {}))


# Clarification errors of the chat UI's contract: ORCH codes like every other error; ``legacy_code`` keeps the
# string code the chat routes also return (as ``legacy_code``) for clients that match on it (README: Compatibility).
class ClarificationTokenNotFoundError(OrchestratorError):
    code, http_status = "ORCH_8101", 400
    legacy_code: ClassVar[str] = "CLARIFICATION_TOKEN_NOT_FOUND"


class ClarificationAnswerEmptyError(OrchestratorError):
    code, http_status = "ORCH_8102", 400
    legacy_code: ClassVar[str] = "CLARIFICATION_ANSWER_EMPTY"


class ClarificationStillAmbiguousError(OrchestratorError):
    code, http_status = "ORCH_8103", 502
    legacy_code: ClassVar[str] = "CLARIFICATION_STILL_AMBIGUOUS"
