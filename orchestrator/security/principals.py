"""Who is calling: bearer tokens map to principals with a role (admin, operator, viewer).

Why in the core: HTTP, MCP and the CLI authorize the same way; the service checks the operation so a
front door cannot forget to.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from orchestrator.errors import AuthenticationError, RoleViolationError
from orchestrator.settings import Settings
from policies.principals import principal_may


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    anonymous: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names this caller; the opt-in anonymous principal is never mistaken for a token."""
        return f"anonymous:{self.name}" if self.anonymous else f"{self.role}:{self.name}"


def authenticate(token: str | None, settings: Settings) -> Principal:
    """The principal for a bearer token (constant-time compare); ORCH_8001 when missing or unknown."""
    if not token:
        raise AuthenticationError("Missing bearer token: send 'Authorization: Bearer <token>'")
    for known, grant in settings.auth.tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            return Principal(grant.principal, grant.role)
    raise AuthenticationError("Unknown bearer token")


def anonymous_principal(settings: Settings) -> Principal | None:
    """The principal for callers without a token, when the operator enabled one (``ORCH_AUTH__ANONYMOUS__*``)."""
    grant = settings.auth.anonymous
    return Principal(grant.principal, grant.role, anonymous=True) if grant.enabled else None


def require(principal: Principal, operation: str) -> None:
    """Raise ORCH_6001 (HTTP 403) when the principal's role may not perform ``operation``."""
    if not principal_may(principal.role, operation):
        raise RoleViolationError(
            f"Principal '{principal.name}' with role '{principal.role}' may not {operation}",
            {"principal": principal.name, "role": principal.role, "operation": operation},
        )
