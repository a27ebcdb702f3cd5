"""CLI behaviour that needs no servers: parameter parsing and refusing bad input with clear errors."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli import app, main, parse_params

runner = CliRunner()


def test_params_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert parse_params(["ci_id=web-prod-01", "depth=2", "dry=true", 'ids=["a","b"]']) == {
        "ci_id": "web-prod-01",
        "depth": 2,
        "dry": True,
        "ids": ["a", "b"],
    }


def test_a_param_without_equals_is_a_usage_error() -> None:
    with pytest.raises(typer.BadParameter):
        parse_params(["ci_id"])


def test_worker_for_an_unknown_agent_exits_2_naming_the_agents() -> None:
    result = runner.invoke(app, ["worker", "--agent", "nobody"])
    assert result.exit_code == 2
    assert "ORCH_1001" in result.output and "cmdb-agent" in result.output


def test_flower_refuses_to_run_without_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_REDIS__URL", "redis://127.0.0.1:1/0")
    result = runner.invoke(app, ["flower"])
    assert result.exit_code != 0


def test_main_registers_every_documented_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["itom-orch", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    names |= {g.name for g in app.registered_groups}
    for command in (
        "demo",
        "up",
        "api",
        "worker",
        "mcp",
        "flower",
        "run",
        "status",
        "cancel",
        "resume",
        "audit",
        "templates",
        "agents",
        "dlq",
        "schedule",
        "beat",
    ):
        assert command in names
