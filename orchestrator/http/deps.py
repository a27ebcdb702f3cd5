"""Request dependencies: the one shared service, and the caller's principal from the bearer token.

Why dependencies and not middleware for auth: FastAPI documents the bearer scheme in OpenAPI and caches the
principal per request, and routers declare once that every route below them needs a token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.principals import Principal, authenticate
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


ServiceDep = Annotated[Orchestrator, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
AUTHENTICATED = [Depends(current_principal)]
