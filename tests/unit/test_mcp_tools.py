"""The MCP front door in memory (``fastmcp.Client(server)``): exact tool names, described parameters, every
tool called, ``[ORCH_xxxx]`` errors, progress while waiting, and bearer-token mapping for HTTP callers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from orchestrator.mcp import auth as mcp_auth
from orchestrator.mcp import create_mcp
from orchestrator.mcp.auth import OrchestratorTokenVerifier
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import TOKENS, fake_worker, service  # noqa: F401

T = TypeVar("T")
EXPECTED_TOOLS = {
    # the seven registry tools, without a leading underscore
    "get_orchestrator_health",
    "get_agent_registry",
    "get_agent_details",
    "get_agent_status",
    "check_all_agents",
    "route_task",
    "get_execution_history",
    "set_agent_status",
    # workflows, tasks, events, audit
    "list_workflow_templates",
    "start_workflow",
    "get_workflow_status",
    "list_workflow_runs",
    "cancel_workflow",
    "resume_workflow",
    "execute_task",
    "get_workflow_events",
    "query_audit_log",
    # schedules
    "list_schedules",
    "add_schedule",
    "remove_schedule",
}
INCIDENT = {"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}


def with_client(service: Orchestrator, body: Callable[[Client[Any]], Awaitable[T]]) -> T:  # noqa: F811
    async def main() -> T:
        async with Client(create_mcp(service, local_principal=Principal("local", "admin"))) as client:
            return await body(client)

    return anyio.run(main)


async def call(client: Client[Any], tool: str, arguments: dict[str, Any] | None = None) -> Any:
    result = await client.call_tool(tool, arguments or {})
    return result.data


async def tool_error(client: Client[Any], tool: str, arguments: dict[str, Any]) -> str:
    with pytest.raises(ToolError) as caught:
        await client.call_tool(tool, arguments)
    return str(caught.value)


def test_tool_names_are_exactly_the_snake_case_set(service: Orchestrator) -> None:  # noqa: F811
    tools = with_client(service, lambda c: c.list_tools())
    assert {t.name for t in tools} == EXPECTED_TOOLS


def test_every_parameter_and_tool_is_described(service: Orchestrator) -> None:  # noqa: F811
    tools = with_client(service, lambda c: c.list_tools())
    for tool in tools:
        assert tool.description, tool.name
        for name, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"


def test_start_workflow_declares_wait_false(service: Orchestrator) -> None:  # noqa: F811
    tools = {t.name: t for t in with_client(service, lambda c: c.list_tools())}
    assert tools["start_workflow"].input_schema["properties"]["wait"]["default"] is False


def test_arguments_a_tool_refuses_are_orch_8003_naming_each_field(service: Orchestrator) -> None:  # noqa: F811
    """Refused by the tool's signature, before its body runs: the same ``[ORCH_xxxx]`` shape as every other error."""

    async def body(client: Client[Any]) -> list[str]:
        return [
            await tool_error(client, "execute_task", {"action": "cmdb.ping", "timeout_seconds": 0}),
            await tool_error(client, "list_workflow_runs", {"status": "weird", "limit": "many"}),
            await tool_error(client, "get_workflow_status", {}),
        ]

    zero, listing, missing = with_client(service, body)
    assert zero == "[ORCH_8003] Invalid arguments for execute_task: timeout_seconds: Input should be greater than 0"
    assert listing.startswith("[ORCH_8003] Invalid arguments for list_workflow_runs: ")
    assert "status: Input should be 'pending'" in listing and "limit: Input should be a valid integer" in listing
    assert missing == "[ORCH_8003] Invalid arguments for get_workflow_status: run_id: Missing required argument"
    assert "pydantic.dev" not in zero + listing + missing


def test_registry_tools_return_the_compatible_fields(service: Orchestrator) -> None:  # noqa: F811
    async def body(client: Client[Any]) -> None:
        health = await call(client, "get_orchestrator_health")
        assert {
            "status",
            "version",
            "uptime_seconds",
            "connected_agents",
            "total_registered_agents",
            "active_workflows",
            "timestamp",
        } <= set(health)
        registry = await call(client, "get_agent_registry", {"domain": "cmdb"})
        assert [a["agent_id"] for a in registry["agents"]] == ["cmdb-agent"]
        assert registry["filters_applied"] == {"domain": "cmdb"}
        assert "orchestration" in await tool_error(client, "get_agent_registry", {"domain": "hr"})
        details = await call(client, "get_agent_details", {"agent_id": "csa-agent"})
        assert details["domain"] == "csa"
        assert (await tool_error(client, "get_agent_details", {"agent_id": "ghost"})).startswith("[ORCH_1001]")
        status = await call(client, "get_agent_status", {"agent_id": "cmdb-agent"})
        assert status["current_status"] == "offline"
        assert "latest_check_result" in status
        checked = await call(client, "check_all_agents")
        assert len(checked["check_results"]) == 6
        assert checked["summary"]["status_summary"] == {"offline": 6}
        assert checked["force_check"] is False
        routed = await call(
            client,
            "route_task",
            {
                "task_id": "t-1",
                "title": "Audit compliance",
                "description": "run a compliance audit",
                "target_agent": "itom-auditor",
            },
        )
        assert (routed["status"], routed["task_id"]) == ("routed", "t-1")
        assert (routed["routing_decision"]["agent_id"], routed["routing_decision"]["method"]) == (
            "itom-auditor",
            "explicit",
        )
        bad = await tool_error(
            client, "route_task", {"task_id": "t-2", "title": "x", "description": "y", "priority": "urgent"}
        )
        assert bad.startswith("[ORCH_8003]")
        history = await call(client, "get_execution_history", {"limit": 5})
        assert {"records", "record_count", "stats", "active_tasks", "filters", "timestamp"} <= set(history)
        paused = await call(client, "set_agent_status", {"agent_id": "csa-agent", "status": "maintenance"})
        assert paused["status"] == "maintenance"
        registry = await call(client, "get_agent_registry", {"status": "maintenance"})
        assert [a["agent_id"] for a in registry["agents"]] == ["csa-agent"]
        assert (await call(client, "set_agent_status", {"agent_id": "csa-agent", "status": "active"}))[
            "status"
        ] == "offline"

    with_client(service, body)


