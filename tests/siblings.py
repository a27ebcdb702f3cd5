"""Fixture MCP servers standing in for the sibling agents, with their real tool names and argument schemas.

Why: the bridge must work against the servers our users run, not against servers shaped like our catalog.
Each factory below declares the sibling's tools with the same names, parameters, types and defaults
(snow-discovery-agent, snow-asset-agent and snow-itom-auditor as published; the CMDB and CSA agents, which
are not public, as the chat UI's prompt calls them; the documentator,
which has no public server, under the legacy registry's capability names). Bodies are stand-ins: they
record each call and answer in the sibling's style, including its habit of reporting failures inside a
normal reply. ``Faults`` makes a server fail that way on demand.

``SiblingHTTP`` serves one of them over streamable HTTP on loopback and can restart it; after a restart
it answers the old session like a fastmcp 2.x server does ("Session not found", HTTP 404).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastmcp import FastMCP

AGENT_SERVERS = ("cmdb-agent", "discovery-agent", "asset-agent", "csa-agent", "itom-auditor", "itom-documentator")


@dataclass
class Recorder:
    """What a fixture server was asked, and the failure it should report next (once per call while set)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_with: dict[str, Any] | None = None
    failures_left: int = 0

    def note(self, tool: str, **arguments: Any) -> dict[str, Any] | None:
        """Record the call; the failure reply to send instead of a result, if one is due."""
        self.calls.append((tool, arguments))
        if self.fail_with is not None and self.failures_left > 0:
            self.failures_left -= 1
            return dict(self.fail_with)
        return None

    def fail_next(self, reply: dict[str, Any], times: int = 1) -> None:
        self.fail_with, self.failures_left = reply, times

    def last(self, tool: str) -> dict[str, Any]:
        return next(args for name, args in reversed(self.calls) if name == tool)


# ---- snow-discovery-agent ---------------------------------------------------------------------------------------


def _discovery_reply(action: str, data: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "message": f"{action} done", "action": action, "error": None}


def _bad_action(action: str, valid: tuple[str, ...]) -> dict[str, Any]:
    return {
        "success": False,
        "data": None,
        "message": f"Invalid action: '{action}'. Valid actions: {sorted(valid)}",
        "action": action,
        "error": f"INVALID_ACTION: {action}",
    }


