"""Bad input and failing dependencies at the front door: each case gets its ORCH code, never a plain 500."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fastmcp import Client
from fastmcp.exceptions import ToolError

from orchestrator.http import create_app
from orchestrator.mcp import create_mcp
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.state.event_hub import CLOSED, OVERFLOW, Delivery, EventHub
from tests.servers import free_port
from tests.unit.test_http_fixtures import ADMIN, OPERATOR, TOKENS, VIEWER, service  # noqa: F401

HUGE_ID = "18446744073709551616-0"  # one more than a stream id part can hold


@pytest.fixture
def client(service: Orchestrator) -> Iterator[TestClient]:  # noqa: F811
    with TestClient(create_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error_code"] == code, body
    assert set(body) >= {"error_code", "error_message", "timestamp"}
    assert "detail" not in body  # one shape: nothing repeated (only the chat routes carry detail)
    return body


def post_raw(client: TestClient, url: str, text: str, headers: dict[str, str] = ADMIN) -> Any:
    return client.post(url, content=text.encode(), headers={**headers, "Content-Type": "application/json"})


def test_a_dead_letter_id_beyond_64_bits_and_its_redrive_are_400(client: TestClient) -> None:
    body = error(client.get(f"/api/dlq/{HUGE_ID}", headers=ADMIN), 400, "ORCH_8003")
    assert "2**64" in body["error_message"]
    error(client.post(f"/api/dlq/{HUGE_ID}/redrive", headers=ADMIN), 400, "ORCH_8003")


def test_a_huge_after_and_a_huge_last_event_id_are_400(client: TestClient) -> None:
    error(client.get(f"/api/events/history?after={HUGE_ID}", headers=VIEWER), 400, "ORCH_8003")
    error(client.get("/api/events/history?after=99999999999999999999999-0", headers=VIEWER), 400, "ORCH_8003")
    error(client.get("/api/events", headers={**VIEWER, "Last-Event-ID": HUGE_ID}), 400, "ORCH_8003")


def test_a_lone_surrogate_in_a_template_id_or_parameters_is_400(client: TestClient) -> None:
    body = error(post_raw(client, "/api/workflows", '{"template_id": "\\ud800"}'), 400, "ORCH_8003")
    assert "surrogate" in body["error_message"]
    text = '{"template_id": "cmdb-health-check", "parameters": {"x": "a\\ud800"}}'
    error(post_raw(client, "/api/workflows", text), 400, "ORCH_8003")
    error(post_raw(client, "/api/tasks", '{"action": "cmdb.query", "parameters": {"q": "\\udfff"}}'), 400, "ORCH_8003")
    error(client.get("/api/templates/%ED%A0%80", headers=ADMIN), 400, "ORCH_8003")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_parameters_or_a_payload_are_400_and_nothing_is_stored(
    client: TestClient,
    service: Orchestrator,  # noqa: F811
    number: str,
) -> None:
    """Python's parser takes them; a stored spec holding them is unreadable to strict parsers, and a message's
    payload lost them (they became null)."""
    update = f'{{"action": "cmdb.update", "parameters": {{"ci_id": "web-01", "fields": {{"x": {number}}}}}}}'
    body = error(post_raw(client, "/api/tasks", update), 400, "ORCH_8003")
    assert "NaN or Infinity" in body["error_message"] and "cmdb.update" in body["error_message"]
    step = f'{{"step_id": "u", "action": "cmdb.update", "parameters": {{"ci_id": "a", "fields": {{"n": [{number}]}}}}}}'
    inline = f'{{"definition": {{"name": "n", "steps": [{step}]}}}}'
    error(post_raw(client, "/api/workflows", inline), 400, "ORCH_8003")
    message = f'{{"sender": "a", "recipient": "cmdb-agent", "message_type": "note", "payload": {{"v": {number}}}}}'
    error(post_raw(client, "/api/messages", message), 400, "ORCH_8003")
    assert client.get("/api/workflows", headers=VIEWER).json()["total"] == 0
    assert client.get("/api/messages/cmdb-agent", headers=VIEWER).json()["count"] == 0


def test_a_nan_time_limit_or_expiry_is_422_saying_it_must_be_finite(client: TestClient) -> None:
    """Not "should be less than or equal to 86400", which a NaN is not either."""
    for url, text in (
        ("/api/tasks", '{"action": "cmdb.ping", "timeout_seconds": NaN}'),
        (
            "/api/workflows",
            '{"definition": {"name": "n", "steps": [{"step_id": "a", "action": "cmdb.ping", "timeout_seconds": NaN}]}}',
        ),
        ("/api/messages", '{"sender": "a", "recipient": "cmdb-agent", "message_type": "n", "expires_in_seconds": NaN}'),
    ):
        body = error(post_raw(client, url, text), 422, "ORCH_8003")
        assert [e["type"] for e in body["errors"]] == ["finite_number"], body


def test_a_body_too_deep_for_the_json_parser_is_400_saying_so(client: TestClient) -> None:
    """200,000 levels: Python's parser gives up (RecursionError) before any limit of ours can look at it."""
    deep = "[" * 200_000 + "]" * 200_000
    body = error(
        post_raw(client, "/api/tasks", f'{{"action": "cmdb.ping", "parameters": {{"a": {deep}}}}}'), 400, "ORCH_8003"
    )
    assert body["error_message"].startswith("the request body is nested too deeply to parse")


def test_an_expiry_of_1e300_seconds_is_422_with_the_field(client: TestClient) -> None:
    text = '{"sender": "a", "recipient": "cmdb-agent", "message_type": "note", "expires_in_seconds": 1e300}'
    body = error(post_raw(client, "/api/messages", text), 422, "ORCH_8003")
    assert [e["field"] for e in body["errors"]] == ["expires_in_seconds"]


