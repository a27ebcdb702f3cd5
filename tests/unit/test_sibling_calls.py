"""Every catalog action that maps to a sibling tool, called in memory on the fixture sibling servers.

The table below is the contract with the sibling agents: for each action and example parameters, the tool
we call and exactly the arguments we send. Each row is checked against the tool's ``inputSchema`` (as
``list_tools`` gives it) and then really called, so a row only passes when the sibling accepts the call.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastmcp import Client

from orchestrator.catalog import ACTIONS, AGENTS, validate_params
from orchestrator.errors import TaskInvalidError
from tests.siblings import SERVER_FACTORIES, Recorder
from workers.toolcalls import MAPPINGS, tool_call
from workers.toolresults import reported_error
from workers.toolschema import check_arguments

CI = "web-prod-01"
SYS_ID = "0123456789abcdef0123456789abcdef"
EARLIER = {"assess": {"impacted_cis": [{"sys_id": SYS_ID, "name": CI, "sys_class_name": "cmdb_ci_linux_server"}]}}

# (action, parameters) -> (tool, arguments sent)
CALLS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("cmdb.query", {}, "search_configuration_items", {"limit": 50}),
    (
        "cmdb.query",
        {"ci_class": "linux_server", "environment": "Production", "name": "web", "limit": 10},
        "search_configuration_items",
        {"ci_type": "linux_server", "environment": "Production", "query": "nameLIKEweb", "limit": 10},
    ),
    ("cmdb.count", {"ci_class": "servers"}, "search_configuration_items", {"ci_type": "server", "limit": 1}),
    ("cmdb.health_audit", {"ci_class": "cmdb_ci_database"}, "get_cmdb_health_metrics", {"ci_type": "database"}),
    ("cmdb.map_relationships", {"ci_id": CI}, "analyze_configuration_item_impact", {"ci_sys_id": CI}),
    (
        "cmdb.stale",
        {"ci_class": "server", "days": 60, "limit": 10},
        "find_stale_configuration_items",
        {"ci_type": "server", "days": 60, "limit": 10},
    ),
    ("cmdb.duplicates", {}, "find_duplicate_configuration_items", {"match_field": "name"}),
    (
        "cmdb.health_trend",
        {"ci_class": "application"},
        "get_cmdb_health_trend_report",
        {"ci_type": "application", "days": 90},
    ),
    ("cmdb.dashboard", {}, "get_operational_dashboard", {}),
    ("cmdb.dependency_tree", {"ci_id": SYS_ID}, "query_ci_dependency_tree", {"ci_sys_id": SYS_ID, "depth": 2}),
    ("cmdb.history", {"ci_id": CI}, "get_configuration_item_history", {"ci_sys_id": CI, "limit": 20}),
    (
        "cmdb.reconcile",
        {"ci_class": "network gear"},
        "reconcile_cmdb_configuration_data",
        {"ci_type": "network_gear", "dry_run": True},
    ),
    ("cmdb.ire_rules", {}, "get_ire_rules_for_class", {"ci_class": "cmdb_ci_server"}),
    ("cmdb.ci_types", {}, "list_ci_types", {}),
    ("cmdb.activity", {}, "get_agent_status", {}),
    ("cmdb.health_check", {}, "health", {}),
    (
        "discovery.scan",
        {"ip_range": "10.10.0.0/16"},
        "schedule_discovery_scan",
        {"action": "create", "name": "itom-orchestrator full scan of 10.10.0.0/16", "discover_type": "IP"},
    ),
    (
        "discovery.scan",
        {"schedule_id": SYS_ID},
        "schedule_discovery_scan",
        {"action": "trigger", "schedule_sys_id": SYS_ID},
    ),
    ("discovery.status", {}, "get_discovery_status", {"action": "list", "limit": 50}),
    (
        "discovery.status",
        {"scan_id": SYS_ID},
        "get_discovery_status",
        {"action": "details", "scan_sys_id": SYS_ID},
    ),
    ("discovery.reconcile", {}, "analyze_discovery_results", {"action": "trend"}),
    (
        "discovery.reconcile",
        {"scan_id": SYS_ID},
        "analyze_discovery_results",
        {"action": "analyze", "scan_sys_id": SYS_ID},
    ),
    ("discovery.schedule", {"active_only": True}, "list_discovery_schedules", {"action": "list", "active": True}),
    ("asset.query", {"status": "In use"}, "tool_query_hardware_assets", {"status": "In use", "limit": 50}),
    ("asset.query", {"asset_type": "software"}, "tool_query_software_licenses", {"limit": 50}),
    ("asset.lifecycle", {"asset_id": "P100001"}, "tool_get_asset_lifecycle", {"asset_tag": "P100001"}),
    ("asset.lifecycle", {}, "tool_track_asset_depreciation", {}),
    ("asset.reconcile", {}, "tool_reconcile_assets_to_cis", {}),
    ("asset.license_check", {"software": "WinZip Pro"}, "tool_check_license_compliance", {"product": "WinZip Pro"}),
    (
        "csa.plan_fulfillment",
        {},
        "execute_pipeline",
        {"user_request": f"Plan the fulfilment of a remediation for 1 affected CI(s): {CI}"},
    ),
    (
        "csa.run_remediation",
        {"summary": "Patch web tier", "risk_level": "medium"},
        "create_remediation_request",
        {
            "remediation_type": "missing_data",
            "remediation_mode": "manual",
            "issue_summary": "Patch web tier",
            "affected_cis": [{"sys_id": SYS_ID, "name": CI, "ci_class": "cmdb_ci_linux_server"}],
            "proposed_action": "Patch web tier",
            "risk_level": "medium",
            "estimated_impact": "1 CI(s) affected",
        },
    ),
    ("csa.create_request", {"description": "New laptop"}, "create_service_request", {"description": "New laptop"}),
    ("csa.request_status", {"request_id": "RITM0009001"}, "check_approval_status", {"ritm_sys_id": "RITM0009001"}),
    ("audit.compliance", {}, "audit_cmdb", {}),
    ("audit.compliance", {"scope": "full"}, "audit_full", {}),
    ("audit.compliance", {"scope": "discovery"}, "audit_discovery", {}),
    ("audit.compliance", {"scope": "asset"}, "audit_assets", {}),
    ("audit.drift", {}, "audit_discovery", {}),
    ("audit.report", {}, "compliance_report", {"audit_type": "full", "report_format": "json"}),
    ("audit.policy", {"category": "cmdb"}, "compliance_rules", {"category": "cmdb"}),
    (
        "documentation.generate",
        {"report_type": "health", "title": "CMDB health"},
        "generate_documentation",
        {"report_type": "health", "title": "CMDB health"},
    ),
    ("documentation.runbook", {"ci_id": CI}, "create_runbook", {"ci_id": CI}),
    ("documentation.knowledge_base", {"title": "t", "body": "b"}, "update_knowledge_base", {"title": "t", "body": "b"}),
    ("documentation.diagram", {"ci_id": CI}, "generate_architecture_diagram", {"ci_id": CI}),
]


def _schemas_and_call(agent_id: str, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], Any, Recorder]:
    recorder = Recorder()
    server = SERVER_FACTORIES[agent_id](recorder)

    async def main() -> tuple[dict[str, Any], Any]:
        async with Client(server) as client:
            schemas = {t.name: dict(t.input_schema or {}) for t in await client.list_tools()}
            check_arguments(tool, schemas[tool], arguments)
            return schemas, await client.call_tool_mcp(tool, arguments)

    schemas, result = anyio.run(main)
    return schemas, result, recorder


def _bound(action: str, params: dict[str, Any]) -> dict[str, Any]:
    return validate_params(ACTIONS[action].params, params, where=action)


IDS = [f"{c[0]}-{n}" for n, c in enumerate(CALLS)]


@pytest.mark.parametrize(("action", "params", "tool", "arguments"), CALLS, ids=IDS)
def test_each_action_is_called_with_arguments_its_sibling_tool_accepts(
    action: str, params: dict[str, Any], tool: str, arguments: dict[str, Any]
) -> None:
    spec = ACTIONS[action]
    call = tool_call(spec, _bound(action, params), lambda: EARLIER)
    assert (call.tool, call.arguments) == (tool, arguments)
    _, result, recorder = _schemas_and_call(spec.agent_id, call.tool, call.arguments)
    assert not result.is_error, result
    assert reported_error(result.structured_content) is None, result.structured_content
    assert recorder.calls and recorder.calls[-1][0] == tool


def test_every_mapped_action_has_a_row_and_every_sibling_tool_exists() -> None:
    mapped = {name for name, spec in ACTIONS.items() if spec.tools}
    assert mapped == set(MAPPINGS) == {row[0] for row in CALLS}
    for agent_id in AGENTS:
        recorder = Recorder()

        async def names(rec: Recorder = recorder, agent: str = agent_id) -> set[str]:
            async with Client(SERVER_FACTORIES[agent](rec)) as client:
                return {t.name for t in await client.list_tools()}

        offered = anyio.run(names)
        wanted = {tool for name in AGENTS[agent_id].actions for tool in ACTIONS[name].tools}
        assert wanted <= offered, (agent_id, wanted - offered)


def test_a_parameter_without_counterpart_fails_only_when_set_away_from_its_default() -> None:
    spec = ACTIONS["cmdb.health_audit"]
    assert tool_call(spec, _bound("cmdb.health_audit", {"stale_days": 90}), dict).tool == "get_cmdb_health_metrics"
    with pytest.raises(TaskInvalidError) as caught:
        tool_call(spec, _bound("cmdb.health_audit", {"stale_days": 30}), dict)
    assert "'stale_days'" in caught.value.message and "get_cmdb_health_metrics" in caught.value.message
    assert caught.value.code == "ORCH_7003"


def test_actions_without_a_sibling_tool_are_refused_for_bridged_agents() -> None:
    with pytest.raises(TaskInvalidError) as caught:
        tool_call(ACTIONS["cmdb.update"], _bound("cmdb.update", {"ci_id": CI, "fields": {"owner": "x"}}), dict)
    assert "ORCH_AGENTS__CMDB_AGENT__MCP_URL" in caught.value.message


def test_tool_args_add_arguments_in_the_tools_own_names() -> None:
    params = _bound("cmdb.duplicates", {"tool_args": {"match_field": "serial_number"}})
    call = tool_call(ACTIONS["cmdb.duplicates"], params, dict)
    assert call.arguments == {"match_field": "serial_number"}
    params = _bound("audit.compliance", {"tool_args": {"severity_filter": "high"}})
    call = tool_call(ACTIONS["audit.compliance"], params, dict)
    _, _, recorder = _schemas_and_call("itom-auditor", call.tool, call.arguments)
    assert recorder.last("audit_cmdb") == {"severity_filter": "high"}


def test_consumables_and_software_filters_have_no_asset_tool() -> None:
    with pytest.raises(TaskInvalidError, match="consumable"):
        tool_call(ACTIONS["asset.query"], _bound("asset.query", {"asset_type": "consumable"}), dict)
    with pytest.raises(TaskInvalidError, match="'status'"):
        tool_call(ACTIONS["asset.query"], _bound("asset.query", {"asset_type": "software", "status": "x"}), dict)


# ---- the schema check ------------------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string"},
        "limit": {"type": "integer", "default": 20},
        "ip_ranges": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "period": {"enum": ["day", "week"]},
    },
    "required": ["action"],
}


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"limit": 5}, "requires argument 'action'"),
        ({"action": "list", "scan_id": "x"}, "takes no argument 'scan_id'; it declares: action, ip_ranges, limit"),
        ({"action": "list", "limit": "ten"}, "argument 'limit' must be integer, got 'ten'"),
        ({"action": "list", "limit": True}, "argument 'limit' must be integer"),
        ({"action": "list", "ip_ranges": "10.0.0.0/8"}, "argument 'ip_ranges' must be array or null"),
        ({"action": "list", "period": "year"}, "argument 'period' must be one of 'day', 'week'"),
    ],
)
def test_the_schema_check_names_the_argument(arguments: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TaskInvalidError) as caught:
        check_arguments("get_discovery_status", SCHEMA, arguments)
    assert fragment in caught.value.message
    assert caught.value.code == "ORCH_7003"


def test_the_schema_check_passes_what_the_tool_takes() -> None:
    check_arguments("t", SCHEMA, {"action": "list", "limit": 5, "ip_ranges": ["a"], "period": "day"})
    check_arguments("t", SCHEMA, {"action": "list", "limit": 5.0})
    check_arguments("t", {**SCHEMA, "additionalProperties": True}, {"action": "x", "anything": 1})


# ---- errors reported inside replies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message", "transient"),
    [
        (
            {"success": False, "data": None, "message": "Rate limited", "action": "list", "error": "RATE_LIMIT_ERROR"},
            "Rate limited",
            True,
        ),
        (
            {"success": False, "message": "Invalid action: 'x'", "error": "INVALID_ACTION: x"},
            "Invalid action: 'x'",
            False,
        ),
        ({"error": "limit must be >= 1", "error_code": "SN_VALIDATION_ERROR"}, "limit must be >= 1", False),
        ({"error": "429 Too Many Requests", "error_code": "SN_RATE_LIMIT"}, "429 Too Many Requests", True),
        ({"status": "error", "message": "audit_id is required"}, "audit_id is required", False),
        ({"status": "unhealthy", "error": "Connection refused"}, "Connection refused", True),
        ({"status": "failed", "details": "disk full"}, "disk full", False),
    ],
)
def test_errors_inside_replies_are_found_with_the_servers_message(
    reply: dict[str, Any], message: str, transient: bool
) -> None:
    found = reported_error(reply)
    assert found is not None and message in found.message
    assert found.transient is transient


def test_an_audit_counting_errors_is_an_error_and_a_clean_one_is_not() -> None:
    from tests.siblings import audit_result

    found = reported_error(audit_result("full", errors=2))
    assert found is not None and "2 of 3 audit checks ended in error" in found.message and found.transient
    report = {"executive_summary": {"summary": "Full audit: 7 passed, 1 failed, 2 errors out of 10 checks"}}
    assert reported_error(report) is not None
    assert reported_error(audit_result("full")) is None
    ok = {"success": True, "data": [], "message": "Found 0 scan(s)", "action": "list", "error": None}
    assert reported_error(ok) is None
    assert reported_error({"status": "no_data", "message": "No audit results found. Run an audit first."}) is None
