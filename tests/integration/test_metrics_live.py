"""Outcome metrics live: one run of each outcome, each started from a different front door, moves exactly its
series by exactly one, read through ``GET /metrics`` of the real API before and after, on real workers.

- completed: started over HTTP (``POST /api/workflows``);
- failed: started by the CLI in a process of its own (``itom-orch run``: counted though the API never saw it);
- cancelled: started over MCP (streamable HTTP at ``/mcp/``), cancelled while its first step runs.

The runs use a user template created for this test, so the run series it checks belong to nobody else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from fastmcp import Client
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import keys
from orchestrator.asgi import create_app
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, AuthSettings, Settings, TokenGrant
from tests.integration.helpers import inject, release, wait_until
from tests.integration.live_api import serve

pytestmark = pytest.mark.integration

TOKEN = "metrics-operator-token"
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def api(worker_pool: WorkerPool, settings: Settings) -> Iterator[tuple[str, Orchestrator]]:
    grants = {TOKEN: TokenGrant(principal="metrics", role="operator")}
    service = Orchestrator(settings.model_copy(update={"auth": AuthSettings(tokens=grants)}))
    with serve(create_app(service)) as base:
        yield base, service


@pytest.fixture
def template(settings: Settings) -> Iterator[tuple[str, str, str]]:
    """A two-step user template (``first`` -> ``second``, both cmdb.ping) with step ids of its own."""
    tag = uuid.uuid4().hex[:8]
    template_id, first, second = f"metrics-{tag}", f"m{tag}-first", f"m{tag}-second"
    folder = settings.user_templates_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{template_id}.json"
    steps = [
        {"step_id": first, "action": "cmdb.ping"},
        {"step_id": second, "action": "cmdb.ping", "depends_on": [first]},
    ]
    path.write_text(json.dumps({"template_id": template_id, "name": "Metrics test", "steps": steps}))
    try:
        yield template_id, first, second
    finally:
        path.unlink()


def scrape(http: httpx.Client) -> Series:
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def moved(before: Series, after: Series, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """How much each series of ``name`` whose labels include ``labels`` moved between two scrapes."""
    wanted = set(labels.items())
    return {
        key[1]: after[key] - before.get(key, 0.0)
        for key in after
        if key[0] == name and wanted <= set(key[1]) and after[key] != before.get(key, 0.0)
    }


def cli_run(settings: Settings, template_id: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env.update({"ORCH_REDIS__URL": settings.redis_url, "ORCH_DATA_DIR": str(settings.data_dir)})
    return subprocess.run(
        [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "run", template_id, "--wait"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def mcp_start(base: str, template_id: str) -> str:
    async def main() -> str:
        async with Client(f"{base}/mcp/", auth=TOKEN) as client:
            result = await client.call_tool("start_workflow", {"template_id": template_id})
            run_id: str = result.data["run_id"]
            return run_id

    return anyio.run(main)


def test_each_outcome_from_each_front_door_moves_exactly_its_series_once(
    api: tuple[str, Orchestrator], template: tuple[str, str, str], settings: Settings, rclient: Any
) -> None:
    base, service = api
    template_id, first, second = template
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        before = scrape(http)

        started = http.post("/api/workflows", json={"template_id": template_id})
        assert started.status_code == 202, started.text
        completed = service.wait_for_run(started.json()["run_id"], timeout=60)
        assert completed.status.value == "completed", completed.error

        inject(rclient, second, fail_times=1, retryable=False)
        failed = cli_run(settings, template_id)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        rclient.delete(keys.fault_key(second))

        inject(rclient, first, hold=60)
        run_id = mcp_start(base, template_id)
        wait_until(
            lambda: service.get_run(run_id).steps[0].status.value == "running", timeout=30, what="first step running"
        )
        assert http.post(f"/api/workflows/{run_id}/cancel").status_code == 200
        release(rclient, first)
        cancelled = service.wait_for_run(run_id, timeout=30)
        assert cancelled.status.value == "cancelled"
        wait_until(lambda: cancelled_step_recorded(service, run_id), timeout=30, what="the interrupted step recorded")

        after = scrape(http)

    assert moved(before, after, "orch_runs_started_total", template=template_id) == {
        (("source", "cli"), ("template", template_id)): 1.0,
        (("source", "http"), ("template", template_id)): 1.0,
        (("source", "mcp"), ("template", template_id)): 1.0,
    }
    assert moved(before, after, "orch_runs_finished_total", template=template_id) == {
        (("source", "cli"), ("status", "failed"), ("template", template_id)): 1.0,
        (("source", "http"), ("status", "completed"), ("template", template_id)): 1.0,
        (("source", "mcp"), ("status", "cancelled"), ("template", template_id)): 1.0,
    }
    ping = {"agent": "cmdb-agent", "action": "cmdb.ping"}
    assert moved(before, after, "orch_step_attempts_total", **ping) == {
        (("action", "cmdb.ping"), ("agent", "cmdb-agent"), ("outcome", "completed")): 3.0,  # both, then first
        (("action", "cmdb.ping"), ("agent", "cmdb-agent"), ("outcome", "failed")): 1.0,  # second, from the CLI
        (("action", "cmdb.ping"), ("agent", "cmdb-agent"), ("outcome", "cancelled")): 1.0,  # first, interrupted
    }
    durations = moved(before, after, "orch_step_duration_seconds_count", **ping)
    assert list(durations.values()) == [5.0]
    assert not moved(before, after, "orch_runs_resumed_total", template=template_id)
    depth = {dict(labels)["queue"] for name, labels in after if name == "orch_queue_depth"}
    assert depth == {keys.agent_queue(agent) for agent in AGENT_IDS}


def cancelled_step_recorded(service: Orchestrator, run_id: str) -> bool:
    return service.get_run(run_id).steps[0].status.value == "cancelled"
