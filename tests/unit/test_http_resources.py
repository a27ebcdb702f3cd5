"""HTTP agents, audit, dead letters, messages, chat (the compatible contract), execution history and metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator import keys
from orchestrator.asgi import create_app
from orchestrator.errors import WorkflowTimeoutError
from orchestrator.service import Orchestrator
from orchestrator.state import deadletters
from tests.unit.test_http_fixtures import ADMIN, OPERATOR, VIEWER, fake_worker, service  # noqa: F401

INCIDENT = {"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def beat(service: Orchestrator, agent_id: str) -> None:  # noqa: F811
    """A fresh worker heartbeat, as an agent's worker instance writes it."""
    instance = f"{agent_id}@test:1"
    record = {"agent_id": agent_id, "instance": instance, "ts": time.time(), "at": "now", "hostname": "test"}
    service.redis.zadd(keys.WORKERS, {instance: time.time()})
    service.redis.set(keys.worker_key(instance), json.dumps(record))


def add_dead_letter(service: Orchestrator, action: str = "cmdb.ping") -> str:  # noqa: F811
    pipe = service.redis.pipeline()
    deadletters.add_to(
        pipe,
        run_id=None,
        step_id=None,
        agent_id="cmdb-agent",
        action=action,
        params={},
        error={"code": "ORCH_7004", "message": "retries exhausted"},
        reason="retries_exhausted",
        max_len=100,
    )
    pipe.execute()
    return str(service.deadletters.list(limit=1)[0]["dlq_id"])


# ---- agents --------------------------------------------------------------------------------------------------


