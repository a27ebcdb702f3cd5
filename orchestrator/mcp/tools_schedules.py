"""MCP tools for schedules: list (with what is wrong with each), add (validated now), remove."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import Field

from orchestrator.mcp.auth import caller
from orchestrator.mcp.errors import tool_errors
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator

READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}
ScheduleId = Annotated[str, Field(description="Schedule name: lower-case letters, digits and hyphens")]


def register_schedule_tools(mcp: FastMCP, service: Orchestrator, local: Principal) -> None:
    """Add ``list_schedules``, ``add_schedule`` and ``remove_schedule`` to ``mcp``."""

    @mcp.tool(name="list_schedules", annotations=READ_ONLY)
    def list_schedules() -> dict[str, Any]:
        """Schedules with next and last run; state 'invalid' or 'failing' with the problem when one cannot start."""
        with tool_errors("list_schedules"):
            views = service.list_schedules(caller(local))
            return {"schedules": [v.model_dump(mode="json") for v in views], "count": len(views)}

    @mcp.tool(name="add_schedule")
    def add_schedule(
        *,
        schedule_id: ScheduleId,
        template_id: Annotated[str, Field(description="Template id (see list_workflow_templates)")],
        cron: Annotated[str, Field(description="Five cron fields in UTC, e.g. '0 3 * * *', or '@daily'")],
        parameters: Annotated[dict[str, Any] | None, Field(description="Template parameter values")] = None,
        priority: Annotated[str, Field(description="critical, high, medium or low")] = "medium",
        description: Annotated[str, Field(description="Free text shown in listings")] = "",
    ) -> dict[str, Any]:
        """Start a template on a cron schedule; validated now (cron, template, parameters, policy)."""
        spec = {
            "schedule_id": schedule_id,
            "template_id": template_id,
            "cron": cron,
            "parameters": parameters or {},
            "priority": priority,
            "description": description,
        }
        with tool_errors("add_schedule"):
            view = service.add_schedule(caller(local), spec)
            data: dict[str, Any] = view.model_dump(mode="json")
            return data

    @mcp.tool(name="remove_schedule")
    def remove_schedule(schedule_id: ScheduleId) -> dict[str, Any]:
        """Remove a schedule; runs it already started are not touched."""
        with tool_errors("remove_schedule"):
            return service.remove_schedule(caller(local), schedule_id)
