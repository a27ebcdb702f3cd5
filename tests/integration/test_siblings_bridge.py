"""The bridge against the fixture sibling servers over real streamable HTTP (uvicorn on loopback; no Redis).

Every mapped action is sent the way a worker sends it (``execute_action``) and must be accepted by the
sibling as its real schema says; errors the siblings report inside normal replies fail the call with the
server's message (retryable when passing); a bad argument is refused before anything is sent; a sibling that
restarts (and so answers the old session "Session not found", as fastmcp 2.x does) is reached again on a
new session without failing the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.catalog import ACTIONS
from orchestrator.errors import RetryableTaskError, TaskExecutionError, TaskInvalidError
from orchestrator.settings import reset_settings
from orchestrator.state.agents import required_tools
from tests.siblings import AGENT_SERVERS, SERVER_FACTORIES, Recorder, SiblingHTTP
from tests.unit.test_sibling_calls import CALLS, EARLIER
from workers import bridge
from workers.actions import execute_action
from workers.context import ActionContext


class Siblings:
    def __init__(self) -> None:
        self.recorders = {agent: Recorder() for agent in AGENT_SERVERS}
        self.http = {
            agent: SiblingHTTP(lambda a=agent: SERVER_FACTORIES[a](self.recorders[a])).start()
            for agent in AGENT_SERVERS
        }

    def stop(self) -> None:
        for server in self.http.values():
            server.stop()


@pytest.fixture(scope="module")
def siblings() -> Iterator[Siblings]:
    running = Siblings()
    try:
        yield running
    finally:
        bridge.shutdown()
        running.stop()


@pytest.fixture
def bridged(siblings: Siblings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Siblings]:
    for agent, server in siblings.http.items():
        monkeypatch.setenv(f"ORCH_AGENTS__{agent.upper().replace('-', '_')}__MCP_URL", server.url)
    reset_settings()
    for recorder in siblings.recorders.values():
        recorder.fail_next({}, times=0)
    yield siblings
    reset_settings()


def run(action: str, params: dict[str, Any], *, step: str = "s1") -> dict[str, Any]:
    ctx = ActionContext(
        run_id="run-siblings",
        step_id=step,
        agent_id=ACTIONS[action].agent_id,
        action=action,
        params=params,
        idempotency_key=f"run-siblings:{step}",
        timeout_seconds=10,
        earlier_results=lambda: EARLIER,
    )
    return execute_action(ctx)


@pytest.mark.parametrize(
    ("action", "params", "tool", "arguments"), CALLS, ids=[f"{c[0]}-{n}" for n, c in enumerate(CALLS)]
)
def test_every_mapped_action_is_accepted_by_its_sibling_over_http(
    bridged: Siblings, action: str, params: dict[str, Any], tool: str, arguments: dict[str, Any]
) -> None:
    recorder = bridged.recorders[ACTIONS[action].agent_id]
    before = len(recorder.calls)
    result = run(action, params)
    assert isinstance(result, dict) and result
    assert len(recorder.calls) == before + 1
    called, received = recorder.calls[-1]
    assert called == tool
    assert {k: v for k, v in received.items() if k in arguments} == arguments


DISCOVERY_RATE_LIMITED = {
    "success": False,
    "data": None,
    "message": "ServiceNow rate limit exceeded; retry after 30 s",
    "action": "list",
    "error": "RATE_LIMIT_ERROR",
}


def test_a_discovery_failure_reported_in_the_reply_is_a_retryable_failure(bridged: Siblings) -> None:
    bridged.recorders["discovery-agent"].fail_next(DISCOVERY_RATE_LIMITED)
    with pytest.raises(RetryableTaskError) as caught:
        run("discovery.status", {})
    assert "ServiceNow rate limit exceeded" in caught.value.message and caught.value.code == "ORCH_7006"
    assert caught.value.details["server_error_code"] == "RATE_LIMIT_ERROR"
    assert run("discovery.status", {})["success"] is True  # the next call goes through


def test_an_asset_error_reply_fails_the_call_with_the_servers_message(bridged: Siblings) -> None:
    bridged.recorders["asset-agent"].fail_next({"error": "Invalid table alm_hardware", "error_code": "SN_QUERY_ERROR"})
    with pytest.raises(TaskExecutionError) as caught:
        run("asset.query", {})
    assert not caught.value.retryable
    assert "Invalid table alm_hardware" in caught.value.message and caught.value.code == "ORCH_7001"


def test_an_audit_whose_checks_errored_is_a_failure_not_a_result(bridged: Siblings) -> None:
    from tests.siblings import audit_result

    bridged.recorders["itom-auditor"].fail_next(audit_result("full", errors=3))
    with pytest.raises(RetryableTaskError) as caught:  # "Connection refused" on the auditor's side: passing
        run("audit.compliance", {"scope": "full"})
    assert "3 of 4 audit checks ended in error" in caught.value.message


def test_a_bad_argument_is_refused_before_anything_is_sent(bridged: Siblings) -> None:
    recorder = bridged.recorders["discovery-agent"]
    before = len(recorder.calls)
    with pytest.raises(TaskInvalidError) as caught:
        run("discovery.status", {"tool_args": {"scan_state": "Error"}})
    assert "MCP tool 'get_discovery_status' takes no argument 'scan_state'" in caught.value.message
    assert "date_from" in caught.value.message  # what the tool does declare
    with pytest.raises(TaskInvalidError, match="argument 'limit' must be integer"):
        run("discovery.status", {"tool_args": {"limit": "all"}})
    assert len(recorder.calls) == before
    run("discovery.status", {"tool_args": {"state": "Error"}})
    assert recorder.last("get_discovery_status")["state"] == "Error"  # declared extras go through


def test_a_restarted_sibling_is_reached_on_a_new_session(bridged: Siblings) -> None:
    server = bridged.http["discovery-agent"]
    assert run("discovery.schedule", {})["success"] is True
    recovered = bridge.sessions_recovered()
    server.restart()
    assert run("discovery.schedule", {"active_only": True})["success"] is True
    assert server.sessions is not None and server.sessions.refused >= 1  # the old session was refused
    assert bridge.sessions_recovered() == recovered + 1
    assert run("discovery.schedule", {})["success"] is True  # and the new session keeps working
    assert bridge.sessions_recovered() == recovered + 1


def test_a_sibling_that_keeps_losing_sessions_fails_the_call_as_retryable(bridged: Siblings) -> None:
    server = bridged.http["asset-agent"]
    assert server.sessions is not None
    run("asset.reconcile", {})
    server.sessions.forget_every_session = True
    try:
        with pytest.raises(RetryableTaskError, match="lost a brand-new session too"):
            run("asset.reconcile", {})
    finally:
        server.sessions.forget_every_session = False
    run("asset.reconcile", {})


def test_the_probe_lists_every_tool_the_catalog_maps(bridged: Siblings) -> None:
    for agent, server in bridged.http.items():
        health = bridge.probe(server.url, timeout=5)
        assert health["reachable"] is True, agent
        assert set(required_tools(agent)) <= set(health["tool_names"]), agent


def test_an_action_no_sibling_offers_is_refused_for_a_bridged_agent(bridged: Siblings) -> None:
    with pytest.raises(TaskInvalidError, match="runs only on the built-in agent"):
        run("csa.list_catalog", {})
