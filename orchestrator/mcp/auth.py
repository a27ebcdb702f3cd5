"""MCP over HTTP uses the same bearer tokens as the HTTP API; over stdio the caller is the local operator.

Why a verifier of our own: FastMCP's ``TokenVerifier`` turns a token into an ``AccessToken``; mapping
``ORCH_AUTH__TOKENS`` onto it (client_id = principal, scopes = [role]) lets tools rebuild the same
``Principal`` the HTTP routes use, so the service authorizes both front doors identically.
"""

from __future__ import annotations

from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token

from orchestrator.errors import AuthenticationError
from orchestrator.security.principals import Principal, authenticate
from orchestrator.settings import Settings


class OrchestratorTokenVerifier(TokenVerifier):
    """Accepts exactly the tokens in ``settings.auth.tokens`` (constant-time compare)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = authenticate(token, self.settings)
        except AuthenticationError:
            return None
        return AccessToken(
            token=token,
            client_id=principal.name,
            scopes=[principal.role],
            claims={"principal": principal.name, "role": principal.role},
        )


def caller(local: Principal) -> Principal:
    """The principal of the current tool call: from the HTTP access token, else ``local`` (stdio, in-memory).

    Over HTTP the auth middleware has already refused requests without a valid token, so a missing token
    means the call did not come over HTTP.
    """
    token = get_access_token()
    if token is None:
        return local
    role = token.scopes[0] if token.scopes else "viewer"
    return Principal(token.client_id or "unknown", role)
