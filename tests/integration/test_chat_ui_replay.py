"""itom-chat-ui against us, as its backend really calls us: no token (the opt-in anonymous principal), its exact
request bodies, and our answers validated by the UI's own response models (re-declared below with the UI's field
names, types and defaults, and the same extraction it applies). Real agent workers on the bundled sample
instance answer every slash command of the UI's ``frontend/src/lib/commands.ts`` with the action it means.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from orchestrator.asgi import create_app
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AnonymousSettings, Settings

pytestmark = pytest.mark.integration


# ---- the UI's response models (backend/app/models/chat.py, routers/worklog.py, models/agent.py) ---------------


class UIOrchestratorResponse(BaseModel):
    """What the UI's strict client validates every ``/api/chat`` answer against."""

    message_id: str
    status: str
    agent_id: str
    agent_name: str
    domain: str
    response: dict[str, Any]
    routing_method: str
    timestamp: str
    session_id: str | None = None

    @property
    def content(self) -> str:
        """The text the UI shows: ``result.agent_response``, else an acknowledgement, else the JSON of the result."""
        result = self.response.get("result", {})
        if isinstance(result, dict):
            if "agent_response" in result:
                return str(result["agent_response"])
            if "dispatched_to" in result:
                return f"Message received by {result.get('dispatched_to', 'unknown')}."
            if result:
                return json.dumps(result, indent=2)
        return f"Response from {self.agent_name} (status: {self.status})"

    @property
    def metadata(self) -> dict[str, Any]:
        result = self.response.get("result", {})
        return {
            "routing_method": self.routing_method,
            "domain": self.domain,
            "tool_used": result.get("tool_used"),
            "source": result.get("source"),
        }


class UIWorkItem(BaseModel):
    type: str
    number: str
    short_description: str
    priority: int
    state: str
    opened_at: str
    due_date: str | None = None
    assigned_to: str = ""
    sys_id: str


class UIWorklogResponse(BaseModel):
    items: list[UIWorkItem] = Field(default_factory=list)
    status: str = "ok"


class UIAgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    BUSY = "busy"


# The UI maps our agent ids to its short ids when it reads /api/agents/status.
UI_SHORT_IDS = {
    "discovery-agent": "discovery",
    "asset-agent": "asset",
    "itom-auditor": "auditor",
    "itom-documentator": "documentator",
    "cmdb-agent": "cmdb",
    "csa-agent": "csa",
}


def ui_agent_statuses(body: dict[str, Any]) -> dict[str, UIAgentStatus]:
    """The UI's reading of ``/api/agents/status``: a status it does not know counts as offline."""
    statuses: dict[str, UIAgentStatus] = {}
    for agent in body.get("agents", []):
        short = UI_SHORT_IDS.get(agent.get("agent_id", ""), agent.get("agent_id", ""))
        try:
            statuses[short] = UIAgentStatus(agent.get("status", "offline"))
        except ValueError:
            statuses[short] = UIAgentStatus.OFFLINE
    if any(s == UIAgentStatus.ONLINE for s in statuses.values()):
        statuses["auto"] = UIAgentStatus.ONLINE
    return statuses


# ---- the UI's slash commands (frontend/src/lib/commands.ts) and the action each one means ----------------------

