"""The front doors live: uvicorn on a loopback port over the real Redis test db and real agent workers.

httpx (the httpx2 fork that FastMCP and starlette ship with) drives the HTTP API: a task with wait=true, a
workflow followed over SSE, the run, its audit trail. A fastmcp client over streamable HTTP starts a workflow
with wait=true and receives progress notifications.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2 as httpx
import pytest
import uvicorn
from fastmcp import Client

from orchestrator.asgi import create_app
from orchestrator.cli.demo import first_ci_name
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AuthSettings, Settings, TokenGrant

pytestmark = pytest.mark.integration

TOKEN = "live-operator-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def base_url(worker_pool: WorkerPool, settings: Settings) -> Iterator[str]:
    """The API (with MCP at /mcp) served by uvicorn in a thread until the test ends."""
    grants = {TOKEN: TokenGrant(principal="live", role="operator")}
    service = Orchestrator(settings.model_copy(update={"auth": AuthSettings(tokens=grants)}))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn exited at start"
        assert time.monotonic() < deadline, "uvicorn did not start within 20s"
        time.sleep(0.02)  # polling the server's start flag, bounded by the deadline
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def pick_ci(http: httpx.Client) -> str:
    response = http.post(
        "/api/tasks",
        json={
            "action": "cmdb.query",
            "wait": True,
            "timeout_seconds": 30,
            "parameters": {"environment": "Production", "limit": 5},
        },
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed", run
    ci = first_ci_name(run["steps"][0]["result"])
    assert ci, run["steps"][0]["result"]
    return ci


def follow_sse(response: httpx.Response, run_id: str, until: str, deadline: float) -> list[dict[str, Any]]:
    """SSE messages of ``run_id`` until the ``until`` event (each: id, event, envelope)."""
    seen: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"no {until} for {run_id}; saw {[m['event'] for m in seen]}"
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            current[name] = value.strip()
            continue
        if current.get("data"):
            envelope = json.loads(current["data"])
            if envelope["correlation_id"] == run_id:
                seen.append({"id": current.get("id"), "event": current.get("event"), "envelope": envelope})
                if current.get("event") == until:
                    return seen
        current = {}
    raise AssertionError(f"stream ended before {until}")


def test_incident_response_over_http_with_live_events(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=30) as http:
        health = http.get("/api/health").json()
        assert health["connected_agents"] == 6, http.get("/api/agents/status").json()
        ci = pick_ci(http)
        with http.stream("GET", "/api/events", params={"types": "workflow.*"}) as stream:
            assert stream.status_code == 200
            started = http.post(
                "/api/workflows", json={"template_id": "incident-response", "parameters": {"ci_id": ci}}
            )
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            events = follow_sse(stream, run_id, "workflow.completed", time.monotonic() + 60)
        names = [m["event"] for m in events]
        assert names[0] == "workflow.started"
        assert names.count("workflow.step.completed") == 3
        assert all(m["id"] == m["envelope"]["id"] for m in events)

        run = http.get(f"/api/workflows/{run_id}").json()
        assert run["status"] == "completed"
        assert [s["status"] for s in run["steps"]] == ["completed"] * 3
        assert [s["step_id"] for s in run["steps"]] == ["assess-impact", "route-to-agent", "create-ticket"]

        trail = http.get("/api/audit", params={"target": run_id}).json()["entries"]
        assert {"workflow_started", "workflow_completed"} <= {e["event_type"] for e in trail}
        executed = http.get("/api/audit", params={"event_type": "task_executed", "limit": 1000}).json()["entries"]
        assert {e["target"] for e in executed} >= {f"{run_id}/{s['step_id']}" for s in run["steps"]}

        resumed = http.get("/api/events/history", params={"run_id": run_id, "after": events[0]["id"]}).json()
        assert [e["event_id"] for e in resumed["events"]][: len(events) - 1] == [
            m["envelope"]["event_id"] for m in events[1:]
        ]


def test_mcp_over_http_streams_progress_while_waiting(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=30) as http:
        ci = pick_ci(http)
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async def main() -> dict[str, Any]:
        async with Client(f"{base_url}/mcp/", auth=TOKEN) as client:
            names = {tool.name for tool in await client.list_tools()}
            assert {"start_workflow", "get_workflow_status", "route_task"} <= names
            result = await client.call_tool(
                "start_workflow",
                {"template_id": "incident-response", "parameters": {"ci_id": ci}, "wait": True, "timeout_seconds": 60},
                progress_handler=on_progress,
                timeout=90,
            )
            data: dict[str, Any] = result.data
            return data

    final = anyio.run(main)
    assert final["status"] == "completed"
    assert final["created_by"] == "operator:live"
    progress = [p for p, _, _ in reports]
    assert progress == sorted(set(progress))
    assert progress[-1] == 3
    assert any(m and m.startswith("step ") for _, _, m in reports)


def test_mcp_over_http_refuses_a_bad_token(base_url: str) -> None:
    async def main() -> None:
        async with Client(f"{base_url}/mcp/", auth="wrong-token") as client:
            await client.list_tools()

    with pytest.raises(Exception, match=r"401|Unauthorized|error response"):
        anyio.run(main)