def test_workflow_tools_drive_a_run(service: Orchestrator) -> None:  # noqa: F811
    async def body(client: Client[Any]) -> None:
        templates = await call(client, "list_workflow_templates")
        assert "incident-response" in {t["template_id"] for t in templates["templates"]}
        started = await call(client, "start_workflow", {**INCIDENT, "idempotency_key": "mcp-1"})
        run_id = started["run_id"]
        assert started["status"] == "running"
        again = await call(client, "start_workflow", {**INCIDENT, "idempotency_key": "mcp-1"})
        assert again["run_id"] == run_id
        other = {**INCIDENT, "priority": "low", "idempotency_key": "mcp-1"}
        assert (await tool_error(client, "start_workflow", other)).startswith("[ORCH_8011]")
        status = await call(client, "get_workflow_status", {"run_id": run_id})
        assert status["created_by"] == "admin:local"
        runs = await call(client, "list_workflow_runs", {"status": "running"})
        assert [r["run_id"] for r in runs["items"]] == [run_id]
        assert (await call(client, "cancel_workflow", {"run_id": run_id}))["status"] == "cancelled"
        assert (await tool_error(client, "cancel_workflow", {"run_id": run_id})).startswith("[ORCH_3002]")
        resumed = await call(client, "resume_workflow", {"run_id": run_id})
        assert (resumed["status"], resumed["generation"]) == ("running", 1)
        events = await call(client, "get_workflow_events", {"run_id": run_id})
        assert [e["event_type"] for e in events["events"]] == [
            "workflow.started",
            "workflow.cancelled",
            "workflow.resumed",
        ]
        audit = await call(client, "query_audit_log", {"target": run_id})
        assert {"workflow_started", "workflow_cancelled", "workflow_resumed"} <= {
            e["event_type"] for e in audit["entries"]
        }
        task = await call(client, "execute_task", {"action": "cmdb.ping", "wait": False})
        assert task["steps"][0]["action"] == "cmdb.ping"
        assert (await tool_error(client, "get_workflow_status", {"run_id": "nope"})).startswith("[ORCH_3001]")
        assert (await tool_error(client, "start_workflow", {"template_id": "nope"})).startswith("[ORCH_3001]")
        assert (await tool_error(client, "execute_task", {"action": "cmdb.nope"})).startswith("[ORCH_7003]")
        assert (await tool_error(client, "start_workflow", {})).startswith("[ORCH_8003]")

    with_client(service, body)


def test_start_workflow_with_wait_reports_progress_per_step(service: Orchestrator) -> None:  # noqa: F811
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async def body(client: Client[Any]) -> Any:
        result = await client.call_tool(
            "start_workflow", {**INCIDENT, "wait": True, "timeout_seconds": 30}, progress_handler=on_progress
        )
        return result.data

    with fake_worker(service, result={"ok": True}):
        final = with_client(service, body)
    assert final["status"] == "completed"
    steps = [step["step_id"] for step in final["steps"]]
    assert steps == ["assess-impact", "route-to-agent", "create-ticket"]
    assert reports[0][0] == 0  # the start, before any step
    per_step = [(p, m) for p, _, m in reports if m and m.startswith("step ")]
    # every step named exactly once, in order, each counted one more (the first one too)
    assert per_step == [(n + 1, f"step {step} completed ({n + 1}/3)") for n, step in enumerate(steps)]
    assert len(reports) == 4  # the start and one per step: nothing else, nothing twice
    assert {t for _, t, _ in reports} == {3}


def test_execute_task_waits_by_default(service: Orchestrator) -> None:  # noqa: F811
    with fake_worker(service, result={"pong": True}):
        final = with_client(service, lambda c: call(c, "execute_task", {"action": "cmdb.ping", "timeout_seconds": 30}))
    assert final["status"] == "completed"
    assert final["steps"][0]["result"] == {"pong": True}


def test_a_wait_that_runs_out_is_orch_3004(service: Orchestrator) -> None:  # noqa: F811
    message = with_client(
        service, lambda c: tool_error(c, "start_workflow", {**INCIDENT, "wait": True, "timeout_seconds": 0.3})
    )
    assert message.startswith("[ORCH_3004]")


def test_http_callers_act_as_their_token_principal(
    service: Orchestrator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = OrchestratorTokenVerifier(service.settings)
    viewer_token = next(t for t, g in TOKENS.items() if g["role"] == "viewer")
    access = anyio.run(verifier.verify_token, viewer_token)
    assert access is not None
    assert (access.client_id, access.scopes) == ("vera", ["viewer"])
    assert anyio.run(verifier.verify_token, "wrong") is None
    monkeypatch.setattr(mcp_auth, "get_access_token", lambda: access)
    assert mcp_auth.caller(Principal("local", "admin")) == Principal("vera", "viewer")
    denied = with_client(service, lambda c: tool_error(c, "start_workflow", INCIDENT))
    assert denied.startswith("[ORCH_6001]")
    assert "viewer" in denied
    allowed = with_client(service, lambda c: call(c, "list_workflow_runs"))
    assert allowed["total"] == 0