# name, agentTarget, promptTemplate, argument required (<...>), example argument, intended action
COMMANDS: list[tuple[str, str, str, bool, str, str]] = [
    (
        "/discover",
        "discovery-agent",
        "Run a network discovery scan targeting {args}",
        False,
        "10.20.0.0/16",
        "discovery.scan",
    ),
    ("/audit", "itom-auditor", "Run a compliance audit on {args}", False, "discovery results", "audit.compliance"),
    ("/assets", "asset-agent", "Query the asset inventory for {args}", False, "laptops", "asset.query"),
    ("/docs", "itom-documentator", "Generate documentation for {args}", False, "cmdb health", "documentation.generate"),
    (
        "/status",
        "orchestrator",
        "Show the current system health status for all ITOM agents",
        False,
        "",
        "get_orchestrator_health",
    ),
    ("/ci-search", "cmdb-agent", "Search for configuration items matching: {args}", True, "web-prod", "cmdb.query"),
    ("/ci-count", "cmdb-agent", "How many {args} are in the CMDB", False, "servers", "cmdb.count"),
    ("/ci-details", "cmdb-agent", "Show details for CI: {args}", True, "web-prod-01", "cmdb.query"),
    ("/ci-history", "cmdb-agent", "Show the change history of CI: {args}", True, "web-prod-01", "cmdb.history"),
    (
        "/ci-relations",
        "cmdb-agent",
        "Show the relationships for configuration item: {args}",
        True,
        "web-prod-01",
        "cmdb.dependency_tree",
    ),
    (
        "/ci-dependencies",
        "cmdb-agent",
        "Show the dependency tree for CI: {args}",
        True,
        "web-prod-01",
        "cmdb.dependency_tree",
    ),
    (
        "/ci-impact",
        "cmdb-agent",
        "Analyze the impact analysis of changes to CI: {args}",
        True,
        "web-prod-01",
        "cmdb.map_relationships",
    ),
    ("/ci-types", "cmdb-agent", "List all available CI types and their fields", False, "", "cmdb.ci_types"),
    ("/cmdb-health", "cmdb-agent", "Show the CMDB health metrics for {args}", False, "servers", "cmdb.health_audit"),
    ("/cmdb-trend", "cmdb-agent", "Show the CMDB health trend report over time", False, "", "cmdb.health_trend"),
    ("/cmdb-compliance", "cmdb-agent", "Run a CMDB compliance check on {args}", False, "servers", "cmdb.health_audit"),
    ("/cmdb-stale", "cmdb-agent", "Find stale {args} in the CMDB", False, "servers", "cmdb.stale"),
    ("/cmdb-duplicates", "cmdb-agent", "Find duplicate {args} in the CMDB", False, "servers", "cmdb.duplicates"),
    ("/cmdb-reconcile", "cmdb-agent", "Run CMDB data reconciliation on {args}", False, "servers", "cmdb.reconcile"),
    ("/cmdb-audit", "cmdb-agent", "Show the CMDB audit summary and statistics", False, "", "cmdb.activity"),
    ("/cmdb-activity", "cmdb-agent", "Show recent activity log for {args}", False, "servers", "cmdb.activity"),
    ("/cmdb-dashboard", "cmdb-agent", "Show the CMDB operational dashboard", False, "", "cmdb.dashboard"),
    ("/cmdb-ire", "cmdb-agent", "Show the IRE rules for CI class: {args}", False, "database", "cmdb.ire_rules"),
    (
        "/cmdb-rel-types",
        "cmdb-agent",
        "List all available relationship types in the CMDB",
        False,
        "",
        "cmdb.relationship_types",
    ),
    ("/mcp-health", "cmdb-agent", "Run an MCP server health check", False, "", "cmdb.health_check"),
    (
        "/agents",
        "orchestrator",
        "List all available ITOM agents and their current status",
        False,
        "",
        "get_orchestrator_health",
    ),
]


def build_prompt(template: str, args: str) -> str:
    """The UI's ``buildPrompt``: the template with ``{args}``; without arguments, the placeholder and the
    preposition before it are dropped."""
    if not args:
        for pattern in (
            r"\s*targeting\s*\{args\}",
            r"\s*on\s*\{args\}",
            r"\s*for\s*\{args\}",
            r"\s*matching:\s*\{args\}",
            r"\s*item:\s*\{args\}",
            r"\s*class:\s*\{args\}",
        ):
            template = re.sub(pattern, "", template, count=1)
        return template.replace("{args}", "").strip()
    return template.replace("{args}", args, 1)


def command_cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for name, target, template, required, example, action in COMMANDS:
        if "{args}" in template:
            cases.append((f"{name} {example}", target, build_prompt(template, example), action))
        if not required:
            cases.append((name, target, build_prompt(template, ""), action))
    return cases


# ---- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ui(worker_pool: WorkerPool, redis_url: str, integration_data_dir: Any) -> Iterator[TestClient]:
    settings = Settings(
        redis={"url": redis_url},
        data_dir=integration_data_dir,
        auth={"anonymous": AnonymousSettings(enabled=True, principal="chat-ui", role="operator")},
    )
    with TestClient(create_app(Orchestrator(settings))) as client:
        yield client


def chat(client: TestClient, body: dict[str, Any]) -> UIOrchestratorResponse:
    response = client.post("/api/chat", json=body)  # the UI sends no Authorization header
    assert response.status_code == 200, response.text
    parsed = UIOrchestratorResponse.model_validate(response.json())
    assert parsed.content.strip() and not parsed.content.startswith("Response from")
    assert parsed.metadata["tool_used"] and parsed.metadata["source"]
    return parsed


# ---- the replay -----------------------------------------------------------------------------------------------


def test_health_and_agent_status_as_the_ui_reads_them(ui: TestClient) -> None:
    assert ui.get("/api/health").status_code == 200
    response = ui.get("/api/agents/status")
    assert response.status_code == 200
    statuses = ui_agent_statuses(response.json())
    assert set(statuses) >= {"discovery", "asset", "auditor", "documentator", "cmdb", "csa"}
    assert statuses["auto"] == UIAgentStatus.ONLINE and statuses["cmdb"] == UIAgentStatus.ONLINE


def test_the_chat_backends_non_streaming_request(ui: TestClient) -> None:
    conversation = str(uuid.uuid4())
    body = {
        "message": "How many servers are in the CMDB",
        "target_agent": None,
        "domain": None,
        "context": {
            "user_sys_id": "6816f79cc0a8016401c5a33be04be441",
            "user_name": "abel.tuter",
            "user_display_name": "Abel",
        },
        "session_id": conversation,
    }
    reply = chat(ui, body)
    assert (reply.agent_id, reply.response["result"]["action"]) == ("cmdb-agent", "cmdb.count")
    assert reply.session_id == conversation and "CI(s) of class" in reply.content


