"""The FastMCP server: one set of tools over the shared service, for stdio, in-memory and HTTP clients.

Why ``create_mcp(service)``: the process builds the Orchestrator once and both front doors use it; the
bearer-token verifier applies to HTTP transports only (stdio and in-memory callers are the local operator).
"""

from __future__ import annotations

import getpass

from fastmcp import FastMCP

from orchestrator import __version__
from orchestrator.mcp.auth import OrchestratorTokenVerifier
from orchestrator.mcp.errors import ArgumentErrors
from orchestrator.mcp.tools_registry import register_registry_tools
from orchestrator.mcp.tools_schedules import register_schedule_tools
from orchestrator.mcp.tools_workflows import register_workflow_tools
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator

SERVER_NAME = "itom-orchestrator"
INSTRUCTIONS = """Orchestrates IT-operations agents (CMDB, discovery, assets, service catalog, audit, documentation).
List templates with list_workflow_templates, start one with start_workflow (wait=true streams progress), follow
it with get_workflow_status or get_workflow_events; run a single action with execute_task. Errors start with
[ORCH_xxxx]."""


def local_operator() -> Principal:
    """Who a stdio or in-memory caller is: the local user, with admin rights (they already hold the Redis URL)."""
    return Principal(getpass.getuser(), "admin")


def create_mcp(service: Orchestrator, *, local_principal: Principal | None = None) -> FastMCP:
    """The MCP server over ``service``; HTTP callers authenticate with ``ORCH_AUTH__TOKENS``."""
    service.warm()
    mcp = FastMCP(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, auth=OrchestratorTokenVerifier(service.settings)
    )
    mcp.add_middleware(ArgumentErrors())
    local = local_principal or local_operator()
    register_registry_tools(mcp, service, local)
    register_workflow_tools(mcp, service, local)
    register_schedule_tools(mcp, service, local)
    return mcp
