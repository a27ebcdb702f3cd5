"""The itom-orch client commands against real workers: run --wait, status, cancel, resume, audit, dlq, templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.helpers import OPERATOR, definition, inject, run_and_wait, step, uid

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return {"ORCH_REDIS__URL": settings.redis_url, "COLUMNS": "200"}


def test_run_wait_then_status(orch: Orchestrator, cli_env: dict[str, str]) -> None:
    result = runner.invoke(
        app, ["run", "incident-response", "-p", "ci_id=web-prod-01", "--wait", "--timeout", "60"], env=cli_env
    )
    assert result.exit_code == 0, result.output
    run_id = result.output.split("started ", 1)[1].split()[0]
    assert orch.get_run(run_id).status.value == "completed"
    status = runner.invoke(app, ["status", run_id, "--json"], env=cli_env)
    assert status.exit_code == 0 and '"completed"' in status.output
    listing = runner.invoke(app, ["status"], env=cli_env)
    assert listing.exit_code == 0 and run_id in listing.output
    as_json = runner.invoke(app, ["status", "--json"], env=cli_env)  # the list too, not a table
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.stdout)
    assert run_id in {item["run_id"] for item in listed["items"]} and listed["total"] >= 1


def test_bad_template_parameter_is_a_clear_error(orch: Orchestrator, cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["run", "incident-response", "-p", "risk_level=extreme"], env=cli_env)
    assert result.exit_code == 2
    assert "ORCH_3006" in result.output


def test_cancel_finished_run_fails_and_resume_recovers_a_failed_one(
    orch: Orchestrator, rclient: Any, cli_env: dict[str, str]
) -> None:
    flaky = uid("flaky")
    inject(rclient, flaky, fail_times=1, retryable=False)
    failed = run_and_wait(orch, definition(step(uid("first")), step(flaky, deps=[])))
    assert failed.status.value == "failed"
    resumed = runner.invoke(app, ["resume", failed.run_id, "--wait", "--timeout", "60"], env=cli_env)
    assert resumed.exit_code == 0, resumed.output
    cancelled = runner.invoke(app, ["cancel", failed.run_id], env=cli_env)
    assert cancelled.exit_code == 2 and "ORCH_3002" in cancelled.output


def test_templates_agents_audit_and_dlq(orch: Orchestrator, cli_env: dict[str, str], tmp_path: Any) -> None:
    templates = runner.invoke(app, ["templates"], env=cli_env)
    assert templates.exit_code == 0 and "incident-response" in templates.output
    agents = runner.invoke(app, ["agents"], env=cli_env)
    assert agents.exit_code == 0 and "online" in agents.output
    orch.wait_for_run(orch.execute_task(OPERATOR, action="cmdb.ping").run_id, timeout=30)
    verify = runner.invoke(app, ["audit", "--verify"], env=cli_env)
    assert verify.exit_code == 0 and '"ok": true' in verify.output
    export = tmp_path / "audit.jsonl"
    exported = runner.invoke(app, ["audit", "--export", str(export)], env=cli_env)
    assert exported.exit_code == 0 and export.read_text().count("\n") > 0
    queried = runner.invoke(app, ["audit", "--type", "task_executed", "--limit", "5"], env=cli_env)
    assert queried.exit_code == 0 and "task_executed" in queried.output
    letters = runner.invoke(app, ["dlq", "list"], env=cli_env)
    assert letters.exit_code == 0
