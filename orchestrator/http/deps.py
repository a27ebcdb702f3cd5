"""Request dependencies: the one shared service, and the caller's principal from a bearer token or a session.

Why dependencies and not middleware for auth: FastAPI documents the schemes in OpenAPI and caches the
principal per request, and routers declare once that every route below them needs a caller.

Who the caller is: the bearer token when an ``Authorization`` header is sent (exactly as before: the cookie is
then ignored); otherwise the workflow view's session cookie, whose state-changing requests must also carry the
session's CSRF token (see ``orchestrator.http.sessions``).

``ChatPrincipalDep`` is the one exception, for the routes itom-chat-ui calls without a token (chat, clarify,
agent status, worklog): when ``ORCH_AUTH__ANONYMOUS__ENABLED`` is on, a request with *neither* an Authorization
header nor a session is served as the configured anonymous principal. A request with a bad token is still refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.http.sessions import COOKIE_NAME, CSRF_HEADER, SAFE_METHODS, SessionStore
from orchestrator.security.principals import Principal, anonymous_principal, authenticate
from orchestrator.service import Orchestrator

bearer_scheme = HTTPBearer(auto_error=False, description="A token from ORCH_AUTH__TOKENS (or `itom-orch up`)")
cookie_scheme = APIKeyCookie(
    name=COOKIE_NAME,
    auto_error=False,
    description=f"The workflow view's session (POST /api/session); state changes also need {CSRF_HEADER}",
)


def get_service(request: Request) -> Orchestrator:
    service: Orchestrator = request.app.state.service
    return service


def get_sessions(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    session_id: Annotated[str | None, Security(cookie_scheme)],
) -> Principal:
    """ORCH_8001 (401, ``WWW-Authenticate: Bearer``) for a missing, malformed or unknown token or session, and
    for a cookie-authenticated state change without the session's CSRF token."""
    if credentials is not None or "authorization" in request.headers or not session_id:
        token = credentials.credentials if credentials is not None else None
        return authenticate(token, get_service(request).settings)
    session = get_sessions(request).get(session_id)
    if request.method not in SAFE_METHODS:
        session.check_csrf(request.headers.get(CSRF_HEADER))
    return session.principal


def chat_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    session_id: Annotated[str | None, Security(cookie_scheme)],
) -> Principal:
    """A bearer token's or session's principal; with neither, the opt-in anonymous one (if enabled)."""
    if credentials is None and "authorization" not in request.headers and not session_id:
        anonymous = anonymous_principal(get_service(request).settings)
        if anonymous is not None:
            return anonymous
    return current_principal(request, credentials, session_id)


ServiceDep = Annotated[Orchestrator, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
SessionsDep = Annotated[SessionStore, Depends(get_sessions)]
ChatPrincipalDep = Annotated[Principal, Depends(chat_principal)]
AUTHENTICATED = [Depends(current_principal)]
