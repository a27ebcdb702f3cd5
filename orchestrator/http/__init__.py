"""The HTTP front door: ``create_app(service)`` builds the FastAPI app (routes under ``/api``; ``orchestrator.asgi``
mounts the MCP server at ``/mcp``)."""

from orchestrator.http.app import create_app

__all__ = ["create_app"]
