"""The MCP bridge against a REAL FastMCP server on loopback (uvicorn in a thread; no Redis needed).

Agents are pointed at the server through ``ORCH_AGENTS__<AGENT>__MCP_URL`` / ``__MCP_TOKEN`` and driven through
``execute_action``, so the catalog's tool mapping, argument building and error translation are all exercised.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

from orchestrator.errors import RetryableTaskError, TaskExecutionError, TaskInvalidError, TaskTimeoutError
from orchestrator.settings import reset_settings
from workers import bridge
from workers.actions import execute_action
from workers.context import ActionContext

TOKEN = "bridge-test-token"


@dataclass
class ServerLog:
    """What the server saw: TCP connections, JSON-RPC methods, and write calls per idempotency key."""

    connections: set[tuple[str, int]] = field(default_factory=set)
    methods: Counter[str] = field(default_factory=Counter)
    calls_per_key: Counter[str] = field(default_factory=Counter)
    search_args: list[dict[str, Any]] = field(default_factory=list)
    pipeline_requests: list[str] = field(default_factory=list)

    @property
    def sessions(self) -> int:
        """Session handshakes: ``server/discover`` (modern protocol) or ``initialize`` (legacy)."""
        return self.methods["server/discover"] + self.methods["initialize"]


def build_server(log: ServerLog) -> FastMCP:
    mcp = FastMCP("fake-cmdb-agent", auth=StaticTokenVerifier(tokens={TOKEN: {"client_id": "orch", "scopes": []}}))

    @mcp.tool(name="search_configuration_items")
    def search(
        ci_type: str | None = None, environment: str | None = None, query: str | None = None, limit: int = 10
    ) -> dict[str, Any]:
        log.search_args.append({"ci_type": ci_type, "environment": environment, "query": query, "limit": limit})
        name = (query or "nameLIKEweb-prod-01").removeprefix("nameLIKE")
        return {"count": 1, "items": [{"name": name, "sys_class_name": ci_type}]}

    @mcp.tool(name="create_remediation_request")
    def create_remediation_request(
        idempotency_key: str,
        remediation_type: str,
        remediation_mode: str,
        issue_summary: str,
        affected_cis: list[dict[str, Any]],
        proposed_action: str,
        risk_level: str = "low",
        estimated_impact: str = "",
    ) -> dict[str, Any]:
        log.calls_per_key[idempotency_key] += 1
        return {"number": f"CHG{len(log.calls_per_key):07d}", "calls_for_key": log.calls_per_key[idempotency_key]}

    @mcp.tool(name="analyze_configuration_item_impact")
    def impact(ci_sys_id: str) -> dict[str, Any]:
        raise ToolError(f"CI '{ci_sys_id}' not found in the CMDB")

    @mcp.tool(name="get_cmdb_health_metrics")
    async def slow_health(ci_type: str = "server") -> dict[str, Any]:
        await asyncio.sleep(2)
        return {"health_score": 90}

    @mcp.tool(name="execute_pipeline")
    def pipeline(user_request: str) -> str:
        log.pipeline_requests.append(user_request)
        return "plain text plan" if "plain" in user_request else '{"success": true, "outcome": "planned"}'

    return mcp


def _recording(app: Any, log: ServerLog) -> Any:
    """ASGI wrapper: note each TCP peer and the JSON-RPC method of each request body (lifespan passes through)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope.get("client"):
            log.connections.add(tuple(scope["client"]))
        body = bytearray()

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body") and body:
                    payload = json.loads(bytes(body))
                    for item in payload if isinstance(payload, list) else [payload]:
                        if isinstance(item, dict) and "method" in item:
                            log.methods[item["method"]] += 1
            return message

        await app(scope, recording_receive, send)

    return wrapped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    log: ServerLog


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    log = ServerLog()
    app = build_server(log).http_app(path="/mcp")
    port = _free_port()
    config = uvicorn.Config(
        _recording(app, log),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    uv_server = uvicorn.Server(config)
    thread = threading.Thread(target=uv_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "MCP test server did not start"
        time.sleep(0.02)
    yield RunningServer(f"http://127.0.0.1:{port}/mcp", log)
    bridge.shutdown()
    uv_server.should_exit = True
    thread.join(10)


@pytest.fixture
def agents_on(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    for agent in ("CMDB_AGENT", "CSA_AGENT"):
        monkeypatch.setenv(f"ORCH_AGENTS__{agent}__MCP_URL", server.url)
        monkeypatch.setenv(f"ORCH_AGENTS__{agent}__MCP_TOKEN", TOKEN)
    reset_settings()
    yield server
    reset_settings()


def _ctx(action: str, agent: str, params: dict[str, Any], *, step: str = "s1", timeout: float = 10.0) -> ActionContext:
    return ActionContext(
        run_id="run-bridge",
        step_id=step,
        agent_id=agent,
        action=action,
        params=params,
        idempotency_key=f"run-bridge:{step}",
        timeout_seconds=timeout,
    )


def test_result_comes_back_in_the_tools_own_arguments_and_none_params_are_dropped(agents_on: RunningServer) -> None:
    result = execute_action(_ctx("cmdb.query", "cmdb-agent", {"name": "db-prod-03", "ci_class": None}))
    assert result == {"count": 1, "items": [{"name": "db-prod-03", "sys_class_name": None}]}
    assert agents_on.log.search_args[-1] == {
        "ci_type": None,
        "environment": None,
        "query": "nameLIKEdb-prod-03",
        "limit": 50,
    }


def test_idempotency_key_is_sent_only_where_declared_and_reaches_the_tool(agents_on: RunningServer) -> None:
    first = execute_action(_ctx("csa.run_remediation", "csa-agent", {"summary": "fix"}, step="ticket"))
    again = execute_action(_ctx("csa.run_remediation", "csa-agent", {"summary": "fix"}, step="ticket"))
    assert first["calls_for_key"] == 1 and again["calls_for_key"] == 2  # the server can de-duplicate by it
    assert agents_on.log.calls_per_key["run-bridge:ticket"] == 2


def test_tool_error_maps_to_execution_error_with_the_tools_message(agents_on: RunningServer) -> None:
    with pytest.raises(TaskExecutionError) as caught:
        execute_action(_ctx("cmdb.map_relationships", "cmdb-agent", {"ci_id": "ghost-01"}))
    assert caught.value.code == "ORCH_7001"
    assert not caught.value.retryable
    assert "CI 'ghost-01' not found in the CMDB" in caught.value.message


def test_unknown_tool_maps_to_invalid(agents_on: RunningServer) -> None:
    with pytest.raises(TaskInvalidError) as caught:
        execute_action(_ctx("cmdb.stale", "cmdb-agent", {}))
    assert caught.value.code == "ORCH_7003"
    assert "has no tool 'find_stale_configuration_items'" in caught.value.message


def test_an_action_no_sibling_offers_is_refused_not_run_on_sample_data(agents_on: RunningServer) -> None:
    with pytest.raises(TaskInvalidError) as caught:
        execute_action(_ctx("cmdb.update", "cmdb-agent", {"ci_id": "web-prod-01", "fields": {"owner": "x"}}))
    assert caught.value.code == "ORCH_7003" and "runs only on the built-in agent" in caught.value.message
    assert execute_action(_ctx("cmdb.ping", "cmdb-agent", {})) == {"pong": True, "action": "cmdb.ping"}


def test_timeout_maps_to_orch_7002_and_the_session_survives(agents_on: RunningServer) -> None:
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as caught:
        execute_action(_ctx("cmdb.health_audit", "cmdb-agent", {}, timeout=0.3))
    assert caught.value.code == "ORCH_7002"
    assert time.monotonic() - started < 1.5
    assert execute_action(_ctx("cmdb.query", "cmdb-agent", {"name": "after-timeout"}))["count"] == 1


def test_text_results_come_back_wrapped_and_json_text_as_the_object_it_is(agents_on: RunningServer) -> None:
    result = execute_action(_ctx("csa.plan_fulfillment", "csa-agent", {"request": "a plain request"}))
    assert result == {"result": "plain text plan"}
    result = execute_action(_ctx("csa.plan_fulfillment", "csa-agent", {"request": "patch web-prod-01"}))
    assert result == {"success": True, "outcome": "planned"}
    assert agents_on.log.pipeline_requests[-1] == "patch web-prod-01"


def test_connection_is_reused_across_calls(agents_on: RunningServer) -> None:
    bridge.shutdown()  # start from a fresh runtime: no session yet
    log = agents_on.log
    sessions_before, calls_before = log.sessions, log.methods["tools/call"]
    execute_action(_ctx("cmdb.query", "cmdb-agent", {"name": "warm-up"}))
    connections = len(log.connections)
    for n in range(5):
        execute_action(_ctx("cmdb.query", "cmdb-agent", {"name": f"again-{n}"}))
        execute_action(_ctx("csa.plan_fulfillment", "csa-agent", {"request": "x"}))  # same URL and token: same session
    assert bridge.sessions_opened() == 1
    assert log.sessions - sessions_before == 1  # one handshake for eleven calls
    assert len(log.connections) == connections  # no new TCP connection after the first call
    assert log.methods["tools/call"] - calls_before == 11


def test_wrong_token_is_not_retryable(agents_on: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_AGENTS__CMDB_AGENT__MCP_TOKEN", "wrong")
    reset_settings()
    with pytest.raises(TaskExecutionError) as caught:
        execute_action(_ctx("cmdb.query", "cmdb-agent", {}))
    assert not caught.value.retryable
    assert "wrong" not in caught.value.message  # never echo a credential


def test_refused_connection_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_AGENTS__CMDB_AGENT__MCP_URL", f"http://127.0.0.1:{_free_port()}/mcp")
    reset_settings()
    try:
        with pytest.raises(RetryableTaskError) as caught:
            execute_action(_ctx("cmdb.query", "cmdb-agent", {}))
    finally:
        reset_settings()
    assert caught.value.code == "ORCH_7006"
    assert caught.value.retryable


def test_probe_reports_reachability_tools_and_latency(server: RunningServer) -> None:
    healthy = bridge.probe(server.url, TOKEN, timeout=5)
    assert healthy["reachable"] is True
    assert healthy["tools"] == 5
    assert healthy["tool_names"] == sorted(
        [
            "search_configuration_items",
            "create_remediation_request",
            "analyze_configuration_item_impact",
            "get_cmdb_health_metrics",
            "execute_pipeline",
        ]
    )
    assert healthy["latency_ms"] > 0 and healthy["error"] is None
    refused = bridge.probe(f"http://127.0.0.1:{_free_port()}/mcp", timeout=5)
    assert refused["reachable"] is False and refused["tools"] == 0 and refused["error"]
    unauthorised = bridge.probe(server.url, "wrong", timeout=5)
    assert unauthorised["reachable"] is False and "credentials" in unauthorised["error"]
