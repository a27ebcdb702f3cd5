"""The FastAPI app factory: every route under ``/api``, ``/metrics``, and the MCP app it is given at ``/mcp``.

Why a factory that takes the service: one process builds the Orchestrator once and hands the same instance to
HTTP and MCP (and tests hand in one on fakeredis). Middleware order, outermost first: metrics, CORS, body
limit; so even a 413 is counted and carries CORS headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Lifespan

from orchestrator import __version__
from orchestrator.http.docs import install_docs
from orchestrator.http.errors import install_error_handlers
from orchestrator.http.middleware import BodyLimitMiddleware, InputLimitMiddleware, MetricsMiddleware
from orchestrator.http.openapi import install_openapi
from orchestrator.http.routes import (
    API_PREFIX,
    agents,
    audit,
    chat,
    dlq,
    events,
    health,
    history,
    messages,
    metrics,
    schedules,
    session,
    tasks,
    templates,
    workflows,
    worklog,
)
from orchestrator.http.sessions import SessionStore
from orchestrator.http.ui import install_ui
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings, get_settings

MCP_PATH = "/mcp"
DESCRIPTION = """Distributed orchestrator for IT-operations agents.

Every route except `GET /api/health`, `POST /api/session` (and these docs) needs `Authorization: Bearer <token>`;
tokens map to a principal and a role (admin, operator, viewer) via `ORCH_AUTH__TOKENS`. `GET /metrics` needs a
token too. The workflow view at `/ui` exchanges a token for a session cookie (`POST /api/session`); requests
authenticated by that cookie that change state must also send `X-CSRF-Token` (the session's token).
Opt-in (`ORCH_AUTH__ANONYMOUS__ENABLED`): requests without an Authorization header to the chat, clarify,
agent-status and worklog routes are served as a configured anonymous principal (for itom-chat-ui, which sends
no token).
Errors always have the body `{error_code, error_message, timestamp}` with an ORCH code (a 422 adds `errors`;
the chat routes add `detail`, the same object, for itom-chat-ui). The MCP server (streamable HTTP, same
tokens) is at `/mcp/`.
"""


def _lifespan(service: Orchestrator, mcp_lifespan: Lifespan[Any] | None) -> Any:
    """The MCP session manager's lifespan (it must run, or /mcp/ fails), then ending waits and streams on exit."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if mcp_lifespan is not None:
                await stack.enter_async_context(mcp_lifespan(app))
            try:
                yield
            finally:
                service.shutdown()

    return lifespan


def create_app(
    service: Orchestrator | None = None,
    settings: Settings | None = None,
    *,
    mcp_app: ASGIApp | None = None,
    mcp_lifespan: Lifespan[Any] | None = None,
) -> FastAPI:
    """The HTTP front door over ``service``; ``settings`` (default ``get_settings()``) only build a service when
    none is given. ``mcp_app`` (built over the same service by ``orchestrator.asgi``) is mounted at ``/mcp``, and
    ``mcp_lifespan`` is the one it needs run: this package never imports the MCP door."""
    if service is None:
        service = Orchestrator(settings or get_settings())
    settings = service.settings
    app = FastAPI(
        title="itom-orchestrator",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served from a package by install_docs: works offline
        redoc_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        lifespan=_lifespan(service, mcp_lifespan),
    )
    app.state.service = service
    app.state.sessions = SessionStore(service.redis, settings)
    install_error_handlers(app)
    install_openapi(app)
    routers = (health, session, agents, templates, workflows, tasks, events, audit, dlq, messages, chat, worklog)
    for module in (*routers, history, schedules, metrics):
        app.include_router(module.router)
    install_docs(app, f"{API_PREFIX}/openapi.json")
    install_ui(app)
    if mcp_app is not None:
        app.mount(MCP_PATH, mcp_app)
    app.add_middleware(InputLimitMiddleware, max_chars=settings.frontdoor.max_identifier_chars)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
    )
    app.add_middleware(MetricsMiddleware)
    return app