def test_the_streaming_requests_with_session_continuity_and_short_ids(ui: TestClient) -> None:
    conversation = str(uuid.uuid4())
    first = chat(
        ui,
        {
            "message": "Find stale servers in the CMDB",
            "target_agent": None,
            "session_id": conversation,
            "context": {"last_agent_id": None},
        },
    )
    assert (first.agent_id, first.response["result"]["action"]) == ("cmdb-agent", "cmdb.stale")
    follow_up = chat(
        ui,
        {
            "message": "what about the ones without an owner",
            "target_agent": None,
            "session_id": conversation,
            "context": {"last_agent_id": first.agent_id},
        },
    )
    assert follow_up.agent_id == "cmdb-agent"
    for short, agent in (("discovery", "discovery-agent"), ("asset", "asset-agent"), ("auditor", "itom-auditor")):
        reply = chat(ui, {"message": "show me what you have", "target_agent": short, "session_id": conversation})
        assert reply.agent_id == agent


def test_the_claude_mode_tool_calls_with_tool_hint_and_tool_args(ui: TestClient) -> None:
    conversation = str(uuid.uuid4())
    stale = chat(
        ui,
        {
            "message": "Find Linux servers not updated in 60 days",
            "target_agent": "cmdb-agent",
            "session_id": conversation,
            "context": {
                "tool_hint": "find_stale_configuration_items",
                "tool_args": {"ci_type": "linux_server", "days": 60, "limit": 10},
            },
        },
    )
    data = stale.response["result"]["data"]
    assert (stale.response["result"]["action"], data["days_threshold"], data["ci_class"]) == (
        "cmdb.stale",
        60,
        "cmdb_ci_linux_server",
    )
    impact = chat(
        ui,
        {
            "message": "What breaks if this CI goes down?",
            "target_agent": "cmdb-agent",
            "session_id": conversation,
            "context": {"tool_hint": "analyze_configuration_item_impact", "tool_args": {"ci_sys_id": "web-prod-01"}},
        },
    )
    assert impact.response["result"]["data"]["ci"]["name"] == "web-prod-01"
    for target, query in (("discovery", "Check the latest discovery scans"), ("documentator", "Write a health report")):
        chat(ui, {"message": query, "target_agent": target, "session_id": conversation, "context": {"tool_args": {}}})
    refused = ui.post(
        "/api/chat",
        json={
            "message": "find duplicates",
            "target_agent": "cmdb-agent",
            "context": {"tool_hint": "find_duplicate_configuration_items", "tool_args": {"fuzzy": True}},
        },
    )
    assert refused.status_code == 422 and "'fuzzy'" in refused.json()["error_message"]


def test_the_clarification_round_trip(ui: TestClient) -> None:
    conversation = str(uuid.uuid4())
    asked = ui.post(
        "/api/chat", json={"message": "audit the servers", "target_agent": None, "session_id": conversation}
    )
    assert asked.status_code == 200
    question = asked.json()
    assert question["response_type"] == "clarification" and question["options"]
    answer = {
        "pending_message_token": question["pending_message_token"],
        "clarification_answer": question["options"][0],
        "session_id": conversation,
    }
    settled = ui.post("/api/chat/clarify", json=answer)
    assert settled.status_code == 200, settled.text
    assert UIOrchestratorResponse.model_validate(settled.json()).content


def test_the_worklog_as_the_ui_reads_it(ui: TestClient) -> None:
    chat(ui, {"message": "Show the CMDB operational dashboard", "target_agent": "cmdb-agent", "session_id": "wl"})
    response = ui.get("/api/worklog")
    assert response.status_code == 200
    worklog = UIWorklogResponse.model_validate(response.json())
    items = [UIWorkItem.model_validate(item) for item in response.json()["items"]]
    assert worklog.status == "ok" and items
    assert any(i.type == "chat" and i.short_description == "Show the CMDB operational dashboard" for i in items)


@pytest.mark.parametrize(
    ("command", "target", "prompt", "action"), command_cases(), ids=[c[0] for c in command_cases()]
)
def test_every_slash_command_answers_with_the_action_it_means(
    ui: TestClient, command: str, target: str, prompt: str, action: str
) -> None:
    reply = chat(
        ui, {"message": prompt, "target_agent": target, "session_id": "slash", "context": {"last_agent_id": None}}
    )
    assert reply.agent_id == target
    result = reply.response["result"]
    assert (result["tool_used"] if target == "orchestrator" else result["action"]) == action, prompt
    if command == "/ci-impact web-prod-01":
        assert result["data"]["ci"]["name"] == "web-prod-01"  # the CI named, not the word "changes"
