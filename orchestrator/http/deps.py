"""Request dependencies: the one shared service, and the caller's principal from the bearer token.

Why dependencies and not middleware for auth: FastAPI documents the bearer scheme in OpenAPI and caches the
principal per request, and routers declare once that every route below them needs a token.

``ChatPrincipalDep`` is the one exception, for the routes itom-chat-ui calls without a token (chat, clarify,
agent status, worklog): when ``ORCH_AUTH__ANONYMOUS__ENABLED`` is on, a request *without* an Authorization
header is served as the configured anonymous principal. A request with a bad token is still refused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.principals import Principal, anonymous_principal, authenticate
from orchestrator.service import Orchestrator

bearer_scheme = HTTPBearer(auto_error=False, description="A token from ORCH_AUTH__TOKENS (or `itom-orch up`)")


def get_service(request: Request) -> Orchestrator:
    service: Orchestrator = request.app.state.service
    return service


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    """ORCH_8001 (401, ``WWW-Authenticate: Bearer``) for a missing, malformed or unknown token."""
    token = credentials.credentials if credentials is not None else None
    return authenticate(token, get_service(request).settings)


def chat_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    """A bearer token's principal; without any Authorization header, the opt-in anonymous one (if enabled)."""
    settings = get_service(request).settings
    if credentials is None and "authorization" not in request.headers:
        anonymous = anonymous_principal(settings)
        if anonymous is not None:
            return anonymous
    return authenticate(credentials.credentials if credentials is not None else None, settings)


ServiceDep = Annotated[Orchestrator, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
ChatPrincipalDep = Annotated[Principal, Depends(chat_principal)]
AUTHENTICATED = [Depends(current_principal)]
