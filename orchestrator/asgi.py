"""The one ASGI app a process serves: the HTTP routes with the MCP server mounted at ``/mcp``, over one service.

Why a module of its own: the two front doors never import each other (an import-linter contract), so the place
that builds both over the same ``Orchestrator`` and puts one inside the other sits above them.
"""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.http.app import create_app as create_http_app
from orchestrator.mcp import create_mcp
from orchestrator.mcp.auth import ShapedAuthErrors
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings, get_settings


def create_app(service: Orchestrator | None = None, settings: Settings | None = None) -> FastAPI:
    """HTTP and MCP over ``service``; ``settings`` (default ``get_settings()``) only build a service when none is
    given. The MCP server mounted at ``/mcp`` shares the same service instance."""
    if service is None:
        service = Orchestrator(settings or get_settings())
    mcp_app = create_mcp(service).http_app(path="/")
    return create_http_app(service, mcp_app=ShapedAuthErrors(mcp_app), mcp_lifespan=mcp_app.lifespan)
