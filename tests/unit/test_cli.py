"""CLI behaviour that needs no servers: parameter parsing and refusing bad input with clear errors."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli import serve
from orchestrator.cli.common import parse_params
from orchestrator.cli.main import app, main
from orchestrator.settings import Settings

runner = CliRunner()


def test_params_are_json_when_they_parse_and_strings_otherwise() -> None:
    assert parse_params(["ci_id=web-prod-01", "depth=2", "dry=true", 'ids=["a","b"]']) == {
        "ci_id": "web-prod-01",
        "depth": 2,
        "dry": True,
        "ids": ["a", "b"],
    }


def test_params_take_their_declared_type() -> None:
    declared = {"ci_id": "string", "stale_days": "integer", "tags": "array"}
    assert parse_params(["ci_id=12345", "stale_days=30", 'tags=["a"]'], declared) == {
        "ci_id": "12345",  # a string parameter keeps the text, digits and all
        "stale_days": 30,
        "tags": ["a"],
    }


def test_a_value_that_is_not_its_declared_type_says_how_to_write_it() -> None:
    with pytest.raises(typer.BadParameter, match=r"stale_days' is integer; 'abc' is not one .* -p 'stale_days=30'"):
        parse_params(["stale_days=abc"], {"stale_days": "integer"})


def test_an_unreachable_redis_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORCH_REDIS__URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr("sys.argv", ["itom-orch", "status"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "ORCH_8005" in err and "does not answer" in err and "Traceback" not in err


def test_a_bad_dead_letter_id_is_a_clear_error() -> None:
    from orchestrator.errors import InputInvalidError
    from orchestrator.state.deadletters import check_id

    check_id("1732951234567-0")
    for bad in ("abc", "18446744073709551616-0", "1-2-3", "-1", "1" * 500):
        with pytest.raises(InputInvalidError, match="is not a dead letter id"):
            check_id(bad)


def test_passwords_never_show_in_printed_redis_urls() -> None:
    from orchestrator.runtime.redis_client import masked

    assert masked("redis://:s3cret@db.example:6379/0") == "redis://***@db.example:6379/0"
    assert masked("redis://user:s3cret@db.example:6379/0") == "redis://***@db.example:6379/0"
    assert masked("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


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


@pytest.fixture
def flower_exec(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``itom-orch flower`` up to the exec: what it would run and with which environment."""
    seen: dict[str, Any] = {}
    monkeypatch.delenv("FLOWER_TASKS_COLUMNS", raising=False)

    def fake_connect(**_: Any) -> tuple[Settings, None]:
        return Settings(flower={"basic_auth": "ops:pa:ss-w0rd"}), None

    def fake_exec(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(path=path, argv=argv, env=env)

    monkeypatch.setattr(serve, "connect", fake_connect)
    monkeypatch.setattr(serve.os, "execvpe", fake_exec)
    return seen


def test_flower_gets_its_password_in_its_environment_and_runs_read_only(flower_exec: dict[str, Any]) -> None:
    result = runner.invoke(app, ["flower", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert "pa:ss-w0rd" not in " ".join(flower_exec["argv"]) and "--port=5999" in flower_exec["argv"]
    env = flower_exec["env"]
    assert env["FLOWER_BASIC_AUTH"] == "ops:pa:ss-w0rd" and env["FLOWER_READ_ONLY"] == "true"
    assert "kwargs" in env["FLOWER_TASKS_COLUMNS"].split(",")
    assert runner.invoke(app, ["flower", "--allow-control"]).exit_code == 0
    assert flower_exec["env"]["FLOWER_READ_ONLY"] == "false"


def test_flower_refuses_credentials_without_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "connect", lambda **_: (Settings(flower={"basic_auth": "ops:ok,nopassword"}), None))
    result = runner.invoke(app, ["flower"])
    assert result.exit_code == 2 and "ORCH_8001" in result.output


def test_main_registers_every_documented_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["itom-orch", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
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
        "reconcile",
    ):
        assert command in names


def test_a_param_given_twice_is_a_usage_error_not_the_last_one_silently() -> None:
    with pytest.raises(typer.BadParameter, match="'ci_id' is given twice"):
        parse_params(["ci_id=web-prod-01", "depth=2", "ci_id=db-01"])


def test_actions_for_an_unknown_agent_exits_2_naming_the_agents() -> None:
    result = runner.invoke(app, ["actions", "--agent", "nobody"])
    assert result.exit_code == 2
    assert "ORCH_1001" in result.output and "cmdb-agent" in result.output
    listed = runner.invoke(app, ["actions", "--agent", "csa-agent"])
    assert listed.exit_code == 0 and "csa." in listed.output and "cmdb.query" not in listed.output


@pytest.mark.parametrize("command", [["up"], ["worker", "--agent", "cmdb-agent"]])
def test_a_concurrency_below_one_is_a_usage_error_at_once(command: list[str]) -> None:
    """Not 90 s of workers that never start (up), nor Celery's own error after the start-up (worker)."""
    result = runner.invoke(app, [*command, "-c", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--concurrency'" in result.output
