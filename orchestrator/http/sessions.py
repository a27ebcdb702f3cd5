"""Browser sessions for the workflow view: a bearer token entered once, exchanged for an HttpOnly cookie.

Why sessions at all: a page cannot attach ``Authorization`` to an ``EventSource`` or keep a token away from
scripts; an HttpOnly, SameSite=Strict cookie can. Why in Redis: every API process behind a balancer sees the
same sessions, logout really ends one, and a session dies with its token (the record keeps only the token's
SHA-256, matched against the configured tokens on every request, so removing a token ends its sessions).

CSRF: a cookie rides along on requests the page did not make, so every state-changing request authenticated
by the cookie must also carry ``X-CSRF-Token`` equal to the session's own random token (which only the page
can read, from the login answer or ``GET /api/session``). Bearer-authenticated requests need no such header:
a browser never adds ``Authorization`` on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from orchestrator import keys
from orchestrator.errors import AuthenticationError
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.security.principals import Principal, authenticate
from orchestrator.settings import Settings

COOKIE_NAME = "orch_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live browser session: who it acts for, and the token its page must echo on state changes."""

    principal: Principal
    csrf_token: str

    def check_csrf(self, header: str | None) -> None:
        """ORCH_8001 unless ``header`` equals this session's CSRF token (constant-time compare)."""
        if not header or not hmac.compare_digest(header.encode(), self.csrf_token.encode()):
            raise AuthenticationError(
                f"Missing or wrong {CSRF_HEADER} header: a state-changing request made with the session cookie "
                f"must send the session's CSRF token (from POST /api/session or GET /api/session)"
            )

    def as_json(self) -> dict[str, Any]:
        return {"principal": self.principal.name, "role": self.principal.role, "csrf_token": self.csrf_token}


class SessionStore:
    """Creates, reads and ends sessions; the session id is never stored, only its SHA-256."""

    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.ttl = settings.ui.session_ttl_seconds

    def create(self, token: str) -> tuple[str, Session]:
        """A new session for a valid bearer token (ORCH_8001 otherwise); returns the cookie value and session."""
        principal = authenticate(token, self.settings)
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        record = {"token_sha256": _digest(token), "csrf": csrf}
        self.redis.set(keys.ui_session_key(_digest(session_id)), json.dumps(record), ex=self.ttl)
        return session_id, Session(principal, csrf)

    def get(self, session_id: str) -> Session:
        """The session behind a cookie value; ORCH_8001 when unknown, expired, or its token was removed."""
        raw = self.redis.get(keys.ui_session_key(_digest(session_id))) if session_id else None
        if not raw:
            raise AuthenticationError("Session expired or unknown: sign in again with your token at /ui")
        record = json.loads(raw)
        principal = self._principal_for(str(record.get("token_sha256", "")))
        if principal is None:
            self.end(session_id)
            raise AuthenticationError("The token behind this session is no longer configured: sign in again")
        return Session(principal, str(record["csrf"]))

    def end(self, session_id: str) -> None:
        if session_id:
            self.redis.delete(keys.ui_session_key(_digest(session_id)))

    def _principal_for(self, token_sha256: str) -> Principal | None:
        for token, grant in self.settings.auth.tokens.items():
            if hmac.compare_digest(_digest(token).encode(), token_sha256.encode()):
                return Principal(grant.principal, grant.role)
        return None
