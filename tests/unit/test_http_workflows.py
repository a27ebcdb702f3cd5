"""HTTP workflow runs, single tasks and templates over a service on fakeredis (in-memory broker, no workers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.asgi import create_app
from orchestrator.models.run import RunView
from orchestrator.service import Orchestrator
from tests.unit.test_http_auth import assert_error
from tests.unit.test_http_fixtures import ADMIN, OPERATOR, VIEWER, fake_worker, service  # noqa: F401

INCIDENT = {"template_id": "incident-response", "parameters": {"ci_id": "web-01"}}


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def start(client: TestClient, body: dict[str, Any] | None = None, headers: dict[str, str] = OPERATOR) -> str:
    response = client.post("/api/workflows", headers=headers, json=body or INCIDENT)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def test_start_returns_202_with_the_run_id_once_the_run_is_recorded(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    response = client.post("/api/workflows", headers=OPERATOR, json=INCIDENT)
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"run_id", "status"}
    assert body["status"] == "running"
    assert response.headers["location"] == f"/api/workflows/{body['run_id']}"
    stored = service.get_run(body["run_id"])
    assert stored.template_id == "incident-response"
    assert stored.created_by == "operator:otto"


def test_get_run_returns_the_run_view(client: TestClient) -> None:
    run_id = start(client)
    response = client.get(f"/api/workflows/{run_id}", headers=VIEWER)
    assert response.status_code == 200
    view = RunView.model_validate(response.json())
    assert view.run_id == run_id
    assert [s.step_id for s in view.steps] and all(s.status.value == "pending" for s in view.steps)
    assert view.parameters["ci_id"] == "web-01"


def test_same_idempotency_key_gives_the_same_run(client: TestClient) -> None:
    body = {**INCIDENT, "idempotency_key": "ticket-42"}
    first, second = start(client, body), start(client, body)
    assert first == second
    assert start(client, {**INCIDENT, "idempotency_key": "ticket-43"}) != first
    assert client.get("/api/workflows", headers=VIEWER).json()["total"] == 2


def test_a_key_repeated_with_a_different_request_is_refused_and_starts_nothing(client: TestClient) -> None:
    first = start(client, {**INCIDENT, "idempotency_key": "ticket-44"})
    for changed in (
        {**INCIDENT, "parameters": {"ci_id": "db-02"}},
        {**INCIDENT, "priority": "critical"},
        {"template_id": "cmdb-health-check", "parameters": {}},
    ):
        response = client.post("/api/workflows", headers=OPERATOR, json={**changed, "idempotency_key": "ticket-44"})
        body = assert_error(response, 422, "ORCH_8011")
        assert first in body["error_message"] and "use a new key" in body["error_message"]
    assert client.get("/api/workflows", headers=VIEWER).json()["total"] == 1
    assert start(client, {**INCIDENT, "idempotency_key": "ticket-44"}) == first  # the same request still gets it


def test_an_inline_definition_starts_too(client: TestClient) -> None:
    definition = {
        "name": "two pings",
        "steps": [
            {"step_id": "a", "action": "cmdb.ping"},
            {"step_id": "b", "action": "cmdb.ping", "depends_on": ["a"]},
        ],
    }
    run_id = start(client, {"definition": definition})
    view = client.get(f"/api/workflows/{run_id}", headers=VIEWER).json()
    assert view["name"] == "two pings"
    assert view["template_id"] is None
    assert [s["step_id"] for s in view["steps"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"parameters": {}}, 422, "ORCH_8003"),
        (
            {**INCIDENT, "definition": {"name": "x", "steps": [{"step_id": "a", "action": "cmdb.ping"}]}},
            422,
            "ORCH_8003",
        ),
        ({"template_id": "no-such-template"}, 404, "ORCH_3001"),
        ({"template_id": "incident-response", "parameters": {}}, 422, "ORCH_3006"),
        (
            {
                "definition": {
                    "name": "loop",
                    "steps": [
                        {"step_id": "a", "action": "cmdb.ping", "depends_on": ["b"]},
                        {"step_id": "b", "action": "cmdb.ping", "depends_on": ["a"]},
                    ],
                }
            },
            422,
            "ORCH_3006",
        ),
        ({**INCIDENT, "priority": "urgent"}, 422, "ORCH_8003"),
    ],
)
def test_bad_start_requests_name_what_to_fix(client: TestClient, body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/api/workflows", headers=OPERATOR, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code


def test_list_is_paged_and_filtered(client: TestClient) -> None:
    runs = [start(client) for _ in range(3)]
    client.post(f"/api/workflows/{runs[0]}/cancel", headers=OPERATOR)
    page = client.get("/api/workflows?offset=1&limit=1", headers=VIEWER).json()
    assert (page["total"], page["offset"], page["limit"], len(page["items"])) == (3, 1, 1, 1)
    cancelled = client.get("/api/workflows?status=cancelled", headers=VIEWER).json()
    assert [r["run_id"] for r in cancelled["items"]] == [runs[0]]
    assert client.get("/api/workflows?template_id=other", headers=VIEWER).json()["total"] == 0
    assert client.get("/api/workflows?template_id=incident-response", headers=VIEWER).json()["total"] == 3


def test_cancel_then_illegal_transitions_are_409_orch_3002(client: TestClient) -> None:
    run_id = start(client)
    assert client.post(f"/api/workflows/{run_id}/resume", headers=OPERATOR).json()["error_code"] == "ORCH_3002"
    cancelled = client.post(f"/api/workflows/{run_id}/cancel", headers=OPERATOR)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/workflows/{run_id}/cancel", headers=OPERATOR)
    assert again.status_code == 409
    assert again.json()["error_code"] == "ORCH_3002"
    resumed = client.post(f"/api/workflows/{run_id}/resume", headers=OPERATOR)
    assert resumed.status_code == 200
    assert (resumed.json()["status"], resumed.json()["generation"]) == ("running", 1)


@pytest.mark.parametrize("action", ["", "/cancel", "/resume"])
def test_unknown_runs_are_404(client: TestClient, action: str) -> None:
    method = client.get if not action else client.post
    response = method(f"/api/workflows/run-unknown{action}", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["error_code"] == "ORCH_3001"


def test_a_task_is_a_one_step_run(client: TestClient) -> None:
    response = client.post(
        "/api/tasks", headers=OPERATOR, json={"action": "cmdb.query", "parameters": {"limit": 5}, "priority": "high"}
    )
    assert response.status_code == 202
    view = client.get(f"/api/workflows/{response.json()['run_id']}", headers=VIEWER).json()
    assert [(s["action"], s["agent_id"]) for s in view["steps"]] == [("cmdb.query", "cmdb-agent")]
    assert view["priority"] == "high"
    again = client.post("/api/tasks", headers=OPERATOR, json={"action": "cmdb.ping", "idempotency_key": "k1"})
    same = client.post("/api/tasks", headers=OPERATOR, json={"action": "cmdb.ping", "idempotency_key": "k1"})
    assert again.json()["run_id"] == same.json()["run_id"]
    other = client.post("/api/tasks", headers=OPERATOR, json={"action": "cmdb.query", "idempotency_key": "k1"})
    assert_error(other, 422, "ORCH_8011")  # not the ping's run, as if cmdb.query had been started


def test_a_task_with_wait_returns_200_and_the_finished_run(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    with fake_worker(service, result={"cis": ["web-01"]}):
        response = client.post(
            "/api/tasks", headers=OPERATOR, json={"action": "cmdb.ping", "wait": True, "timeout_seconds": 20}
        )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "completed"
    assert view["steps"][0]["result"] == {"cis": ["web-01"]}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action": "cmdb.nothing"}, 422, "ORCH_7003"),
        ({"action": "cmdb.query", "parameters": {"bogus": 1}}, 422, "ORCH_7003"),
        ({"action": "cmdb.ping", "agent_id": "ghost-agent"}, 404, "ORCH_1001"),
        ({"action": "cmdb.ping", "timeout_seconds": -1}, 422, "ORCH_8003"),
    ],
)
def test_bad_tasks_name_what_to_fix(client: TestClient, body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/api/tasks", headers=OPERATOR, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code


def test_templates_are_listed_and_shown(client: TestClient) -> None:
    listing = client.get("/api/templates", headers=VIEWER).json()
    ids = [t["template_id"] for t in listing["templates"]]
    assert "incident-response" in ids
    assert listing["count"] == len(ids)
    one = client.get("/api/templates/incident-response", headers=VIEWER).json()
    assert one["template_id"] == "incident-response"
    assert {p["name"] for p in one["parameters"]} >= {"ci_id"}
    cmdb_only = client.get("/api/templates?domain=cmdb", headers=VIEWER).json()["templates"]
    assert cmdb_only and all(t["domain"] == "cmdb" for t in cmdb_only)
    missing = client.get("/api/templates/no-such", headers=VIEWER)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "ORCH_3001")
