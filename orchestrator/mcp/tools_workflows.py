"""MCP tools for templates, workflow runs, single actions, run events and the audit log.

``start_workflow(wait=true)`` streams MCP progress notifications (one per finished step) while it waits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastmcp import Context, FastMCP
from pydantic import Field

from orchestrator.mcp.auth import caller
from orchestrator.mcp.errors import tool_errors
from orchestrator.mcp.progress import wait_with_progress
from orchestrator.models.common import RunStatus
from orchestrator.models.run import RunView
from orchestrator.models.workflow import WorkflowDefinition
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator, wait_budget
from orchestrator.state.events import event_json

RunId = Annotated[str, Field(description="A run id, as returned by start_workflow or execute_task")]
Priority = Annotated[str, Field(description="critical, high, medium or low")]
IdempotencyKey = Annotated[
    str | None,
    Field(
        description="The same request with the same key again returns its run; a different request with it: ORCH_8011"
    ),
]
Params = Annotated[dict[str, Any] | None, Field(description="Parameter values by name")]
Wait = Annotated[bool, Field(description="Wait for the run to end (progress notifications per step)")]
WaitTimeout = Annotated[
    float,
    Field(
        description="With wait: give up waiting after this many seconds (at most ORCH_FRONTDOOR__WAIT_MAX_SECONDS)",
        gt=0,
        allow_inf_nan=False,
    ),
]
READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}


def run_json(view: RunView) -> dict[str, Any]:
    data: dict[str, Any] = view.model_dump(mode="json")
    return data


def register_workflow_tools(mcp: FastMCP, service: Orchestrator, local: Principal) -> None:
    """Add the workflow, task, event and audit tools to ``mcp``."""

    @mcp.tool(name="list_workflow_templates", annotations=READ_ONLY)
    def list_workflow_templates(
        domain: Annotated[str | None, Field(description="Only templates of this domain")] = None,
    ) -> dict[str, Any]:
        """Workflow templates with their parameters and step graphs; 'broken' lists user files that do not load."""
        with tool_errors("list_workflow_templates"):
            templates = service.list_templates(domain)
            return {
                "templates": [t.model_dump(mode="json") for t in templates],
                "count": len(templates),
                "broken": service.broken_templates(),
            }

    @mcp.tool(name="start_workflow")
    async def start_workflow(
        *,
        ctx: Context,
        template_id: Annotated[str | None, Field(description="Template id (see list_workflow_templates)")] = None,
        definition: Annotated[
            WorkflowDefinition | None, Field(description="Inline workflow definition, instead of template_id")
        ] = None,
        parameters: Params = None,
        priority: Priority = "medium",
        idempotency_key: IdempotencyKey = None,
        wait: Wait = False,
        timeout_seconds: WaitTimeout = 300.0,
    ) -> dict[str, Any]:
        """Start a workflow (from a template or a definition). Returns the run; with wait=true, the finished run."""
        principal = caller(local)
        with tool_errors("start_workflow"):
            timeout = service.wait_seconds(timeout_seconds) if wait else 0.0  # ORCH_8003 above the cap
            view = await anyio.to_thread.run_sync(
                lambda: service.start_workflow(
                    principal,
                    template_id=template_id,
                    definition=definition,
                    parameters=parameters,
                    priority=priority,
                    idempotency_key=idempotency_key,
                    source="mcp",
                )
            )
            if wait:
                view = await wait_with_progress(service, view.run_id, ctx, timeout=timeout)
            return run_json(view)

    @mcp.tool(name="get_workflow_status", annotations=READ_ONLY)
    def get_workflow_status(run_id: RunId) -> dict[str, Any]:
        """One run: status, per-step status, attempts, results, error."""
        with tool_errors("get_workflow_status"):
            return run_json(service.get_run(run_id))

    @mcp.tool(name="list_workflow_runs", annotations=READ_ONLY)
    def list_workflow_runs(
        status: Annotated[RunStatus | None, Field(description="Only runs in this status")] = None,
        template_id: Annotated[str | None, Field(description="Only runs of this template")] = None,
        offset: Annotated[int, Field(description="Skip this many runs", ge=0)] = 0,
        limit: Annotated[int, Field(description="Page size", ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Runs, newest first, paged."""
        with tool_errors("list_workflow_runs"):
            items, total = service.list_runs(
                status=status.value if status else None, template_id=template_id, offset=offset, limit=limit
            )
            return {"items": [run_json(v) for v in items], "total": total, "offset": offset, "limit": limit}

    @mcp.tool(name="cancel_workflow")
    def cancel_workflow(run_id: RunId) -> dict[str, Any]:
        """Cancel a pending or running run; queued steps never start."""
        with tool_errors("cancel_workflow"):
            return run_json(service.cancel_run(caller(local), run_id))

    @mcp.tool(name="resume_workflow")
    def resume_workflow(run_id: RunId) -> dict[str, Any]:
        """Resume a failed or cancelled run; only the steps that did not complete run again."""
        with tool_errors("resume_workflow"):
            return run_json(service.resume_run(caller(local), run_id))

    @mcp.tool(name="execute_task")
    async def execute_task(
        *,
        action: Annotated[str, Field(description="Catalog action '<domain>.<verb>', e.g. 'cmdb.query'")],
        parameters: Params = None,
        agent_id: Annotated[str | None, Field(description="Agent to run it (default: the action's agent)")] = None,
        priority: Priority = "medium",
        idempotency_key: IdempotencyKey = None,
        wait: Annotated[bool, Field(description="Wait for the action to finish and return its result")] = True,
        timeout_seconds: Annotated[
            float | None,
            Field(
                description="The step's time limit in seconds (default: the action's); with wait, the wait "
                "lasts this plus 10 s (default 300 s)",
                gt=0,
                allow_inf_nan=False,
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Run one action on one agent as a one-step run; by default waits and returns the finished run."""
        principal = caller(local)
        with tool_errors("execute_task"):
            if wait:
                service.wait_seconds(timeout_seconds)  # ORCH_8003 above ORCH_FRONTDOOR__WAIT_MAX_SECONDS
            view = await anyio.to_thread.run_sync(
                lambda: service.execute_task(
                    principal,
                    action=action,
                    parameters=parameters,
                    agent_id=agent_id,
                    priority=priority,
                    timeout_seconds=timeout_seconds,
                    idempotency_key=idempotency_key,
                    source="mcp",
                )
            )
            if wait:
                view = await service.wait_for_run_async(view.run_id, timeout=wait_budget(timeout_seconds))
            return run_json(view)

    @mcp.tool(name="get_workflow_events", annotations=READ_ONLY)
    def get_workflow_events(
        run_id: RunId,
        after: Annotated[str | None, Field(description="Only events after this event id")] = None,
        limit: Annotated[int, Field(description="Maximum events, oldest first", ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """A run's events (started, step started/completed/failed, completed...), oldest first."""
        with tool_errors("get_workflow_events"):
            events = service.event_history(run_id=run_id, after=after, limit=limit)
            return {"events": [event_json(e) for e in events], "count": len(events)}

    @mcp.tool(name="query_audit_log", annotations=READ_ONLY)
    def query_audit_log(
        *,
        event_type: Annotated[str | None, Field(description="e.g. workflow_started, permission_denied")] = None,
        actor: Annotated[str | None, Field(description="e.g. 'operator:ann'")] = None,
        target: Annotated[str | None, Field(description="A run id, agent id or dead-letter id")] = None,
        since: Annotated[datetime | None, Field(description="ISO-8601 time, inclusive")] = None,
        until: Annotated[datetime | None, Field(description="ISO-8601 time, inclusive")] = None,
        limit: Annotated[int, Field(description="Maximum entries, newest first", ge=1, le=10_000)] = 100,
    ) -> dict[str, Any]:
        """Entries of the tamper-evident audit log, newest first."""
        with tool_errors("query_audit_log"):
            entries = service.audit_query(
                caller(local), event_type=event_type, actor=actor, target=target, since=since, until=until, limit=limit
            )
            return {"entries": [e.model_dump(mode="json") for e in entries], "count": len(entries)}
