"""The seven registry MCP tools, with their intended names on the wire (no leading underscore), and
``set_agent_status`` (the registry's persisted maintenance switch).

Fields are the compatible ones (README: Compatibility); errors are ``[ORCH_xxxx]`` tool errors instead of error
dicts. Sync tools: FastMCP runs them in a worker thread, so the blocking Redis calls never stall the loop.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastmcp import FastMCP
from pydantic import Field

from orchestrator.mcp.auth import caller
from orchestrator.mcp.errors import tool_errors
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator

AgentId = Annotated[str, Field(description="Agent id, e.g. 'cmdb-agent' (see get_agent_registry)")]
ForceCheck = Annotated[bool, Field(description="Also ping the agent's workers instead of trusting the heartbeat")]
OptDomain = Annotated[
    str | None, Field(description="Domain: cmdb, discovery, asset, csa, audit, documentation, orchestration")
]
READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}


def register_registry_tools(mcp: FastMCP, service: Orchestrator, local: Principal) -> None:
    """Add the seven registry tools to ``mcp``."""

    @mcp.tool(name="get_orchestrator_health", annotations=READ_ONLY)
    def get_orchestrator_health() -> dict[str, Any]:
        """Orchestrator health: status, version, uptime, connected agents, active workflows."""
        with tool_errors("get_orchestrator_health"):
            return service.health()

    @mcp.tool(name="get_agent_registry", annotations=READ_ONLY)
    def get_agent_registry(
        domain: OptDomain = None,
        status: Annotated[str | None, Field(description="online, offline, degraded or maintenance")] = None,
        capability: Annotated[str | None, Field(description="An action name, e.g. 'cmdb.query'")] = None,
    ) -> dict[str, Any]:
        """Registered agents with live status. One filter applies, in the order capability > domain > status."""
        with tool_errors("get_agent_registry"):
            return service.agent_registry(domain=domain, status=status, capability=capability)

    @mcp.tool(name="get_agent_details", annotations=READ_ONLY)
    def get_agent_details(agent_id: AgentId) -> dict[str, Any]:
        """One agent's full record: capabilities with input schemas, MCP server URL, metadata."""
        with tool_errors("get_agent_details"):
            return service.agent_details(agent_id)

    @mcp.tool(name="get_agent_status", annotations=READ_ONLY)
    def get_agent_status(agent_id: AgentId, force_check: ForceCheck = False) -> dict[str, Any]:
        """Run a health check on one agent and return its health view and check history statistics."""
        with tool_errors("get_agent_status"):
            return service.agent_health(agent_id, force=force_check)

    @mcp.tool(name="check_all_agents", annotations=READ_ONLY)
    def check_all_agents(force_check: ForceCheck = False) -> dict[str, Any]:
        """Health-check every agent: one result per agent plus the status summary."""
        with tool_errors("check_all_agents"):
            return service.check_all_agents(force_check=force_check)

    @mcp.tool(name="set_agent_status", annotations={"readOnlyHint": False, "idempotentHint": True})
    def set_agent_status(
        agent_id: AgentId,
        status: Annotated[
            Literal["active", "maintenance"],
            Field(description="maintenance: shown as such and skipped by chat routing; active: live status again"),
        ],
        reason: Annotated[str | None, Field(description="Why (kept in the registry file)", max_length=500)] = None,
    ) -> dict[str, Any]:
        """Set an agent's administrative status, persisted in the registry file across restarts."""
        with tool_errors("set_agent_status"):
            return service.set_agent_status(caller(local), agent_id, status, reason=reason)

    @mcp.tool(name="route_task", annotations=READ_ONLY)
    def route_task(
        *,
        task_id: Annotated[str, Field(description="Your id for the task (echoed back)")],
        title: Annotated[str, Field(description="Short title; matched against the routing rules")],
        description: Annotated[str, Field(description="Full description; matched with the title")],
        domain: OptDomain = None,
        target_agent: Annotated[str | None, Field(description="Route to this agent explicitly")] = None,
        priority: Annotated[str, Field(description="critical, high, medium or low")] = "medium",
        parameters: Annotated[dict[str, Any] | None, Field(description="Task parameters (echoed)")] = None,
        timeout_seconds: Annotated[
            float, Field(description="Task time limit in seconds", gt=0, allow_inf_nan=False)
        ] = 300,
    ) -> dict[str, Any]:
        """Decide which agent would take a task, and why. Routes only; use execute_task to run an action."""
        with tool_errors("route_task"):
            return service.route_task(
                caller(local),
                task_id=task_id,
                title=title,
                description=description,
                domain=domain,
                target_agent=target_agent,
                priority=priority,
                parameters=parameters,
                timeout_seconds=timeout_seconds,
            )

    @mcp.tool(name="get_execution_history", annotations=READ_ONLY)
    def get_execution_history(
        task_id: Annotated[str | None, Field(description="Only records of this task (run) id")] = None,
        limit: Annotated[int, Field(description="Maximum records, newest first", ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Execution records (newest first), stats and active tasks."""
        with tool_errors("get_execution_history"):
            return service.execution_history(task_id=task_id, limit=limit)
