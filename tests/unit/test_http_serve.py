"""Serving: the first-run API token (stored 0600, printed once) and the `up` / `api` / `mcp` commands' wiring
(workers started and stopped, one service shared by HTTP and MCP), with the servers themselves stubbed."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import serve as cli_serve
from orchestrator.cli.main import app
from orchestrator.errors import AgentUnavailableError
from orchestrator.security.tokens import ensure_api_token, token_path
from orchestrator.settings import AGENT_IDS, Settings
from tests.unit.test_http_fixtures import build_service

runner = CliRunner()


def test_configured_tokens_are_left_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth={"tokens": {"t": {"principal": "ann", "role": "viewer"}}})
    same, boot = ensure_api_token(settings)
    assert same is settings
    assert boot.source == "configured"
    assert not token_path(settings).exists()


def test_a_token_is_created_once_with_0600_then_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first, created = ensure_api_token(settings)
    assert created.source == "created"
    assert created.token and len(created.token) >= 40
    path = token_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == created.token
    assert first.auth.tokens[created.token].role == "admin"
    assert settings.auth.tokens == {}  # the caller's settings are not mutated

    second, stored = ensure_api_token(settings)
    assert (stored.source, stored.token) == ("stored", None)
    assert list(second.auth.tokens) == [created.token]


def test_a_loosened_or_empty_token_file_is_repaired(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    _, created = ensure_api_token(settings)
    path = token_path(settings)
    path.chmod(0o644)
    ensure_api_token(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")
    _, again = ensure_api_token(settings)
    assert again.source == "created"
    assert again.token != created.token


@dataclass
class FakeHandle:
    stopped: bool = False
    source: str = "configured"  # not embedded: `up` watches only a Redis it started

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeBeat:
    calls: list[str]

    def start(self) -> None:
        self.calls.append("beat:start")

    def stop(self, timeout: float | None = None) -> None:
        self.calls.append("beat:stop")


@dataclass
class FakePool:
    redis_url: str
    calls: list[str] = field(default_factory=list)
    fail_ready: bool = False

    def start(self, agent_ids: Any, **_: Any) -> None:
        self.calls.append(f"start:{','.join(agent_ids)}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.calls.append("ready")
        if self.fail_ready:
            raise AgentUnavailableError("Workers not ready after 1s: cmdb-agent")

    def stop(self) -> None:
        self.calls.append("stop")


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """connect() without Redis, a recording worker pool, and serve_http that records instead of serving."""
    recorded: dict[str, Any] = {"pools": [], "served": [], "handle": FakeHandle()}
    settings = Settings(data_dir=tmp_path)

    def fake_connect(**kwargs: Any) -> tuple[Settings, FakeHandle]:
        recorded["connect"] = kwargs
        return settings, recorded["handle"]

    def fake_pool(redis_url: str, *, supervise: bool = False) -> FakePool:
        pool = FakePool(redis_url, fail_ready=recorded.get("fail_ready", False))
        recorded["pools"].append(pool)
        recorded["supervise"] = supervise
        return pool

    def fake_serve(settings: Settings, host: str | None, port: int | None) -> None:
        recorded["served"].append((settings, host, port))
        if recorded.get("interrupt"):
            raise KeyboardInterrupt

    def fake_beat(settings: Settings) -> FakeBeat:
        return FakeBeat(recorded["pools"][-1].calls)

    monkeypatch.setattr(cli_serve, "connect", fake_connect)
    monkeypatch.setattr("orchestrator.schedules.beat.embedded_beat", fake_beat)
    monkeypatch.setattr(cli_serve, "serve_http", fake_serve)
    monkeypatch.setattr("orchestrator.runtime.procs.WorkerPool", fake_pool)
    return recorded


def test_up_starts_workers_serves_and_stops_everything_on_ctrl_c(stubs: dict[str, Any]) -> None:
    stubs["interrupt"] = True
    result = runner.invoke(app, ["up", "--host", "0.0.0.0", "--port", "9001"])
    assert result.exit_code == 0, result.output
    assert stubs["connect"]["allow_embedded"] is True
    assert stubs["connect"]["durable"] is True  # an embedded Redis keeps an append-only file under `up`
    (pool,) = stubs["pools"]
    # the beat is asked to stop first (it ends its sleep while the workers stop), and waited for after them
    assert pool.calls == [f"start:{','.join(AGENT_IDS)}", "ready", "beat:start", "beat:stop", "stop", "beat:stop"]
    assert stubs["supervise"] is True  # `up` restarts workers when they die (the beat has its own watchdog)
    (served,) = stubs["served"]
    assert served[1:] == ("0.0.0.0", 9001)
    token = next(iter(served[0].auth.tokens))
    assert token in result.output  # printed the first time...
    assert "shown only" in result.output
    assert stubs["handle"].stopped

    again = runner.invoke(app, ["up"])
    assert again.exit_code == 0
    assert token not in again.output  # ...never again
    assert "api-token" in again.output
    assert next(iter(stubs["served"][1][0].auth.tokens)) == token


def test_up_stops_what_it_started_when_workers_fail(stubs: dict[str, Any]) -> None:
    stubs["fail_ready"] = True
    result = runner.invoke(app, ["up"])
    assert result.exit_code == 2
    assert "ORCH_2002" in result.output
    assert stubs["pools"][0].calls[-1] == "stop"
    assert stubs["served"] == []
    assert stubs["handle"].stopped


def test_api_serves_alone_with_the_same_token_rule(stubs: dict[str, Any]) -> None:
    result = runner.invoke(app, ["api", "--port", "9002"])
    assert result.exit_code == 0, result.output
    assert stubs["connect"]["allow_embedded"] is False
    assert stubs["pools"] == []
    (served,) = stubs["served"]
    assert served[2] == 9002
    assert next(iter(served[0].auth.tokens)) in result.output


def test_mcp_serves_the_tools_over_stdio_as_the_local_operator(
    stubs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: dict[str, Any] = {}
    service = build_service()

    class FakeServer:
        def run(self, **kwargs: Any) -> None:
            ran.update(kwargs)

    def fake_create_mcp(svc: Any, *, local_principal: Any) -> FakeServer:
        ran["service"], ran["principal"] = svc, local_principal
        return FakeServer()

    monkeypatch.setattr("orchestrator.mcp.create_mcp", fake_create_mcp)
    monkeypatch.setattr("orchestrator.service.Orchestrator", lambda settings: service)
    result = runner.invoke(app, ["mcp"])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # stdout belongs to the MCP protocol
    assert ran["transport"] == "stdio"
    assert ran["service"] is service
    assert ran["principal"].role == "admin"


def test_serve_http_builds_one_service_for_http_and_mcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = build_service(data_dir=tmp_path)
    configs: list[Any] = []
    monkeypatch.setattr("orchestrator.service.Orchestrator", lambda settings: service)
    monkeypatch.setattr("uvicorn.Server.run", lambda self: configs.append(self.config))
    cli_serve.serve_http(service.settings, None, 9003)
    (config,) = configs
    assert (config.host, config.port) == ("127.0.0.1", 9003)
    assert config.app.state.service is service
    assert any(getattr(route, "path", "") == "/mcp" for route in config.app.routes)
