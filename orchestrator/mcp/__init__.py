"""The MCP front door: ``create_mcp(service)`` builds the FastMCP server (tools named in snake_case)."""

from orchestrator.mcp.server import create_mcp

__all__ = ["create_mcp"]
