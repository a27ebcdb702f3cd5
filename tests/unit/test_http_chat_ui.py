"""What itom-chat-ui needs from the front door (fakeredis, in-memory broker, a fake worker): the opt-in
anonymous principal on its routes only, the work log, the orchestrator answering for itself, ``tool_used`` and
``source`` in replies, maintenance taking an agent out of routing (persisted), and agent health that names
what a bridged agent's server lacks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from fastapi.testclient import TestClient

from orchestrator import keys
from orchestrator.asgi import create_app
from orchestrator.errors import NoRouteFoundError
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.state import event_hub as event_hub_module
from orchestrator.state.agents import required_tools
from tests.unit.conftest import make_fake_server
from tests.unit.test_http_fixtures import OPERATOR, VIEWER, bearer, build_service, fake_worker

ANONYMOUS = {"enabled": True, "principal": "chat-ui", "role": "operator"}
WORK_ITEM_FIELDS = {
    "type",
    "number",
    "short_description",
    "priority",
    "state",
    "opened_at",
    "due_date",
    "assigned_to",
    "sys_id",
}


def _service(monkeypatch: pytest.MonkeyPatch, **auth: Any) -> Orchestrator:
    fake_server = make_fake_server()

    def fake_from_url(url: str, **kwargs: Any) -> Any:
        return fakeredis.FakeAsyncRedis(server=fake_server, **kwargs)

    monkeypatch.setattr(event_hub_module.aioredis.Redis, "from_url", fake_from_url)
    service = build_service(fake_server)
    if auth:
        service.settings.auth.anonymous = service.settings.auth.anonymous.model_copy(update=auth)
    return service


@pytest.fixture
def open_service(monkeypatch: pytest.MonkeyPatch) -> Orchestrator:
    return _service(monkeypatch, **ANONYMOUS)


@pytest.fixture
def client(open_service: Orchestrator) -> Iterator[TestClient]:
    with TestClient(create_app(open_service)) as test_client:
        yield test_client


def beat(service: Orchestrator, agent_id: str, **extra: Any) -> None:
    """A fresh heartbeat of one worker instance of ``agent_id``, as its worker writes it."""
    instance = f"{agent_id}@test:1"
    record = {"agent_id": agent_id, "instance": instance, "ts": time.time(), "at": "now", "hostname": "test", **extra}
    service.redis.zadd(keys.WORKERS, {instance: time.time()})
    service.redis.set(keys.worker_key(instance), json.dumps(record))


# ---- the anonymous principal ---------------------------------------------------------------------------------


def test_without_the_opt_in_no_token_means_401(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(_service(monkeypatch))) as closed:
        for method, path in (("POST", "/api/chat"), ("GET", "/api/agents/status"), ("GET", "/api/worklog")):
            response = closed.request(method, path, json={"message": "hi"} if method == "POST" else None)
            assert response.status_code == 401, path


def test_the_opt_in_serves_only_the_chat_uis_routes(client: TestClient) -> None:
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/agents/status").status_code == 200
    assert client.get("/api/worklog").status_code == 200
    for method, path in (
        ("GET", "/api/agents"),
        ("GET", "/api/agents/cmdb-agent"),
        ("POST", "/api/agents/cmdb-agent/status"),
        ("GET", "/api/workflows"),
        ("POST", "/api/tasks"),
        ("GET", "/api/audit"),
        ("GET", "/metrics"),
    ):
        response = client.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 401, path


def test_a_bad_token_is_refused_even_with_the_opt_in(client: TestClient) -> None:
    assert client.get("/api/agents/status", headers=bearer("wrong")).status_code == 401
    assert client.post("/api/chat", headers=bearer("wrong"), json={"message": "hi"}).status_code == 401


def test_anonymous_chat_is_audited_under_its_own_actor(client: TestClient, open_service: Orchestrator) -> None:
    with fake_worker(open_service, result={"items": [{"name": "web-01"}], "count": 1}):
        response = client.post("/api/chat", json={"message": "show me the servers in the cmdb", "session_id": "c-1"})
    assert response.status_code == 200, response.text
    actors = {entry.actor for entry in open_service.audit.query(limit=50)}
    assert "anonymous:chat-ui" in actors
    run = open_service.get_run(response.json()["run_id"])
    assert run.created_by == "anonymous:chat-ui"


def test_an_anonymous_viewer_may_look_but_not_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(_service(monkeypatch, enabled=True, role="viewer"))) as viewer:
        assert viewer.get("/api/agents/status").status_code == 200
        assert viewer.post("/api/chat", json={"message": "list servers"}).status_code == 403
        status = viewer.post("/api/chat", json={"message": "status", "target_agent": "orchestrator"})
        assert status.status_code == 200  # the orchestrator's own summary is a look, not a run


# ---- chat replies ---------------------------------------------------------------------------------------------


def test_replies_say_which_tool_answered_and_from_where(client: TestClient, open_service: Orchestrator) -> None:
    with fake_worker(open_service, result={"stale_cis": [], "count": 0, "days_threshold": 90}):
        response = client.post(
            "/api/chat", json={"message": "Find stale servers in the CMDB", "target_agent": "cmdb-agent"}
        )
    assert response.status_code == 200, response.text
    result = response.json()["response"]["result"]
    assert (result["action"], result["tool_used"], result["source"]) == (
        "cmdb.stale",
        "cmdb.stale",
        "builtin:cmdb-agent",
    )
    run = open_service.get_run(response.json()["run_id"])
    assert run.steps[0].action == "cmdb.stale"


def test_the_orchestrator_answers_for_itself(client: TestClient, open_service: Orchestrator) -> None:
    beat(open_service, "cmdb-agent")
    status = client.post(
        "/api/chat",
        json={"message": "Show the current system health status for all ITOM agents", "target_agent": "orchestrator"},
    )
    assert status.status_code == 200, status.text
    body = status.json()
    assert (body["agent_id"], body["domain"], body["routing_method"]) == ("orchestrator", "orchestration", "explicit")
    result = body["response"]["result"]
    assert (result["tool_used"], result["source"]) == ("get_orchestrator_health", "orchestrator")
    assert "| CMDB Agent (`cmdb-agent`) | online |" in result["agent_response"]
    assert {a["agent_id"] for a in result["data"]["agents"]} == set(open_service.agents.registry.registered())
    agents = client.post(
        "/api/chat",
        json={"message": "List all available ITOM agents and their current status", "target_agent": "orchestrator"},
    )
    assert agents.json()["response"]["result"]["tool_used"] == "get_orchestrator_health"
    listing = client.post("/api/chat", json={"message": "list the agents", "target_agent": "orchestrator"})
    assert listing.json()["response"]["result"]["tool_used"] == "get_agent_registry"


def test_messages_up_to_the_chat_uis_limit_are_accepted(client: TestClient) -> None:
    body = {"message": "x" * 10_000, "target_agent": "orchestrator"}
    assert client.post("/api/chat", json=body).status_code == 200
    assert client.post("/api/chat", json={**body, "message": "x" * 10_001}).status_code == 422


def test_unknown_tool_args_are_refused_with_the_names_to_use(client: TestClient) -> None:
    response = client.post(
        "/api/chat",
        json={
            "message": "find stale servers",
            "target_agent": "cmdb-agent",
            "context": {"tool_hint": "find_stale_configuration_items", "tool_args": {"ci_typ": "server"}},
        },
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_code"] == "ORCH_7003"
    assert "'ci_typ'" in body["error_message"] and "ci_type" in body["error_message"]


# ---- the work log ---------------------------------------------------------------------------------------------


def test_the_work_log_has_runs_tasks_and_chat_exchanges(client: TestClient, open_service: Orchestrator) -> None:
    with fake_worker(open_service, result={"count": 3}):
        chat = client.post("/api/chat", json={"message": "How many servers are in the CMDB", "target_agent": "cmdb"})
        assert chat.status_code == 200, chat.text
        started = client.post(
            "/api/workflows", headers=OPERATOR, json={"template_id": "incident-response", "parameters": {"ci_id": "x"}}
        )
        assert started.status_code == 202
    log = client.get("/api/worklog").json()
    assert log["status"] == "ok"
    assert all(set(item) == WORK_ITEM_FIELDS for item in log["items"])
    by_type = {item["type"]: item for item in log["items"]}
    assert by_type["chat"]["short_description"] == "How many servers are in the CMDB"
    assert by_type["chat"]["sys_id"] == chat.json()["run_id"] and by_type["chat"]["state"] == "completed"
    assert by_type["workflow"]["number"] == started.json()["run_id"]
    assert isinstance(by_type["workflow"]["priority"], int)
    assert [i["number"] for i in log["items"]].count(chat.json()["run_id"]) == 0  # its run is not listed twice


# ---- registry status and health -------------------------------------------------------------------------------


def test_maintenance_is_persisted_shown_and_skipped_by_routing(
    client: TestClient, open_service: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        client.post("/api/agents/asset-agent/status", headers=VIEWER, json={"status": "maintenance"}).status_code == 403
    )
    changed = client.post(
        "/api/agents/asset-agent/status", headers=OPERATOR, json={"status": "maintenance", "reason": "upgrade"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["status_reason"]) == ("maintenance", "upgrade")
    refused = client.post("/api/chat", json={"message": "list hardware assets", "target_agent": "asset-agent"})
    assert refused.status_code == 502 and refused.json()["detail"]["error_code"] == "ORCH_2002"
    with pytest.raises(NoRouteFoundError):  # only the asset rule matches, and its agent is skipped
        open_service.route_task(Principal("tester", "operator"), task_id="t1", title="software inventory")
    skipped = client.post("/api/chat", json={"message": "software inventory"})
    assert skipped.status_code == 502 and skipped.json()["detail"]["error_code"] == "ORCH_2001"
    restarted = build_service()  # a new process on the same data directory
    statuses = {a["agent_id"]: a["status"] for a in restarted.agents.summary()["agents"]}
    assert statuses["asset-agent"] == "maintenance"
    audited = [e for e in open_service.audit.query(event_type="agent_status_changed")]
    assert audited and audited[0].actor == "operator:otto"


def test_health_names_the_tools_a_bridged_server_lacks(client: TestClient, open_service: Orchestrator) -> None:
    beat(
        open_service, "itom-auditor", mcp={"reachable": True, "tools": 2, "tool_names": ["audit_full", "health_check"]}
    )
    health = client.get("/api/agents/itom-auditor/health", headers=OPERATOR).json()
    assert health["current_status"] == "degraded"
    missing = health["latest_check_result"]["details"]["mcp_problems"]["missing_tools"]
    assert missing == ["audit_assets", "audit_cmdb", "audit_discovery", "compliance_report", "compliance_rules"]
    assert health["latest_check_result"]["timestamp"] == health["latest_check_result"]["checked_at"]
    statuses = {a["agent_id"]: a["status"] for a in client.get("/api/agents/status").json()["agents"]}
    assert statuses["itom-auditor"] == "degraded"


def test_health_is_degraded_while_a_bridged_agents_calls_fail(client: TestClient, open_service: Orchestrator) -> None:
    beat(open_service, "discovery-agent", mcp={"reachable": True, "tool_names": ["get_discovery_status"]})
    failure = {"tool": "get_discovery_status", "error": "Session not found", "code": "ORCH_7001", "ts": time.time()}
    open_service.redis.set(keys.agent_mcp_failure_key("discovery-agent"), json.dumps(failure), ex=60)
    record = client.get("/api/agents/discovery-agent", headers=OPERATOR).json()
    assert record["status"] == "degraded"
    assert record["mcp_problems"]["failing_call"]["error"] == "Session not found"
    open_service.redis.delete(keys.agent_mcp_failure_key("discovery-agent"))
    beat(open_service, "discovery-agent", mcp={"reachable": True, "tool_names": required_tools("discovery-agent")})
    assert client.get("/api/agents/discovery-agent", headers=OPERATOR).json()["status"] == "online"
