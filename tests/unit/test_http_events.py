"""Events over HTTP: the stored history and live Server-Sent Events resumable with ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orchestrator.asgi import create_app
from orchestrator.models.events import Event
from orchestrator.service import Orchestrator
from tests.unit.test_http_fixtures import VIEWER, service  # noqa: F401


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service)) as test_client:
        yield test_client


def publish(service: Orchestrator, *specs: tuple[str, str]) -> list[Event]:  # noqa: F811
    return [service.events.emit(event_type, {"n": i}, run_id=run_id) for i, (event_type, run_id) in enumerate(specs)]


def read_sse(client: TestClient, url: str, count: int, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The first ``count`` SSE messages (id, event, data) from ``url``; closing the stream ends the request."""
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", url, headers={**VIEWER, **(headers or {})}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue  # keep-alive comment
            if not line:
                if current:
                    messages.append(current)
                    current = {}
                if len(messages) == count:
                    break
                continue
            field, _, value = line.partition(":")
            current[field] = value.strip()
    return messages


def test_history_is_oldest_first_filtered_and_resumable(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    events = publish(
        service,
        ("workflow.started", "run-a"),
        ("workflow.step.completed", "run-a"),
        ("workflow.started", "run-b"),
        ("workflow.completed", "run-a"),
    )
    everything = client.get("/api/events/history", headers=VIEWER).json()
    assert [e["event_id"] for e in everything["events"]] == [e.event_id for e in events]
    assert everything["last_id"] == everything["events"][-1]["id"]
    run_a = client.get(
        "/api/events/history?run_id=run-a&types=workflow.started,workflow.completed", headers=VIEWER
    ).json()
    assert [e["event_type"] for e in run_a["events"]] == ["workflow.started", "workflow.completed"]
    first_id = everything["events"][0]["id"]
    after = client.get(f"/api/events/history?after={first_id}&limit=2", headers=VIEWER).json()
    assert [e["event_id"] for e in after["events"]] == [events[1].event_id, events[2].event_id]
    prefixed = client.get("/api/events/history?types=workflow.step.*", headers=VIEWER).json()
    assert [e["event_type"] for e in prefixed["events"]] == ["workflow.step.completed"]


def test_history_rejects_a_malformed_event_id(client: TestClient) -> None:
    response = client.get("/api/events/history?after=yesterday", headers=VIEWER)
    assert response.status_code == 400
    assert response.json()["error_code"] == "ORCH_8003"


def test_sse_resumes_after_last_event_id_without_loss(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    events = publish(
        service, ("workflow.started", "run-a"), ("workflow.step.completed", "run-a"), ("workflow.completed", "run-a")
    )
    first_id = client.get("/api/events/history", headers=VIEWER).json()["events"][0]["id"]
    messages = read_sse(client, "/api/events", 2, headers={"Last-Event-ID": first_id})
    assert [m["event"] for m in messages] == ["workflow.step.completed", "workflow.completed"]
    envelopes = [json.loads(m["data"]) for m in messages]
    assert [e["event_id"] for e in envelopes] == [events[1].event_id, events[2].event_id]
    assert [m["id"] for m in messages] == [e["id"] for e in envelopes]
    assert envelopes[0]["correlation_id"] == "run-a"
    assert {"event_id", "event_type", "source", "correlation_id", "payload", "timestamp"} <= set(envelopes[0])
    by_query = read_sse(client, f"/api/events?last_event_id={messages[0]['id']}", 1)
    assert by_query[0]["id"] == messages[1]["id"]


def test_sse_filters_by_run_and_type(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    publish(
        service,
        ("workflow.started", "run-a"),
        ("workflow.started", "run-b"),
        ("workflow.step.completed", "run-b"),
        ("workflow.completed", "run-b"),
    )
    messages = read_sse(
        client, "/api/events?run_id=run-b&types=workflow.step.completed,workflow.completed&last_event_id=0-0", 2
    )
    assert [m["event"] for m in messages] == ["workflow.step.completed", "workflow.completed"]
    assert {json.loads(m["data"])["correlation_id"] for m in messages} == {"run-b"}


def test_sse_without_last_event_id_is_live_only(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    publish(service, ("workflow.started", "old-run"))
    with client.stream("GET", "/api/events", headers=VIEWER) as response:
        assert response.status_code == 200
        fresh = service.events.emit("workflow.started", {}, run_id="new-run")
        lines = response.iter_lines()
        data = next(line for line in lines if line.startswith("data:"))
    assert json.loads(data.removeprefix("data:").strip())["event_id"] == fresh.event_id


def test_sse_rejects_a_malformed_last_event_id(client: TestClient) -> None:
    response = client.get("/api/events", headers={**VIEWER, "Last-Event-ID": "not-an-id"})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["error_message"]
