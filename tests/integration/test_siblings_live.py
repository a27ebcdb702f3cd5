"""Real agent workers bridged to fixture sibling servers: a failure the sibling reports inside its reply fails
the step (and is retried when passing), a sibling restarted between steps is reached again, and agent health
names the mapped tools a sibling lacks and shows the agent degraded while its calls fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastmcp import FastMCP

from orchestrator.models.common import RunStatus
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.conftest import DB_SIBLINGS, WORKER_ENV, _redis_or_skip, db_url
from tests.integration.helpers import definition, run_and_wait, step, uid, wait_until
from tests.siblings import Recorder, SiblingHTTP, auditor_server, discovery_server

pytestmark = pytest.mark.integration

RATE_LIMITED = {
    "success": False,
    "data": None,
    "message": "ServiceNow rate limit exceeded; retry after 30 s",
    "action": "list",
    "error": "RATE_LIMIT_ERROR",
}


AUDITOR_TOOLS_MISSING = {"audit_assets", "audit_cmdb", "compliance_report", "compliance_rules"}


def partial_auditor(recorder: Recorder) -> FastMCP:
    """An auditor that lacks some of its tools (an older release, say)."""
    return auditor_server(recorder).disable(names=AUDITOR_TOOLS_MISSING, components={"tool"})


@dataclass
class Bridged:
    orch: Orchestrator
    discovery: SiblingHTTP
    recorder: Recorder


@pytest.fixture(scope="module")
def bridged(redis_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridged]:
    url = db_url(redis_base, DB_SIBLINGS)
    _redis_or_skip(url)
    recorder = Recorder()
    discovery = SiblingHTTP(lambda: discovery_server(recorder)).start()
    auditor = SiblingHTTP(lambda: partial_auditor(Recorder())).start()
    data_dir: Path = tmp_path_factory.mktemp("siblings-live")
    env = {
        **WORKER_ENV,
        "ORCH_DATA_DIR": str(data_dir),
        "ORCH_AGENTS__DISCOVERY_AGENT__MCP_URL": discovery.url,
        "ORCH_AGENTS__ITOM_AUDITOR__MCP_URL": auditor.url,
    }
    pool = WorkerPool(url)
    pool.start(["discovery-agent", "itom-auditor"], extra_env=env, quiet=os.environ.get("ORCH_TEST_WORKER_LOGS") != "1")
    try:
        pool.wait_ready(timeout=90)
        settings = Settings(
            redis={"url": url},
            data_dir=data_dir,
            agents={"discovery-agent": {"mcp_url": discovery.url}, "itom-auditor": {"mcp_url": auditor.url}},
        )
        yield Bridged(Orchestrator(settings), discovery, recorder)
    finally:
        pool.stop()
        discovery.stop()
        auditor.stop()


def status_step(**extra: Any) -> dict[str, Any]:
    return definition(step(uid("status"), "discovery.status", **extra))


def test_a_passing_failure_in_the_reply_is_retried_and_the_step_completes(bridged: Bridged) -> None:
    bridged.recorder.fail_next(RATE_LIMITED, times=1)
    view = run_and_wait(bridged.orch, status_step(on_failure="retry", max_retries=2))
    assert view.status == RunStatus.COMPLETED, view.error
    assert view.steps[0].attempts == 2
    assert view.steps[0].result["success"] is True


def test_a_failure_in_the_reply_fails_the_step_with_the_servers_message(bridged: Bridged) -> None:
    invalid = {"success": False, "message": "Invalid state filter: 'Exploded'", "error": "VALIDATION_ERROR"}
    bridged.recorder.fail_next(invalid, times=1)
    view = run_and_wait(bridged.orch, status_step())
    assert view.status == RunStatus.FAILED
    error = view.steps[0].error
    assert error is not None and error.code == "ORCH_7001"
    assert "Invalid state filter: 'Exploded'" in error.message
    assert error.details.get("server_error_code") == "VALIDATION_ERROR"


def test_a_restarted_sibling_is_reached_again_by_the_next_step(bridged: Bridged) -> None:
    assert run_and_wait(bridged.orch, status_step()).status == RunStatus.COMPLETED
    bridged.discovery.restart()
    view = run_and_wait(bridged.orch, status_step())
    assert view.status == RunStatus.COMPLETED, view.error
    assert bridged.discovery.sessions is not None and bridged.discovery.sessions.refused >= 1


def test_health_names_the_tools_the_auditors_server_lacks(bridged: Bridged) -> None:
    def probed() -> dict[str, Any] | None:
        beat = bridged.orch.agents.heartbeats().get("itom-auditor")
        return beat if beat and (beat.get("mcp") or {}).get("tool_names") else None

    beat = wait_until(probed, timeout=30, what="the auditor's heartbeat with its MCP tools")
    record = bridged.orch.agents.record("itom-auditor", beat)
    assert record["status"] == "degraded"
    assert record["mcp_problems"]["missing_tools"] == sorted(AUDITOR_TOOLS_MISSING)
    summary = {a["agent_id"]: a["status"] for a in bridged.orch.agents.summary()["agents"]}
    assert summary["itom-auditor"] == "degraded"


def test_an_agent_is_degraded_while_its_calls_fail_and_online_again_after(bridged: Bridged) -> None:
    bridged.recorder.fail_next(RATE_LIMITED, times=1)
    assert run_and_wait(bridged.orch, status_step()).status == RunStatus.FAILED
    record = bridged.orch.agents.record("discovery-agent", bridged.orch.agents.heartbeats().get("discovery-agent"))
    assert record["status"] == "degraded"
    assert "rate limit" in record["mcp_problems"]["failing_call"]["error"]
    assert run_and_wait(bridged.orch, status_step()).status == RunStatus.COMPLETED
    assert bridged.orch.agents.statuses()["discovery-agent"] == "online"
