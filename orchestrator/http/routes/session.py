"""The workflow view's session: exchange a bearer token for an HttpOnly cookie, read it back, end it.

The cookie is HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it); the CSRF
token in the answer is what the page echoes in ``X-CSRF-Token`` on cancel, resume and re-drive.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import AuthenticationError
from orchestrator.http.deps import SessionsDep, cookie_scheme
from orchestrator.http.routes import API_PREFIX
from orchestrator.http.sessions import COOKIE_NAME, CSRF_HEADER, SAFE_METHODS

router = APIRouter(prefix=f"{API_PREFIX}/session", tags=["session"])
CookieDep = Annotated[str | None, Security(cookie_scheme)]


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=512, description="A bearer token from ORCH_AUTH__TOKENS")


class SessionInfo(BaseModel):
    principal: str
    role: str
    csrf_token: str = Field(description=f"Send it as {CSRF_HEADER} on every state-changing request")
    expires_in_seconds: int


def _secure(request: Request, configured: bool | None) -> bool:
    return configured if configured is not None else request.url.scheme == "https"


@router.post("", summary="Sign in: exchange a bearer token for a session cookie (HttpOnly, SameSite=Strict)")
def create_session(body: SessionRequest, request: Request, response: Response, sessions: SessionsDep) -> SessionInfo:
    session_id, session = sessions.create(body.token)
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        max_age=sessions.ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request, sessions.settings.ui.secure_cookie),
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionInfo(**session.as_json(), expires_in_seconds=sessions.ttl)


@router.get("", summary="The current session (needs the cookie): who, role, and its CSRF token")
def read_session(response: Response, sessions: SessionsDep, session_id: CookieDep = None) -> SessionInfo:
    if not session_id:
        raise AuthenticationError("No session cookie: sign in with POST /api/session")
    session = sessions.get(session_id)
    response.headers["Cache-Control"] = "no-store"
    return SessionInfo(**session.as_json(), expires_in_seconds=sessions.ttl)


@router.delete("", summary="Sign out: end the session (needs the cookie and X-CSRF-Token)")
def end_session(request: Request, response: Response, sessions: SessionsDep, session_id: CookieDep = None) -> Any:
    if session_id:
        session = sessions.get(session_id)
        if request.method not in SAFE_METHODS:
            session.check_csrf(request.headers.get(CSRF_HEADER))
        sessions.end(session_id)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return {"ended": True}
