"""The registry and routing-rules files under ORCH_DATA_DIR: defaults, validation naming the entry, reload on
change, persisted status; and the legacy per-agent URL variables as aliases."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import AGENTS
from orchestrator.chat.routing import DEFAULT_RULES, route
from orchestrator.chat.rules_file import RoutingRulesFile, parse_rules
from orchestrator.errors import (
    AgentAlreadyRegisteredError,
    AgentNotFoundError,
    AgentRegistrationInvalidError,
    RegistryLoadError,
    RoutingRuleInvalidError,
    RoutingRulesLoadError,
)
from orchestrator.models.chat import RouteRequest
from orchestrator.settings import Settings
from orchestrator.state.registry import AgentRegistry, parse_registry
from orchestrator.state.watched import packaged_default


def write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")
    stamp = path.stat().st_mtime_ns + 1_000_000_000  # a different mtime even on a coarse clock
    os.utime(path, ns=(stamp, stamp))


# ---- registry --------------------------------------------------------------------------------------------------


def test_first_start_writes_the_registry_with_a_real_registration_time(tmp_path: Path) -> None:
    registry = AgentRegistry(tmp_path)
    registry.ensure_written()
    stored = json.loads((tmp_path / "agents.json").read_text())
    stamps = {a["agent_id"]: a["registered_at"] for a in stored["agents"]}
    assert set(stamps) == set(AGENTS) and all(stamps.values())
    later = AgentRegistry(tmp_path)  # a restart keeps the time the agents were first registered
    later.ensure_written()
    assert {a: e.registered_at for a, e in later.registered().items()} == stamps


def test_status_persists_across_restarts(tmp_path: Path) -> None:
    registry = AgentRegistry(tmp_path)
    registry.ensure_written()
    registry.set_status("asset-agent", "maintenance", "licence server upgrade")
    restarted = AgentRegistry(tmp_path)
    entry = restarted.get("asset-agent")
    assert (entry.status, entry.status_reason) == ("maintenance", "licence server upgrade")
    assert restarted.in_maintenance() == {"asset-agent"}
    restarted.set_status("asset-agent", "active")
    assert AgentRegistry(tmp_path).in_maintenance() == frozenset()


def test_an_edited_registry_is_reloaded_and_disabled_agents_unregistered(tmp_path: Path) -> None:
    registry = AgentRegistry(tmp_path)
    registry.file.interval = 0
    registry.ensure_written()
    doc = json.loads(registry.path.read_text())
    for agent in doc["agents"]:
        if agent["agent_id"] == "itom-documentator":
            agent["enabled"] = False
        if agent["agent_id"] == "cmdb-agent":
            agent["name"] = "CMDB (production)"
    write(registry.path, doc)
    assert "itom-documentator" not in registry.registered()
    assert registry.get("cmdb-agent").name == "CMDB (production)"
    with pytest.raises(AgentNotFoundError, match="itom-documentator"):
        registry.get("itom-documentator")


@pytest.mark.parametrize(
    ("agents", "error", "fragment"),
    [
        ([{"agent_id": "task-manager-agent"}], AgentNotFoundError, "agents[0] ('task-manager-agent'): no such agent"),
        (
            [{"agent_id": "cmdb-agent"}, {"agent_id": "cmdb-agent"}],
            AgentAlreadyRegisteredError,
            "agents[1] ('cmdb-agent') is already registered by agents[0]",
        ),
        ([{"agent_id": "cmdb-agent", "status": "asleep"}], AgentRegistrationInvalidError, "status must be one of"),
        ([{"agent_id": "cmdb-agent", "name": ""}], AgentRegistrationInvalidError, "'name' must be a non-empty"),
        ([{"name": "x"}], AgentRegistrationInvalidError, "agents[0] must be an object with a string 'agent_id'"),
    ],
)
def test_bad_registry_entries_are_named(agents: list[dict[str, Any]], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as caught:
        parse_registry({"agents": agents}, "agents.json")
    assert fragment in str(caught.value)


def test_legacy_live_statuses_read_as_active() -> None:
    entries = parse_registry({"agents": [{"agent_id": "csa-agent", "status": "offline"}]}, "agents.json")
    assert entries["csa-agent"].status == "active"


def test_a_broken_edit_keeps_the_last_good_registry_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = AgentRegistry(tmp_path)
    registry.file.interval = 0
    registry.ensure_written()
    assert set(registry.registered()) == set(AGENTS)
    registry.path.write_text("{not json", encoding="utf-8")
    os.utime(registry.path, ns=(1, 1))
    with caplog.at_level(logging.ERROR):
        assert set(registry.registered()) == set(AGENTS)
    assert registry.file.last_error is not None and "cannot be read as JSON" in registry.file.last_error
    with pytest.raises(RegistryLoadError, match="cannot be read as JSON"):
        AgentRegistry(tmp_path).registered()  # a fresh process has no good version to fall back on


# ---- routing rules ---------------------------------------------------------------------------------------------


def test_the_packaged_rules_are_the_default_rules() -> None:
    assert parse_rules(packaged_default("routing-rules.json"), "default") == DEFAULT_RULES


def test_a_legacy_rules_file_loads() -> None:
    legacy = {
        "version": "1.1.0",
        "domains": {"cmdb": {"id": "cmdb", "name": "CMDB", "keywords": ["cmdb"]}},
        "capability_mappings": {},
        "routing_rules": [
            {
                "id": "rule-001",
                "name": "CMDB Read Operations",
                "priority": 10,
                "domain": "cmdb",
                "keywords": ["cmdb", "configuration item", "ci"],
                "target_agent": "cmdb-agent",
                "required_capability": "cmdb_read",
                "enabled": True,
            },
            {"id": "rule-002", "name": "Off", "priority": 1, "domain": "asset", "keywords": ["x"], "enabled": False},
        ],
    }
    (rule,) = parse_rules(legacy, "legacy")
    assert (rule.rule_id, rule.target_agent, rule.keywords) == (
        "rule-001",
        "cmdb-agent",
        ("cmdb", "configuration item", "ci"),
    )


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            {"id": "r1", "priority": "high", "domain": "cmdb", "keywords": ["a"]},
            "('r1'): 'priority' must be an integer",
        ),
        ({"id": "r2", "priority": 1, "domain": "hr", "keywords": ["a"]}, "('r2'): 'domain' must be one of"),
        ({"id": "r3", "priority": 1, "domain": "cmdb", "keywords": []}, "('r3'): has no keywords"),
        ({"id": "r4", "priority": 1, "domain": "cmdb", "keywords": [""]}, "('r4'): 'keywords' must be a list"),
        (
            {"id": "r5", "priority": 1, "domain": "cmdb", "keywords": ["a"], "target_agent": "hr-agent"},
            "('r5'): 'target_agent' 'hr-agent' is not an agent",
        ),
        ({"priority": 1, "domain": "cmdb", "keywords": ["a"]}, "routing_rules[0]: needs a non-empty string 'id'"),
    ],
)
def test_bad_rules_are_named_with_orch_2003(rule: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RoutingRuleInvalidError) as caught:
        parse_rules({"routing_rules": [rule]}, "rules.json")
    assert fragment in caught.value.message and caught.value.code == "ORCH_2003"


def test_duplicate_rule_ids_and_files_without_rules_are_refused() -> None:
    rule = {"id": "r", "priority": 1, "domain": "cmdb", "keywords": ["a"]}
    with pytest.raises(RoutingRuleInvalidError, match=r"routing_rules\[1\] \('r'\) repeats an id"):
        parse_rules({"routing_rules": [rule, rule]}, "rules.json")
    with pytest.raises(RoutingRulesLoadError) as caught:
        parse_rules({"rules": []}, "rules.json")
    assert caught.value.code == "ORCH_2004"
    with pytest.raises(RoutingRulesLoadError, match="every rule is disabled"):
        parse_rules({"routing_rules": [{**rule, "enabled": False}]}, "rules.json")


def test_an_edited_rules_file_changes_routing_without_a_restart(tmp_path: Path) -> None:
    rules = RoutingRulesFile(tmp_path)
    rules.file.interval = 0
    ask = RouteRequest(text="what about the payroll tables")
    assert route(ask, rules=rules.rules()).agent_id == "cmdb-agent"  # type: ignore[union-attr]
    write(
        rules.path,
        {"routing_rules": [{"id": "payroll", "priority": 1, "domain": "asset", "keywords": ["payroll"]}]},
    )
    decision = route(ask, rules=rules.rules())
    assert (decision.agent_id, decision.rule_id) == ("asset-agent", "payroll")  # type: ignore[union-attr]


# ---- the legacy per-agent URL variables -------------------------------------------------------------------


def test_legacy_agent_urls_are_aliases_and_the_nested_form_wins(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ORCH_CMDB_AGENT_URL", "http://localhost:8002/mcp")
    monkeypatch.setenv("ORCH_AUDITOR_AGENT_URL", "http://localhost:8006/mcp")
    monkeypatch.setenv("ORCH_CSA_AGENT_URL", "http://localhost:8003/mcp")
    monkeypatch.setenv("ORCH_AGENTS__CSA_AGENT__MCP_URL", "http://csa:9000/mcp")
    with caplog.at_level(logging.WARNING, logger="orchestrator.settings"):
        settings = Settings()
    assert settings.agent("cmdb-agent").mcp_url == "http://localhost:8002/mcp"
    assert settings.agent("itom-auditor").mcp_url == "http://localhost:8006/mcp"
    assert settings.agent("csa-agent").mcp_url == "http://csa:9000/mcp"
    assert settings.agent("asset-agent").mcp_url is None
    logged = caplog.text
    assert "ORCH_CMDB_AGENT_URL bridges cmdb-agent; ORCH_AGENTS__CMDB_AGENT__MCP_URL is the preferred form" in logged
    assert "ORCH_CSA_AGENT_URL is ignored: ORCH_AGENTS__CSA_AGENT__MCP_URL is set and wins" in logged