def test_agent_registry_has_the_compatible_fields_and_live_status(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    beat(service, "cmdb-agent")
    body = client.get("/api/agents", headers=VIEWER).json()
    assert (body["count"], body["total_registered"], body["filters_applied"]) == (6, 6, {})
    status = {a["agent_id"]: a["status"] for a in body["agents"]}
    assert status["cmdb-agent"] == "online"
    assert status["csa-agent"] == "offline"
    online = client.get("/api/agents?status=online", headers=VIEWER).json()
    assert [a["agent_id"] for a in online["agents"]] == ["cmdb-agent"]
    assert online["filters_applied"] == {"status": "online"}
    audit = client.get("/api/agents?domain=audit", headers=VIEWER).json()
    assert [a["agent_id"] for a in audit["agents"]] == ["itom-auditor"]
    by_cap = client.get("/api/agents?capability=cmdb.query&domain=asset", headers=VIEWER).json()
    assert [a["agent_id"] for a in by_cap["agents"]] == ["cmdb-agent"]  # capability wins over domain


def test_an_unknown_dead_letter_reason_is_400_listing_the_reasons(client: TestClient) -> None:
    response = client.get("/api/dlq?reason=retry_exhausted", headers=ADMIN)  # one letter short of the real one
    assert response.status_code == 400
    assert response.json()["error_code"] == "ORCH_8003"
    assert "retries_exhausted, delivery_limit, refused, malformed, expired" in response.json()["error_message"]
    assert client.get("/api/dlq?reason=retries_exhausted", headers=ADMIN).json() == {"entries": [], "count": 0}


@pytest.mark.parametrize(("query", "valid"), [("domain=hr", "orchestration"), ("status=asleep", "maintenance")])
def test_invalid_registry_filters_are_400_listing_valid_values(client: TestClient, query: str, valid: str) -> None:
    response = client.get(f"/api/agents?{query}", headers=VIEWER)
    assert response.status_code == 400
    assert response.json()["error_code"] == "ORCH_8003"
    assert valid in response.json()["error_message"]


def test_agent_status_details_and_health(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    beat(service, "asset-agent")
    summary = client.get("/api/agents/status", headers=VIEWER).json()
    assert summary["total_agents"] == 6
    assert summary["status_summary"] == {"online": 1, "offline": 5}
    details = client.get("/api/agents/cmdb-agent", headers=VIEWER).json()
    assert details["agent_id"] == "cmdb-agent"
    assert all("input_schema" in c for c in details["capabilities"])
    health = client.get("/api/agents/asset-agent/health", headers=VIEWER).json()
    assert (health["current_status"], health["latest_check_result"]["result"]) == ("online", "healthy")
    assert health["health_stats"]["total_checks"] == 1


@pytest.mark.parametrize("path", ["/api/agents/ghost", "/api/agents/ghost/health"])
def test_unknown_agents_are_404(client: TestClient, path: str) -> None:
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 404
    assert response.json()["error_code"] == "ORCH_1001"
    assert "not found in registry" in response.json()["error_message"]


# ---- audit ---------------------------------------------------------------------------------------------------


def test_audit_query_export_and_verify(client: TestClient) -> None:
    run_id = client.post(
        "/api/workflows", headers=OPERATOR, json={"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}
    ).json()["run_id"]
    trail = client.get(f"/api/audit?target={run_id}", headers=VIEWER).json()
    types = {e["event_type"] for e in trail["entries"]}
    assert "workflow_started" in types
    assert {e["actor"] for e in trail["entries"] if e["event_type"] == "workflow_started"} == {"operator:otto"}
    by_actor = client.get("/api/audit?actor=operator:otto&event_type=workflow_started", headers=VIEWER).json()
    assert by_actor["count"] == 1
    future = client.get("/api/audit?since=2999-01-01T00:00:00Z", headers=VIEWER).json()
    assert future["count"] == 0

    with client.stream("GET", "/api/audit/export", headers=ADMIN) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        text = response.read().decode()
    assert text.endswith("}\n") and "\n\n" not in text  # JSON Lines: one entry a line, no blank lines
    lines = [json.loads(line) for line in text.splitlines()]
    assert run_id in {line["target"] for line in lines}
    assert all(line["hash"] for line in lines)

    verify = client.get("/api/audit/verify", headers=ADMIN)
    assert verify.status_code == 200
    assert verify.json()["ok"] is True


def test_audit_export_and_verify_need_admin(client: TestClient) -> None:
    for path in ("/api/audit/export", "/api/audit/verify"):
        assert client.get(path, headers=OPERATOR).json()["error_code"] == "ORCH_6001"


# ---- dead letters --------------------------------------------------------------------------------------------


def test_dead_letters_list_show_and_redrive(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    dlq_id = add_dead_letter(service)
    listing = client.get("/api/dlq", headers=OPERATOR).json()
    assert [e["dlq_id"] for e in listing["entries"]] == [dlq_id]
    assert client.get("/api/dlq?reason=expired", headers=OPERATOR).json()["count"] == 0
    shown = client.get(f"/api/dlq/{dlq_id}", headers=OPERATOR).json()
    assert (shown["action"], shown["reason"]) == ("cmdb.ping", "retries_exhausted")
    redriven = client.post(f"/api/dlq/{dlq_id}/redrive", headers=OPERATOR)
    assert redriven.status_code == 200
    run_id = redriven.json()["run_id"]
    assert client.get(f"/api/workflows/{run_id}", headers=VIEWER).json()["steps"][0]["action"] == "cmdb.ping"
    assert client.get(f"/api/dlq/{dlq_id}", headers=OPERATOR).json()["redriven"]["run_id"] == run_id


def test_unknown_dead_letters_are_404(client: TestClient) -> None:
    assert client.get("/api/dlq/1-0", headers=OPERATOR).json()["error_code"] == "ORCH_8004"
    assert client.post("/api/dlq/1-0/redrive", headers=OPERATOR).status_code == 404


# ---- messages ------------------------------------------------------------------------------------------------


def test_send_message_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/api/messages",
        headers=OPERATOR,
        json={
            "sender": "itom-auditor",
            "recipient": "cmdb-agent",
            "message_type": "notification",
            "payload": {"drift": 3},
            "priority": "high",
            "expires_in_seconds": 60,
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"sender": "a", "recipient": "cmdb-agent", "message_type": "x", "priority": "urgent"}, 422, "ORCH_8003"),
        ({"sender": "a", "recipient": "cmdb-agent", "message_type": "x", "expires_in_seconds": 0}, 422, "ORCH_8003"),
        ({"sender": "a", "recipient": "nobody", "message_type": "x"}, 404, "ORCH_1001"),
    ],
)
def test_bad_messages_are_refused(client: TestClient, body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/api/messages", headers=OPERATOR, json=body)
    assert (response.status_code, response.json()["error_code"]) == (status, code)


def test_a_500_deep_message_payload_is_refused_at_the_door_and_never_sent(client: TestClient) -> None:
    """A payload no worker could read back would crash its consumer on every delivery: refused before sending."""
    deep = "[" * 500 + "1" + "]" * 500
    head = '{"sender": "itom-auditor", "recipient": "cmdb-agent", "message_type": "x", "payload": {"v": '
    body = head + deep + "}}"
    response = client.post("/api/messages", headers={**OPERATOR, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error_code"] == "ORCH_8003"
    assert "deep" in error["error_message"] or "levels" in error["error_message"]
    assert client.get("/api/messages/cmdb-agent", headers=VIEWER).json()["messages"] == []


def test_inbox_lists_delivered_messages_newest_first(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    import json

    from orchestrator import keys

    for n in (1, 2):
        service.redis.xadd(keys.inbox_key("csa-agent"), {"m": json.dumps({"message_id": f"m{n}", "payload": {}})})
    response = client.get("/api/messages/csa-agent", headers=VIEWER)
    assert response.status_code == 200, response.text
    assert [m["message_id"] for m in response.json()["messages"]] == ["m2", "m1"]
    assert client.get("/api/messages/nobody", headers=VIEWER).status_code == 404


def test_viewers_cannot_send_messages(client: TestClient) -> None:
    response = client.post(
        "/api/messages", headers=VIEWER, json={"sender": "a", "recipient": "cmdb-agent", "message_type": "x"}
    )
    assert response.status_code == 403


# ---- chat (the chat UI's contract) ---------------------------------------------------------------------------


def test_chat_answers_with_the_compatible_chat_response(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    with fake_worker(service, result={"items": [{"name": "web-01"}], "count": 1}):
        response = client.post(
            "/api/chat",
            headers=OPERATOR,
            json={
                "message": "show me the servers in the cmdb",
                "session_id": "s-1",
                "context": {"last_agent_id": "cmdb-agent"},
            },
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        "message_id",
        "status",
        "agent_id",
        "agent_name",
        "domain",
        "response",
        "routing_method",
        "timestamp",
    } <= set(body)
    assert (body["status"], body["agent_id"], body["session_id"]) == ("success", "cmdb-agent", "s-1")
    assert body["message_id"] == body["response"]["task_id"]
    assert body["response"]["result"]["agent_response"]


def test_chat_rejects_blank_messages_with_422(client: TestClient) -> None:
    for body in ({"message": "   "}, {}, {"message": ""}):
        response = client.post("/api/chat", headers=OPERATOR, json=body)
        assert response.status_code == 422
        assert response.json()["error_code"] == "ORCH_8003"


def test_chat_with_an_unknown_domain_is_400(client: TestClient) -> None:
    response = client.post("/api/chat", headers=OPERATOR, json={"message": "list servers", "domain": "hr"})
    assert response.status_code == 400, response.text


def test_chat_to_an_unknown_agent_is_502_with_the_error_detail(client: TestClient) -> None:
    response = client.post("/api/chat", headers=OPERATOR, json={"message": "hello", "target_agent": "task-manager"})
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert set(detail) == {"error_code", "error_message", "timestamp"}
    assert detail["error_code"].startswith("ORCH_2")


def test_the_front_door_tests_publish_to_memory_never_to_a_local_redis(service: Orchestrator) -> None:  # noqa: F811
    """Their starts go to the in-memory broker; under the Redis transport they went to 127.0.0.1:6379."""
    with service.app.connection_for_write() as connection:
        assert connection.transport.driver_type == "memory"
    assert not service.dispatcher.outbox.shares_state_redis


def never_finishes(service: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Runs outlive the wait (nobody consumes the in-memory broker), without spending the real 30 s."""

    def wait_for_run(run_id: str, **_: Any) -> Any:
        raise WorkflowTimeoutError(f"Run '{run_id}' still running", {"run_id": run_id})

    monkeypatch.setattr(service, "wait_for_run", wait_for_run)


def test_chat_times_out_with_504(
    client: TestClient,
    service: Orchestrator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    never_finishes(service, monkeypatch)
    response = client.post("/api/chat", headers=OPERATOR, json={"message": "show me the servers in the cmdb"})
    assert response.status_code == 504
    assert response.json()["detail"]["error_code"] == "ORCH_7002"


def test_ambiguous_chat_asks_and_clarify_settles_it(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    asked = client.post(
        "/api/chat", headers=OPERATOR, json={"message": "license compliance for office", "session_id": "s-2"}
    )
    assert asked.status_code == 200
    question = asked.json()
    assert question["response_type"] == "clarification"
    assert len(question["pending_message_token"]) == 32
    assert len(question["options"]) >= 2
    token = question["pending_message_token"]

    empty = client.post(
        "/api/chat/clarify", headers=OPERATOR, json={"pending_message_token": token, "clarification_answer": "  "}
    )
    assert (empty.status_code, empty.json()["error_code"]) == (400, "ORCH_8102")
    assert empty.json()["legacy_code"] == "CLARIFICATION_ANSWER_EMPTY"
    assert empty.json()["detail"]["error_code"] == "ORCH_8102"
    with fake_worker(service, result={"compliant": True}):
        settled = client.post(
            "/api/chat/clarify",
            headers=OPERATOR,
            json={"pending_message_token": token, "clarification_answer": question["options"][0]},
        )
    assert settled.status_code == 200, settled.text
    assert settled.json()["status"] == "success"
    assert settled.json()["session_id"] == "s-2"
    reused = client.post(
        "/api/chat/clarify",
        headers=OPERATOR,
        json={"pending_message_token": token, "clarification_answer": question["options"][0]},
    )
    assert (reused.status_code, reused.json()["error_code"]) == (400, "ORCH_8101")
    assert reused.json()["legacy_code"] == "CLARIFICATION_TOKEN_NOT_FOUND"


def test_clarify_reports_server_side_failures_as_502(
    client: TestClient,
    service: Orchestrator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    never_finishes(service, monkeypatch)
    token = client.post("/api/chat", headers=OPERATOR, json={"message": "license compliance for office"}).json()[
        "pending_message_token"
    ]
    response = client.post(
        "/api/chat/clarify", headers=OPERATOR, json={"pending_message_token": token, "clarification_answer": "asset"}
    )
    assert response.status_code == 502, response.text
    assert response.json()["error_code"] == "ORCH_7002"


def test_viewers_cannot_chat(client: TestClient) -> None:
    assert client.post("/api/chat", headers=VIEWER, json={"message": "list servers"}).status_code == 403


# ---- execution history and metrics ---------------------------------------------------------------------------


def test_execution_history_has_the_compatible_fields(client: TestClient) -> None:
    body = client.get("/api/execution-history?limit=5", headers=VIEWER).json()
    assert {"records", "record_count", "stats", "active_tasks", "filters", "timestamp"} <= set(body)
    assert body["filters"]["limit"] == 5
    assert client.get("/api/execution-history?limit=0", headers=VIEWER).status_code == 422


def test_metrics_are_prometheus_text_behind_the_token(client: TestClient) -> None:
    client.post(
        "/api/workflows", headers=OPERATOR, json={"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}
    )
    client.get("/api/workflows/run-nope", headers=VIEWER)
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", headers=VIEWER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'orch_http_requests_total{method="POST",route="/api/workflows",status="202"}' in text
    assert 'route="/api/workflows/{run_id}",status="404"' in text
    assert "run-nope" not in text
    assert "orch_http_request_duration_seconds_bucket" in text
    assert 'orch_runs_started_total{source="http",template="incident-response"} 1.0' in text
    assert "orch_active_runs 1.0" in text
    assert "orch_agents_online 0.0" in text
    assert "orch_dead_letters 0.0" in text


def test_templates_route_lists_broken_user_files_and_sees_new_ones_without_a_restart(
    service: Orchestrator,  # noqa: F811
) -> None:
    folder = service.settings.user_templates_dir
    folder.mkdir(parents=True, exist_ok=True)
    with TestClient(create_app(service)) as client:
        before = client.get("/api/templates", headers=VIEWER).json()
        assert before["broken"] == [] and before["count"] == 4
        (folder / "fresh.yaml").write_text("name: Fresh\nsteps:\n  - step_id: p\n    action: cmdb.ping\n")
        (folder / "typo.yaml").write_text("name: Typo\nsteps:\n  - step_id: p\n   action: cmdb.ping\n")
        after = client.get("/api/templates", headers=VIEWER).json()
        assert "fresh" in [t["template_id"] for t in after["templates"]]
        [broken] = after["broken"]
        assert broken["template_id"] == "typo" and broken["file"] == "typo.yaml" and broken["line"] == 4
        assert "line 4" in broken["error"]


def test_runs_filter_by_creation_time_and_a_runs_audit_tail(service: Orchestrator) -> None:  # noqa: F811
    from datetime import UTC, datetime, timedelta

    with TestClient(create_app(service)) as client:
        started = client.post("/api/workflows", headers=OPERATOR, json=INCIDENT).json()["run_id"]
        other = client.post("/api/workflows", headers=OPERATOR, json=INCIDENT).json()["run_id"]
        now = datetime.now(UTC)

        def ids(**query: str) -> list[str]:
            page = client.get("/api/workflows", headers=VIEWER, params=query).json()
            assert page["total"] == len(page["items"])
            return [run["run_id"] for run in page["items"]]

        assert ids(since=(now - timedelta(minutes=5)).isoformat()) == [other, started]
        assert ids(since=(now + timedelta(minutes=5)).isoformat()) == []
        assert ids(until=(now - timedelta(minutes=5)).isoformat()) == []
        window = {"since": (now - timedelta(minutes=5)).isoformat(), "status": "running", "limit": "1"}
        page = client.get("/api/workflows", headers=VIEWER, params=window).json()
        assert page["total"] == 2 and [r["run_id"] for r in page["items"]] == [other]
        tail = client.get("/api/audit", headers=VIEWER, params={"run_id": started}).json()
        assert tail["count"] >= 2 and {e["target"] for e in tail["entries"]} == {started}
        assert {"workflow_started", "permission_check"} <= {e["event_type"] for e in tail["entries"]}
