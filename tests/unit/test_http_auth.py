"""HTTP front door, cross-cutting: bearer auth on every route, role checks, one error shape, size limit, CORS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator import keys
from orchestrator.asgi import create_app
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS
from tests.unit.test_http_fixtures import ADMIN, OPERATOR, VIEWER, bearer, service  # noqa: F401

PROTECTED: list[tuple[str, str]] = [
    ("GET", "/api/agents"),
    ("GET", "/api/agents/status"),
    ("GET", "/api/agents/cmdb-agent"),
    ("GET", "/api/agents/cmdb-agent/health"),
    ("POST", "/api/agents/cmdb-agent/status"),
    ("GET", "/api/templates"),
    ("GET", "/api/templates/incident-response"),
    ("POST", "/api/workflows"),
    ("GET", "/api/workflows"),
    ("GET", "/api/workflows/run-x"),
    ("POST", "/api/workflows/run-x/cancel"),
    ("POST", "/api/workflows/run-x/resume"),
    ("POST", "/api/tasks"),
    ("GET", "/api/events"),
    ("GET", "/api/events/history"),
    ("GET", "/api/audit"),
    ("GET", "/api/audit/export"),
    ("GET", "/api/audit/verify"),
    ("GET", "/api/dlq"),
    ("GET", "/api/dlq/1-0"),
    ("POST", "/api/dlq/1-0/redrive"),
    ("POST", "/api/messages"),
    ("GET", "/api/messages/cmdb-agent"),
    ("POST", "/api/chat"),
    ("POST", "/api/chat/clarify"),
    ("GET", "/api/worklog"),
    ("GET", "/api/execution-history"),
    ("GET", "/api/schedules"),
    ("POST", "/api/schedules"),
    ("GET", "/api/schedules/nightly"),
    ("DELETE", "/api/schedules/nightly"),
    ("GET", "/metrics"),
]
# Open: health, and the workflow view's sign-in/out (the session routes check the token or cookie themselves).
OPEN = {("GET", "/api/health"), ("POST", "/api/session"), ("GET", "/api/session"), ("DELETE", "/api/session")}


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code
    assert body["error_message"]
    assert body["timestamp"]
    return body


def test_health_is_open_and_has_the_compatible_fields(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["total_registered_agents"] == 6
    assert {"version", "uptime_seconds", "connected_agents", "active_workflows", "timestamp"} <= set(body)
    assert "data_dir" not in body  # the open route says nothing about the host's file system
    head = client.head("/api/health")  # a load balancer's probe that reads the status alone
    assert (head.status_code, head.content) == (200, b"")


def test_health_is_degraded_until_every_agent_has_a_worker_and_a_reconciler_runs(
    client: TestClient,
    service: Orchestrator,  # noqa: F811
) -> None:
    from tests.unit.test_http_resources import beat

    body = client.get("/api/health").json()
    assert body["status"] == "degraded" and body["connected_agents"] == 0
    assert any("agents not online" in p for p in body["problems"])
    assert any("reconciler" in p for p in body["problems"])
    for agent_id in AGENT_IDS:
        beat(service, agent_id)
    service.reconciler.tick()
    service.redis.set(keys.RECONCILER_BEAT, "{}")
    body = client.get("/api/health").json()
    assert (body["status"], body["problems"], body["connected_agents"]) == ("healthy", [], 6)


def test_docs_and_openapi_are_open_and_document_bearer_auth(client: TestClient) -> None:
    assert client.get("/api/docs").status_code == 200
    schema = client.get("/api/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/workflows/{run_id}/cancel" in schema["paths"]
    assert "/metrics" in schema["paths"]


def test_the_protected_list_covers_every_api_route(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    templated = {
        (
            m,
            p.replace("run-x", "{run_id}")
            .replace("cmdb-agent", "{agent_id}")
            .replace("incident-response", "{template_id}")
            .replace("1-0", "{dlq_id}")
            .replace("nightly", "{schedule_id}"),
        )
        for m, p in PROTECTED
    }
    assert documented - OPEN == templated


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_route_but_health_needs_a_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, json={} if method == "POST" else None)
    body = assert_error(response, 401, "ORCH_8001")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Bearer" in body["error_message"]


@pytest.mark.parametrize(
    "header", [bearer("not-a-token"), {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer"}]
)
def test_unknown_or_malformed_credentials_are_401(client: TestClient, header: dict[str, str]) -> None:
    assert_error(client.get("/api/workflows", headers=header), 401, "ORCH_8001")


def test_a_viewer_may_look_but_not_start_cancel_resume_or_run(client: TestClient) -> None:
    started = client.post(
        "/api/workflows", headers=OPERATOR, json={"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    assert client.get(f"/api/workflows/{run_id}", headers=VIEWER).status_code == 200
    denied = [
        client.post(
            "/api/workflows",
            headers=VIEWER,
            json={"template_id": "incident-response", "parameters": {"ci_id": "web-01"}},
        ),
        client.post(f"/api/workflows/{run_id}/cancel", headers=VIEWER),
        client.post(f"/api/workflows/{run_id}/resume", headers=VIEWER),
        client.post("/api/tasks", headers=VIEWER, json={"action": "cmdb.ping"}),
        client.get("/api/audit/export", headers=VIEWER),
        client.get("/api/dlq", headers=VIEWER),
    ]
    for response in denied:
        body = assert_error(response, 403, "ORCH_6001")
        assert "viewer" in body["error_message"]
    assert client.get(f"/api/workflows/{run_id}", headers=VIEWER).json()["status"] == "running"


def test_validation_errors_are_422_in_the_common_shape_listing_the_fields(client: TestClient) -> None:
    response = client.post("/api/tasks", headers=ADMIN, json={"parameters": [], "priority": "urgent"})
    body = assert_error(response, 422, "ORCH_8003")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"action", "parameters", "priority"}
    assert "action" in body["error_message"]


def test_malformed_json_and_bad_query_values_are_422_not_500(client: TestClient) -> None:
    response = client.post("/api/workflows", headers={**ADMIN, "Content-Type": "application/json"}, content=b"{nope")
    body = assert_error(response, 422, "ORCH_8003")
    assert body["errors"] == [
        {
            "field": "body",
            "message": "the request body is not valid JSON: Expecting property name enclosed in double quotes at "
            "character 1; send one JSON object",
            "type": "json_invalid",
        }
    ]
    assert body["error_message"].startswith("Invalid request: body: the request body is not valid JSON")
    for text, given in ((b"[1, 2]", "an array"), (b'"ping"', "a string"), (b"7", "a number")):
        response = client.post("/api/tasks", headers={**ADMIN, "Content-Type": "application/json"}, content=text)
        body = assert_error(response, 422, "ORCH_8003")
        assert body["errors"][0]["message"] == f"the request body must be one JSON object ({{...}}), not {given}"
    response = client.get("/api/workflows?limit=0&offset=-1&status=sleeping", headers=ADMIN)
    body = assert_error(response, 422, "ORCH_8003")
    assert {e["field"] for e in body["errors"]} == {"limit", "offset", "status"}
    assert_error(client.get("/api/dlq/not-an-id", headers=ADMIN), 422, "ORCH_8003")
    assert_error(client.get("/api/audit?since=yesterday", headers=ADMIN), 422, "ORCH_8003")
    for path in ("/api/workflows", "/api/audit", "/api/audit/export"):  # a window that ends before it starts
        body = assert_error(
            client.get(f"{path}?since=2026-12-02T00:00:00Z&until=2026-12-01", headers=ADMIN), 400, "ORCH_8003"
        )
        assert "swap them" in body["error_message"]
    assert client.get("/api/workflows?since=2026-12-01&until=2026-12-02T00:00:00Z", headers=ADMIN).status_code == 200


def test_unknown_paths_and_methods_use_the_common_shape(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here", headers=ADMIN), 404, "ORCH_8004")
    assert client.delete("/api/workflows", headers=ADMIN).json()["error_code"] == "ORCH_8008"


def test_errors_have_one_shape_that_does_not_repeat_itself(client: TestClient) -> None:
    body = assert_error(client.get("/api/workflows/run-missing", headers=ADMIN), 404, "ORCH_3001")
    assert set(body) == {"error_code", "error_message", "timestamp"}


def test_bodies_over_the_limit_are_413_by_content_length(service: Orchestrator) -> None:  # noqa: F811
    service.settings.max_request_bytes = 200
    with TestClient(create_app(service)) as small:
        response = small.post(
            "/api/tasks", headers=ADMIN, json={"action": "cmdb.ping", "parameters": {"pad": "x" * 500}}
        )
        body = assert_error(response, 413, "ORCH_8002")
        assert "200 bytes" in body["error_message"]
        assert small.post("/api/tasks", headers=OPERATOR, json={"action": "cmdb.ping"}).status_code == 202


def test_bodies_over_the_limit_are_413_when_streamed_without_length(service: Orchestrator) -> None:  # noqa: F811
    service.settings.max_request_bytes = 200

    def chunks() -> Iterator[bytes]:
        yield b'{"action": "cmdb.ping", "parameters": {"pad": "'
        for _ in range(10):
            yield b"x" * 50
        yield b'"}}'

    with TestClient(create_app(service)) as small:
        response = small.post("/api/tasks", headers={**ADMIN, "Content-Type": "application/json"}, content=chunks())
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert_error(response, 413, "ORCH_8002")

        def small_chunks() -> Iterator[bytes]:
            yield b'{"action": '
            yield b'"cmdb.ping"}'

        ok = small.post("/api/tasks", headers={**OPERATOR, "Content-Type": "application/json"}, content=small_chunks())
        assert ok.status_code == 202, ok.text


def test_cors_allows_the_configured_origins_with_credentials(client: TestClient) -> None:
    preflight = client.options(
        "/api/chat",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    other = client.get("/api/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    denied = client.get("/api/agents", headers={"Origin": "http://localhost:5173"})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_mcp_mount_needs_a_token_too(client: TestClient) -> None:
    response = client.post(
        "/mcp/",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()  # never an empty 401: the body says what to send
    assert body["error_code"] == "ORCH_8001"
    assert "Authorization: Bearer" in body["error_message"]
    assert body["error"] == "invalid_token"


def test_mcp_mount_says_why_a_wrong_token_is_refused(client: TestClient) -> None:
    response = client.post(
        "/mcp/",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream", "Authorization": "Bearer not-a-token"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    body = response.json()
    assert body["error_code"] == "ORCH_8001"
    assert "ORCH_AUTH__TOKENS" in body["error_message"]
    assert body["error_description"]
