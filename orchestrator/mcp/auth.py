"""MCP over HTTP uses the same bearer tokens as the HTTP API; over stdio the caller is the local operator.

Why a verifier of our own: FastMCP's ``TokenVerifier`` turns a token into an ``AccessToken``; mapping
``ORCH_AUTH__TOKENS`` onto it (client_id = principal, scopes = [role]) lets tools rebuild the same
``Principal`` the HTTP routes use, so the service authorizes both front doors identically.
"""

from __future__ import annotations

import json
from typing import Any

from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import AuthenticationError
from orchestrator.models.common import iso_now
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


class ShapedAuthErrors:
    """Gives the MCP mount's 401s a body: FastMCP answers a request without a token with an empty 401.

    Why: an MCP client (or a person with curl) then sees nothing that says what to fix. The body carries the
    project's error shape (``error_code``/``error_message``/``timestamp``) beside the OAuth fields
    (``error``/``error_description``) that MCP clients read; the ``WWW-Authenticate`` header is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def shaped_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                held.update(message)
                return
            if not held:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_401(send, held, b"".join(chunks))

        await self.app(scope, receive, shaped_send)


async def _send_401(send: Send, start: dict[str, Any], original: bytes) -> None:
    try:
        oauth = json.loads(original) if original else {}
    except ValueError:
        oauth = {}
    if not isinstance(oauth, dict):
        oauth = {}
    has_token = oauth.get("error") == "invalid_token"
    message = (
        "The bearer token is not valid: send one of the tokens in ORCH_AUTH__TOKENS"
        if has_token
        else "Authentication required: send 'Authorization: Bearer <token>' with a token from ORCH_AUTH__TOKENS"
    )
    body = {
        "error_code": AuthenticationError.code,
        "error_message": message,
        "timestamp": iso_now(),
        "error": oauth.get("error", "invalid_token"),
        "error_description": oauth.get("error_description", message),
    }
    payload = json.dumps(body).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