def discovery_server(rec: Recorder) -> FastMCP:
    mcp = FastMCP("snow-discovery-agent")

    def answer(tool: str, action: str, valid: tuple[str, ...], data: Any, **args: Any) -> dict[str, Any]:
        failure = rec.note(tool, action=action, **args)
        if failure is not None:
            return failure
        return _discovery_reply(action, data) if action in valid else _bad_action(action, valid)

    @mcp.tool()
    def manage_discovery_credentials(
        action: str,
        sys_id: str | None = None,
        name: str | None = None,
        credential_type: str | None = None,
        tag: str | None = None,
        order: int | None = None,
        active: bool | None = None,
        filter_type: str | None = None,
        filter_active: bool | None = None,
        filter_tag: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        return answer("manage_discovery_credentials", action, ("list", "get", "create", "update", "delete"), [])

    @mcp.tool()
    def schedule_discovery_scan(
        action: str,
        schedule_sys_id: str | None = None,
        name: str | None = None,
        discover_type: str | None = None,
        ip_ranges: list[str] | None = None,
        mid_server: str | None = None,
        max_run_time: str = "02:00:00",
    ) -> dict[str, Any]:
        args = {"schedule_sys_id": schedule_sys_id, "name": name, "discover_type": discover_type}
        data = {"schedule": {"sys_id": schedule_sys_id or uuid.uuid4().hex, "name": name, "active": True}}
        return answer("schedule_discovery_scan", action, ("trigger", "create"), data, **args, ip_ranges=ip_ranges)

    @mcp.tool()
    def get_discovery_status(
        action: str,
        scan_sys_id: str | None = None,
        state: str | None = None,
        limit: int = 20,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> dict[str, Any]:
        data = [{"sys_id": "a" * 32, "name": "DC1 Production servers", "state": "Completed", "ci_count": 108}]
        args = {"scan_sys_id": scan_sys_id, "state": state, "limit": limit}
        return answer("get_discovery_status", action, ("get", "list", "details", "poll"), data, **args)

    @mcp.tool()
    def list_discovery_schedules(
        action: str,
        schedule_sys_id: str | None = None,
        active: bool | None = None,
        discover_type: str | None = None,
        name_filter: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        data = [{"sys_id": "b" * 32, "name": "DC1 Production servers", "active": True}]
        return answer("list_discovery_schedules", action, ("list", "get", "summary"), data, active=active)

    @mcp.tool()
    def manage_discovery_ranges(
        action: str,
        sys_id: str | None = None,
        name: str | None = None,
        range_type: str | None = None,
        range_start: str | None = None,
        range_end: str | None = None,
        active: bool | None = None,
        include: bool | None = None,
        filter_type: str | None = None,
        filter_active: bool | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        valid = ("list", "get", "create", "update", "delete", "validate")
        return answer("manage_discovery_ranges", action, valid, [])

    @mcp.tool()
    def analyze_discovery_results(
        action: str,
        scan_sys_id: str | None = None,
        schedule_sys_id: str | None = None,
        last_n_scans: int = 10,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> dict[str, Any]:
        data = {"scans_analyzed": last_n_scans, "error_rate": 0.02}
        valid = ("analyze", "errors", "trend", "coverage")
        return answer("analyze_discovery_results", action, valid, data, scan_sys_id=scan_sys_id)

    @mcp.tool()
    def remediate_discovery_failures(
        action: str,
        scan_sys_id: str | None = None,
        remediation_type: str | None = None,
        target_items: list[str] | None = None,
        confirm: bool = False,
    ) -> dict[str, Any]:
        valid = ("diagnose", "credential_fix", "network_fix", "classification_fix", "bulk_remediate")
        return answer("remediate_discovery_failures", action, valid, {"dry_run": not confirm})

    @mcp.tool()
    def get_discovery_patterns(
        action: str,
        pattern_sys_id: str | None = None,
        ci_type: str | None = None,
        active: bool | None = None,
        name_filter: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        return answer("get_discovery_patterns", action, ("list", "get", "analyze", "coverage"), [])

    @mcp.tool()
    def get_discovery_health(period: str = "week", include_recommendations: bool = True) -> dict[str, Any]:
        return rec.note("get_discovery_health", period=period) or _discovery_reply("health", {"health_score": 91})

    @mcp.tool()
    def compare_discovery_runs(
        action: str,
        scan_a_sys_id: str | None = None,
        scan_b_sys_id: str | None = None,
        schedule_sys_id: str | None = None,
        last_n: int = 5,
    ) -> dict[str, Any]:
        return answer("compare_discovery_runs", action, ("compare", "sequential"), {})

    @mcp.tool()
    def get_server_info() -> dict[str, Any]:
        return {"server_name": "snow-discovery-agent", "version": "0.1.0", "status": "running"}

    return mcp


# ---- snow-asset-agent --------------------------------------------------------------------------------------------


def asset_server(rec: Recorder) -> FastMCP:
    mcp = FastMCP("snow-asset-agent")

    @mcp.tool()
    def health_check() -> dict[str, Any]:
        return {"server": "snow-asset-agent", "version": "0.1.0", "status": "ok"}

    @mcp.tool()
    def tool_query_hardware_assets(
        status: str | None = None,
        department: str | None = None,
        model: str | None = None,
        model_category: str | None = None,
        assigned_to: str | None = None,
        location: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        failure = rec.note("tool_query_hardware_assets", status=status, assigned_to=assigned_to, limit=limit)
        return failure or {"assets": [{"asset_tag": "P100001", "install_status": status or "In use"}], "count": 1}

    @mcp.tool()
    def tool_query_software_licenses(
        vendor: str | None = None, product: str | None = None, expiring_soon: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        failure = rec.note("tool_query_software_licenses", vendor=vendor, product=product, limit=limit)
        return failure or {"licenses": [{"product": "Red Hat Enterprise Linux", "rights": 57}], "count": 1}

    @mcp.tool()
    def tool_get_asset_details(sys_id: str | None = None, asset_tag: str | None = None) -> dict[str, Any]:
        return {"asset": {"sys_id": sys_id, "asset_tag": asset_tag}}

    @mcp.tool()
    def tool_get_asset_lifecycle(sys_id: str | None = None, asset_tag: str | None = None) -> dict[str, Any]:
        failure = rec.note("tool_get_asset_lifecycle", sys_id=sys_id, asset_tag=asset_tag)
        if failure is not None:
            return failure
        if not sys_id and not asset_tag:
            return {"error": "Provide either sys_id or asset_tag", "error_code": "SN_VALIDATION_ERROR"}
        return {"lifecycle": {"asset_tag": asset_tag, "stage": "Active/Deployed", "days_in_stage": 120}}

    @mcp.tool()
    def tool_get_asset_contracts(
        asset_sys_id: str | None = None, vendor: str | None = None, state: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        return {"contracts": [], "count": 0}

    @mcp.tool()
    def tool_calculate_asset_costs(
        department: str | None = None, model_category: str | None = None, limit: int = 200
    ) -> dict[str, Any]:
        return {"total_cost": 0}

    @mcp.tool()
    def tool_check_license_compliance(
        product: str | None = None, vendor: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        failure = rec.note("tool_check_license_compliance", product=product, vendor=vendor, limit=limit)
        result = {"product": product or "WinZip Pro", "rights": 10, "allocated": 14, "gap": 4}
        return failure or {"compliance_results": [result], "count": 1, "compliant": 0, "non_compliant": 1}

    @mcp.tool()
    def tool_get_license_utilization(
        product: str | None = None, vendor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        return {"utilization": [], "count": 0}

    @mcp.tool()
    def tool_track_asset_depreciation(
        model_category: str | None = None, useful_life_years: int | None = None, limit: int = 100
    ) -> dict[str, Any]:
        failure = rec.note("tool_track_asset_depreciation", model_category=model_category, limit=limit)
        return failure or {"assets": [{"asset_tag": "P100002", "remaining_life_years": 0.4}], "count": 1}

    @mcp.tool()
    def tool_find_underutilized_assets(days_threshold: int = 90, limit: int = 50) -> dict[str, Any]:
        return {"assets": [], "count": 0}

    @mcp.tool()
    def tool_reconcile_assets_to_cis(model_category: str | None = None, limit: int = 200) -> dict[str, Any]:
        failure = rec.note("tool_reconcile_assets_to_cis", model_category=model_category, limit=limit)
        return failure or {"matched": [], "matched_count": 140, "unmatched_assets": [], "unmatched_assets_count": 13}

    @mcp.tool()
    def tool_get_asset_health_metrics(location: str | None = None, model_category: str | None = None) -> dict[str, Any]:
        return {"total_assets": 153}

    @mcp.tool()
    def tool_find_expiring_contracts(
        days_ahead: int = 90, vendor: str | None = None, include_expired: bool = False, limit: int = 50
    ) -> dict[str, Any]:
        return {"contracts": [], "count": 0}

    return mcp


# ---- snow-itom-auditor -------------------------------------------------------------------------------------------


def audit_result(audit_type: str, errors: int = 0) -> dict[str, Any]:
    """An audit result as the auditor returns it; ``errors`` checks end in ``error`` (ServiceNow unreachable)."""
    checks = [
        {"name": f"check_{i}", "description": "Check failed: Connection refused", "severity": "medium"}
        | {"status": "error"}
        for i in range(errors)
    ] + [{"name": "stale_records", "description": "Stale CI rate", "severity": "high", "status": "pass"}]
    passed = len(checks) - errors
    return {
        "id": str(uuid.uuid4()),
        "audit_type": audit_type,
        "checks": checks,
        "score": {"overall_score": 100.0 if not errors else 50.0},
        "status": "completed_with_errors" if errors else "passed",
        "summary": f"{passed} passed, 0 failed, {errors} errors out of {len(checks)} checks",
    }


def auditor_server(rec: Recorder, *, check_errors: Callable[[], int] = lambda: 0) -> FastMCP:
    mcp = FastMCP("snow-itom-auditor")

    def audit(tool: str, audit_type: str, **args: Any) -> dict[str, Any]:
        return rec.note(tool, **args) or audit_result(audit_type, check_errors())

    @mcp.tool()
    def audit_cmdb(severity_filter: str | None = None) -> dict:
        return audit("audit_cmdb", "cmdb", severity_filter=severity_filter)

    @mcp.tool()
    def audit_discovery() -> dict:
        return audit("audit_discovery", "discovery")

    @mcp.tool()
    def audit_assets() -> dict:
        return audit("audit_assets", "asset")

    @mcp.tool()
    def audit_full() -> dict:
        return audit("audit_full", "full")

    @mcp.tool()
    def compliance_rules(category: str | None = None) -> dict:
        rules = [{"name": "stale_records", "category": "cmdb", "severity": "high"}]
        return rec.note("compliance_rules", category=category) or {"rules": rules, "total_count": 1}

    @mcp.tool()
    def compliance_score(audit_type: str | None = None) -> dict:
        return {"status": "no_data", "message": "No audit results found. Run an audit first."}

    @mcp.tool()
    def compliance_report(audit_id: str | None = None, audit_type: str = "full", report_format: str = "json") -> dict:
        failure = rec.note("compliance_report", audit_id=audit_id, audit_type=audit_type, report_format=report_format)
        if failure is not None:
            return failure
        result = audit_result(audit_type, check_errors())
        summary = {"overall_score": result["score"]["overall_score"], "grade": "A", "summary": result["summary"]}
        return {"audit_id": result["id"], "executive_summary": summary, "recommendations": [], "format": report_format}

    @mcp.tool()
    def audit_history(audit_type: str | None = None, limit: int = 10) -> dict:
        return {"results": [], "total_returned": 0}

    @mcp.tool()
    def audit_compare(audit_id_1: str = "", audit_id_2: str = "") -> dict:
        if not audit_id_1 or not audit_id_2:
            return {"status": "error", "message": "Both audit_id_1 and audit_id_2 are required"}
        return {"delta": 0}

    @mcp.tool()
    def remediation_create(audit_id: str = "") -> dict:
        return {"status": "error", "message": "audit_id is required"} if not audit_id else {"plan_id": "p1"}

    @mcp.tool()
    def remediation_progress(plan_id: str = "") -> dict:
        return {"status": "error", "message": "plan_id is required"} if not plan_id else {"progress_pct": 0}

    @mcp.tool()
    def remediation_validate(plan_id: str = "", item_id: str = "") -> dict:
        return {"status": "error", "message": "Both plan_id and item_id are required"}

    @mcp.tool()
    def health_check() -> dict:
        return {"status": "healthy", "instance": "https://example.service-now.invalid"}

    return mcp


# ---- CMDB agent (not public: the tools the chat UI calls, with their arguments) ----


def cmdb_server(rec: Recorder) -> FastMCP:
    mcp = FastMCP("snow-cmdb-agent")
    ci = {"sys_id": "c" * 32, "name": "web-prod-01", "sys_class_name": "cmdb_ci_linux_server"}

    def reply(tool: str, body: dict[str, Any], **args: Any) -> dict[str, Any]:
        return rec.note(tool, **args) or body

    @mcp.tool()
    def search_configuration_items(
        ci_type: str | None = None, environment: str | None = None, query: str | None = None, limit: int = 10
    ) -> dict[str, Any]:
        args = {"ci_type": ci_type, "environment": environment, "query": query, "limit": limit}
        return reply("search_configuration_items", {"records": [ci], "count": 1}, **args)

    @mcp.tool()
    def find_stale_configuration_items(ci_type: str = "server", days: int = 90, limit: int = 50) -> dict[str, Any]:
        body = {"stale_cis": [ci], "count": 1, "days_threshold": days}
        return reply("find_stale_configuration_items", body, ci_type=ci_type, days=days, limit=limit)

    @mcp.tool()
    def find_duplicate_configuration_items(ci_type: str = "server", match_field: str = "name") -> dict[str, Any]:
        body = {"duplicate_groups": [], "total_groups": 0}
        return reply("find_duplicate_configuration_items", body, ci_type=ci_type, match_field=match_field)

    @mcp.tool()
    def get_cmdb_health_metrics(ci_type: str = "server") -> dict[str, Any]:
        return reply("get_cmdb_health_metrics", {"overall_health_score": 87.5, "ci_type": ci_type}, ci_type=ci_type)

    @mcp.tool()
    def get_cmdb_health_trend_report(ci_type: str | None = None, days: int = 30) -> dict[str, Any]:
        body = {"lookback_days": days, "snapshots": [{"timestamp": "2026-11-01", "overall_health_score": 85}]}
        return reply("get_cmdb_health_trend_report", body, ci_type=ci_type, days=days)

    @mcp.tool()
    def get_operational_dashboard() -> dict[str, Any]:
        return reply("get_operational_dashboard", {"total_cis": 290, "health_score": 87.5})

    @mcp.tool()
    def query_ci_dependency_tree(ci_sys_id: str, depth: int = 3) -> dict[str, Any]:
        body = {"root": ci, "tree": [], "total_nodes": 1}
        return reply("query_ci_dependency_tree", body, ci_sys_id=ci_sys_id, depth=depth)

    @mcp.tool()
    def analyze_configuration_item_impact(ci_sys_id: str) -> dict[str, Any]:
        body = {"ci": ci, "impacted_cis": [ci], "change_type": "unknown"}
        return reply("analyze_configuration_item_impact", body, ci_sys_id=ci_sys_id)

    @mcp.tool()
    def get_configuration_item_history(ci_sys_id: str, limit: int = 20) -> dict[str, Any]:
        body = {"history": [{"sys_updated_on": "2026-11-01", "field": "os", "new_value": "RHEL 9"}]}
        return reply("get_configuration_item_history", body, ci_sys_id=ci_sys_id, limit=limit)

    @mcp.tool()
    def reconcile_cmdb_configuration_data(ci_type: str = "server", dry_run: bool = True) -> dict[str, Any]:
        body = {"field_drift": {"status": "ok", "count": 0, "issues": []}}
        return reply("reconcile_cmdb_configuration_data", body, ci_type=ci_type, dry_run=dry_run)

    @mcp.tool()
    def get_ire_rules_for_class(ci_class: str) -> dict[str, Any]:
        return reply("get_ire_rules_for_class", {"ci_class": ci_class, "rules": ["serial_number"]}, ci_class=ci_class)

    @mcp.tool()
    def list_ci_classes_with_ire() -> dict[str, Any]:
        return reply("list_ci_classes_with_ire", {"classes": ["cmdb_ci_server"]})

    @mcp.tool()
    def list_ci_types() -> dict[str, Any]:
        return reply("list_ci_types", {"server": {"fields": ["name", "os"]}})

    @mcp.tool()
    def get_agent_status() -> dict[str, Any]:
        return reply("get_agent_status", {"status": "running", "tools": 38})

    @mcp.tool()
    def health() -> dict[str, Any]:
        return reply("health", {"status": "healthy"})

    return mcp


# ---- CSA agent (not public: as the chat UI's prompt calls it) ---------------------------


def csa_server(rec: Recorder) -> FastMCP:
    mcp = FastMCP("snow-csa-agent")

    @mcp.tool()
    def execute_pipeline(user_request: str) -> dict[str, Any]:
        body = {"success": True, "outcome": "completed", "catalog_spec": {"name": "Server remediation"}}
        return rec.note("execute_pipeline", user_request=user_request) or body

    @mcp.tool()
    def create_service_request(description: str) -> dict[str, Any]:
        body = {"success": True, "req_number": "REQ0010001", "req_sys_id": "d" * 32}
        return rec.note("create_service_request", description=description) or body

    @mcp.tool()
    def create_remediation_request(
        remediation_type: str,
        remediation_mode: str,
        issue_summary: str,
        affected_cis: list[dict[str, Any]],
        proposed_action: str,
        risk_level: str = "low",
        estimated_impact: str = "",
    ) -> dict[str, Any]:
        args = {
            "remediation_type": remediation_type,
            "remediation_mode": remediation_mode,
            "issue_summary": issue_summary,
            "affected_cis": affected_cis,
            "proposed_action": proposed_action,
            "risk_level": risk_level,
            "estimated_impact": estimated_impact,
        }
        body = {"success": True, "request_number": "REQ0010002", "ritm_number": "RITM0010002", "task_count": 0}
        return rec.note("create_remediation_request", **args) or body

    @mcp.tool()
    def check_approval_status(ritm_sys_id: str) -> dict[str, Any]:
        return rec.note("check_approval_status", ritm_sys_id=ritm_sys_id) or {"success": True, "approval": "requested"}

    @mcp.tool()
    def approve_remediation_request(ritm_sys_id: str, comments: str = "") -> dict[str, Any]:
        return {"success": True}

    @mcp.tool()
    def reject_remediation_request(ritm_sys_id: str, comments: str) -> dict[str, Any]:
        return {"success": True}

    @mcp.tool()
    def get_request_details(req_sys_id: str) -> dict[str, Any]:
        return {"success": True, "request": {"sys_id": req_sys_id}}

    return mcp


# ---- documentator (no public server: the legacy registry's capability names) ---------------------------------


def documentator_server(rec: Recorder) -> FastMCP:
    mcp = FastMCP("snow-itom-documentator")

    @mcp.tool()
    def generate_documentation(report_type: str = "summary", title: str | None = None) -> dict[str, Any]:
        body = {"number": "DOC0001", "markdown": f"# {title or report_type}"}
        return rec.note("generate_documentation", report_type=report_type, title=title) or body

    @mcp.tool()
    def create_runbook(ci_id: str) -> dict[str, Any]:
        return rec.note("create_runbook", ci_id=ci_id) or {"number": "DOC0002", "markdown": f"# Runbook {ci_id}"}

    @mcp.tool()
    def update_knowledge_base(title: str, body: str) -> dict[str, Any]:
        return rec.note("update_knowledge_base", title=title, body=body) or {"number": "KB0010001"}

    @mcp.tool()
    def generate_architecture_diagram(ci_id: str) -> dict[str, Any]:
        return rec.note("generate_architecture_diagram", ci_id=ci_id) or {"mermaid": "graph TD"}

    return mcp


SERVER_FACTORIES: dict[str, Callable[[Recorder], FastMCP]] = {
    "cmdb-agent": cmdb_server,
    "discovery-agent": discovery_server,
    "asset-agent": asset_server,
    "csa-agent": csa_server,
    "itom-auditor": auditor_server,
    "itom-documentator": documentator_server,
}


# ---- serving them over HTTP, with restarts ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SESSION_HEADER = b"mcp-session-id"
_SESSION_NOT_FOUND = json.dumps(
    {"jsonrpc": "2.0", "id": "server-error", "error": {"code": -32600, "message": "Session not found"}}
).encode()


async def _json_reply(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _SessionsOfThisRun:
    """ASGI wrapper making the server behave like a fastmcp 2.x one: it speaks only the initialize handshake
    (``server/discover`` is an unknown method, so clients fall back to a session with an ``mcp-session-id``),
    and a session id it did not hand out since it (re)started gets HTTP 404 "Session not found"."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.known: set[str] = set()
        self.refused = 0
        self.forget_every_session = False  # a server that loses each session at once (restarting in a loop)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = dict(scope.get("headers") or []).get(_SESSION_HEADER)
        if session is not None and (self.forget_every_session or session.decode() not in self.known):
            self.refused += 1
            await _json_reply(send, 404, _SESSION_NOT_FOUND)
            return
        if scope.get("method") == "POST" and session is None:
            body, receive = await _read_body(receive)
            request = json.loads(body or b"{}")
            if isinstance(request, dict) and request.get("method") == "server/discover":
                error = {"code": -32601, "message": "Method not found"}
                reply = {"jsonrpc": "2.0", "id": request.get("id"), "error": error}
                await _json_reply(send, 200, json.dumps(reply).encode())
                return

        async def noting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                issued = dict(message.get("headers") or []).get(_SESSION_HEADER)
                if issued is not None:
                    self.known.add(issued.decode())
            await send(message)

        await self.app(scope, receive, noting)


async def _read_body(receive: Any) -> tuple[bytes, Any]:
    """The whole request body, and a receive that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


class SiblingHTTP:
    """One fixture server on a loopback port, over streamable HTTP at ``/mcp``; ``restart()`` keeps the port."""

    def __init__(self, build: Callable[[], FastMCP]) -> None:
        self.build = build
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.sessions: _SessionsOfThisRun | None = None

    def start(self) -> SiblingHTTP:
        self.sessions = _SessionsOfThisRun(self.build().http_app(path="/mcp"))
        # "critical": stopping a server under a client's open event stream logs a cancelled request, by design
        config = uvicorn.Config(
            self.sessions,
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"fixture MCP server on port {self.port} did not start")
            time.sleep(0.02)  # polling a server that is starting, bounded by the deadline
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
        self.server = self.thread = None

    def restart(self) -> None:
        """Stop and start a fresh server process state on the same port: every old session is unknown."""
        self.stop()
        self.start()
