"""A cmdb-agent worker bridged to a real MCP server: steps run the mapped tools, errors map to ORCH codes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from orchestrator.models.common import RunStatus
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.conftest import DB_BRIDGE, _redis_or_skip, db_url
from tests.integration.helpers import definition, run_and_wait, step, uid
from tests.integration.test_mcp_bridge import TOKEN, RunningServer, server  # noqa: F401 - the MCP server fixture

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bridged(
    server: RunningServer,  # noqa: F811
    redis_base: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Orchestrator]:
    bridge_db_url = db_url(redis_base, DB_BRIDGE)
    _redis_or_skip(bridge_db_url)
    env = {
        "ORCH_AGENTS__CMDB_AGENT__MCP_URL": server.url,
        "ORCH_AGENTS__CMDB_AGENT__MCP_TOKEN": TOKEN,
        "ORCH_DATA_DIR": str(tmp_path_factory.mktemp("bridged")),
    }
    pool = WorkerPool(bridge_db_url)
    pool.start(["cmdb-agent"], extra_env=env, quiet=os.environ.get("ORCH_TEST_WORKER_LOGS") != "1")
    try:
        pool.wait_ready(timeout=90)
        yield Orchestrator(
            Settings(redis={"url": bridge_db_url}, agents={"cmdb-agent": {"mcp_url": server.url, "mcp_token": TOKEN}})
        )
    finally:
        pool.stop()


def test_step_runs_the_mapped_tool_on_the_mcp_server(bridged: Orchestrator, server: RunningServer) -> None:  # noqa: F811
    name = uid("web")
    view = run_and_wait(bridged, definition(step(uid("q"), "cmdb.query", parameters={"name": name})))
    assert view.status == RunStatus.COMPLETED, view.error
    assert view.steps[0].result["items"][0]["name"] == name
    assert {"ci_type": None, "environment": None, "query": f"nameLIKE{name}", "limit": 50} in server.log.search_args


def test_tool_errors_fail_the_step_with_an_orch_code(bridged: Orchestrator) -> None:
    view = run_and_wait(
        bridged, definition(step(uid("impact"), "cmdb.map_relationships", parameters={"ci_id": "nope"}))
    )
    assert view.status == RunStatus.FAILED
    assert view.steps[0].error is not None and view.steps[0].error.code == "ORCH_7001"
    assert "not found in the CMDB" in view.steps[0].error.message


def test_bridged_agent_health_reports_the_mcp_server(bridged: Orchestrator) -> None:
    record = bridged.agents.record("cmdb-agent", bridged.agents.heartbeats().get("cmdb-agent"))
    assert record["metadata"]["mode"] == "mcp-bridge"
    # this test server offers five of the CMDB tools: the agent is degraded, and says which tools are missing
    assert record["status"] == "degraded"
    missing = record["mcp_problems"]["missing_tools"]
    assert "find_stale_configuration_items" in missing and "search_configuration_items" not in missing
    beat = bridged.agents.heartbeats()["cmdb-agent"]
    assert beat["mcp"]["reachable"] is True and beat["mcp"]["tools"] >= 1