def test_a_500_kb_ci_id_is_refused_and_not_echoed(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    huge = "c" * 500_000
    response = client.post("/api/tasks", headers=ADMIN, json={"action": "cmdb.query", "parameters": {"ci_id": huge}})
    body = error(response, 413, "ORCH_8002")
    assert len(response.content) < 2000
    assert service.runs.list()[1] == 0  # nothing stored
    error(client.get(f"/api/workflows/{'r' * 300}", headers=ADMIN), 400, "ORCH_8003")
    error(client.get(f"/api/workflows?template_id={'t' * 300}", headers=ADMIN), 400, "ORCH_8003")
    too_long = client.post("/api/workflows", headers=ADMIN, json={"template_id": "t" * 300})
    assert "limit is 256" in error(too_long, 400, "ORCH_8003")["error_message"]
    assert len(body["error_message"]) < 500


def test_wait_timeouts_above_the_cap_are_refused(client: TestClient, service: Orchestrator) -> None:  # noqa: F811
    response = client.post(
        "/api/tasks", headers=OPERATOR, json={"action": "cmdb.query", "wait": True, "timeout_seconds": 86_400}
    )
    assert "ORCH_FRONTDOOR__WAIT_MAX_SECONDS" in error(response, 400, "ORCH_8003")["error_message"]
    assert service.runs.list()[1] == 0

    async def call() -> None:
        async with Client(create_mcp(service)) as mcp:
            with pytest.raises(ToolError, match=r"^\[ORCH_8003\].*WAIT_MAX"):
                await mcp.call_tool(
                    "start_workflow", {"template_id": "cmdb-health-check", "wait": True, "timeout_seconds": 3600}
                )

    asyncio.run(call())


def test_405_and_clarification_errors_use_orch_codes(client: TestClient) -> None:
    error(client.delete("/api/workflows", headers=ADMIN), 405, "ORCH_8008")
    response = client.post(
        "/api/chat/clarify", headers=OPERATOR, json={"pending_message_token": "0" * 32, "clarification_answer": "x"}
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["error_code"], body["legacy_code"]) == ("ORCH_8101", "CLARIFICATION_TOKEN_NOT_FOUND")
    assert body["detail"]["error_code"] == "ORCH_8101"  # the chat UI reads detail.error_code


def test_a_second_stream_over_the_per_principal_cap_is_429(service: Orchestrator) -> None:  # noqa: F811
    service.settings.frontdoor.max_streams_per_principal = 1
    with TestClient(create_app(service)) as client, client.stream("GET", "/api/events", headers=VIEWER) as first:
        assert first.status_code == 200
        error(client.get("/api/events", headers=VIEWER), 429, "ORCH_8006")
        with client.stream("GET", "/api/events", headers=ADMIN) as other_principal:
            assert other_principal.status_code == 200


def test_with_redis_down_health_is_a_prompt_503_and_routes_say_orch_8009() -> None:
    settings = Settings(auth={"tokens": TOKENS}, redis={"url": f"redis://127.0.0.1:{free_port()}/0", "retries": 0})
    down = Orchestrator(settings)
    with TestClient(create_app(down), raise_server_exceptions=False) as client:
        started = time.monotonic()
        health = client.get("/api/health")
        assert time.monotonic() - started < 2.0
        assert health.status_code == 503, health.text
        assert (health.json()["status"], health.json()["error_code"]) == ("unhealthy", "ORCH_8009")
        assert client.head("/api/health").status_code == 503
        error(client.get("/api/workflows", headers=ADMIN), 503, "ORCH_8009")
        error(client.get("/api/dlq", headers=ADMIN), 503, "ORCH_8009")


def test_a_slow_subscriber_gets_overflow_and_is_dropped_and_close_ends_everyone() -> None:
    async def scenario() -> None:
        hub = EventHub("redis://unused", queue_events=2)
        slow = hub.subscribe(size=2)
        other = hub.subscribe(run_id="run-1")
        for n in range(3):
            hub._fan_out(f"1-{n}", f'{{"event_type":"x.y","correlation_id":"run-{n}"}}')
        items = await slow.drain(1)
        assert [i.stream_id for i in items if isinstance(i, Delivery)] == ["1-0", "1-1"]
        assert items[-1] == OVERFLOW
        assert [i.stream_id for i in await other.drain(1) if isinstance(i, Delivery)] == ["1-1"]
        hub.close()
        assert await other.drain(1) == [CLOSED]
        hub.unsubscribe(slow)
        hub.unsubscribe(other)
        assert hub.subscribers == 0

    asyncio.run(scenario())


def test_waits_end_at_once_on_shutdown(service: Orchestrator) -> None:  # noqa: F811
    from orchestrator.errors import ShuttingDownError
    from tests.unit.test_http_fixtures import ADMIN as _  # noqa: F401

    async def scenario() -> float:
        view = await asyncio.to_thread(
            lambda: service.execute_task(service_principal(), action="cmdb.query", parameters={})
        )
        waiter = asyncio.create_task(service.wait_for_run_async(view.run_id, timeout=60))
        deadline = time.monotonic() + 5
        while service.hub.subscribers == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)  # polling the hub's subscriber count, bounded by the deadline
        started = time.monotonic()
        service.shutdown()
        with pytest.raises(ShuttingDownError):
            await waiter
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def service_principal() -> Any:
    from orchestrator.security.principals import Principal

    return Principal("ada", "admin")
