"""How each catalog action is called on its agent's real MCP server: which tool, with which arguments.

Why a table of small functions: the sibling agents' tools do not take our parameters. The discovery tools
want an ``action`` verb, the asset tools filter by ``product``/``model_category``, the auditor has one tool per
audit scope, the CMDB tools say ``ci_type`` and ``ci_sys_id``. Each function below turns an action's bound
parameters into one tool call in the tool's own vocabulary; the bridge then checks the call against the
tool's ``inputSchema`` before sending it.

A parameter the tool has no counterpart for is listed as ``unsupported``: left at its default it is not
sent; set to anything else the step fails with ORCH_7003 naming it (never silently dropped).
``tool_args`` (a parameter of every mapped action) adds or overrides arguments in the tool's own names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.catalog import AUDIT_TOOLS, ActionSpec, tool_for
from orchestrator.errors import TaskInvalidError
from workers.handlers.common import ci_class_value, collect_cis

_SYS_ID = re.compile(r"^[0-9a-f]{32}$", re.IGNORECASE)
_SHORT_TYPES = {"cmdb_ci_appl": "application", "cmdb_ci_netgear": "network_gear"}


@dataclass(frozen=True)
class ToolCall:
    """One call: the tool's name and its arguments (``None`` values are not sent)."""

    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class CallInput:
    """What a builder reads: the action's bound parameters and, lazily, the run's earlier results."""

    params: Mapping[str, Any]
    earlier: Callable[[], dict[str, Any]] = field(default=lambda: {})

    def __getitem__(self, name: str) -> Any:
        return self.params.get(name)


Builder = Callable[[CallInput], ToolCall]


@dataclass(frozen=True)
class ActionMapping:
    """An action's builder and the parameters its tool has no counterpart for."""

    build: Builder
    unsupported: tuple[str, ...] = ()


MAPPINGS: dict[str, ActionMapping] = {}


def _maps(action: str, *, unsupported: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        MAPPINGS[action] = ActionMapping(build, unsupported)
        return build

    return register


def ci_type(value: Any) -> str | None:
    """Our CI class (``cmdb_ci_linux_server``, ``servers``) in the CMDB agent's ``ci_type`` form (``linux_server``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        table = ci_class_value(value)
    except TaskInvalidError:  # a class our sample does not know: the real CMDB may
        return value.strip().lower().removeprefix("cmdb_ci_")
    return _SHORT_TYPES.get(table, table.removeprefix("cmdb_ci_"))


def ci_table(value: Any) -> str | None:
    """Our CI class as a table name (``cmdb_ci_server``), as IRE rules are keyed."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return ci_class_value(value)
    except TaskInvalidError:
        key = value.strip().lower()
        return key if key.startswith("cmdb_ci_") else f"cmdb_ci_{key}"


# ---- cmdb-agent (tool names and arguments as the chat UI's prompt uses them) ---------


def _search(p: CallInput, limit: Any) -> ToolCall:
    query = f"nameLIKE{p['name']}" if p["name"] else None
    args = {"ci_type": ci_type(p["ci_class"]), "environment": p["environment"], "query": query, "limit": limit}
    return ToolCall("search_configuration_items", args)


_maps("cmdb.query")(lambda p: _search(p, p["limit"]))
_maps("cmdb.count")(lambda p: _search(p, 1))
_maps("cmdb.health_audit", unsupported=("stale_days",))(
    lambda p: ToolCall("get_cmdb_health_metrics", {"ci_type": ci_type(p["ci_class"])})
)
_maps("cmdb.map_relationships", unsupported=("depth",))(
    lambda p: ToolCall("analyze_configuration_item_impact", {"ci_sys_id": p["ci_id"]})
)
_maps("cmdb.stale")(
    lambda p: ToolCall(
        "find_stale_configuration_items", {"ci_type": ci_type(p["ci_class"]), "days": p["days"], "limit": p["limit"]}
    )
)
_maps("cmdb.duplicates")(
    lambda p: ToolCall(
        "find_duplicate_configuration_items", {"ci_type": ci_type(p["ci_class"]), "match_field": p["match_field"]}
    )
)
_maps("cmdb.health_trend")(
    lambda p: ToolCall("get_cmdb_health_trend_report", {"ci_type": ci_type(p["ci_class"]), "days": p["days"]})
)
_maps("cmdb.dashboard")(lambda p: ToolCall("get_operational_dashboard", {}))
_maps("cmdb.dependency_tree")(
    lambda p: ToolCall("query_ci_dependency_tree", {"ci_sys_id": p["ci_id"], "depth": p["depth"]})
)
_maps("cmdb.history")(
    lambda p: ToolCall("get_configuration_item_history", {"ci_sys_id": p["ci_id"], "limit": p["limit"]})
)
_maps("cmdb.reconcile")(
    lambda p: ToolCall("reconcile_cmdb_configuration_data", {"ci_type": ci_type(p["ci_class"]), "dry_run": True})
)
_maps("cmdb.ire_rules")(lambda p: ToolCall("get_ire_rules_for_class", {"ci_class": ci_table(p["ci_class"])}))
_maps("cmdb.ci_types")(lambda p: ToolCall("list_ci_types", {}))
_maps("cmdb.activity", unsupported=("ci_class", "limit"))(lambda p: ToolCall("get_agent_status", {}))
_maps("cmdb.health_check")(lambda p: ToolCall("health", {}))


# ---- snow-discovery-agent: every tool but the health one takes a required ``action`` verb ---------------------


@_maps("discovery.scan")
def _scan(p: CallInput) -> ToolCall:
    if p["schedule_id"]:
        return ToolCall("schedule_discovery_scan", {"action": "trigger", "schedule_sys_id": p["schedule_id"]})
    name = f"itom-orchestrator {p['scan_type'] or 'full'} scan of {p['ip_range']}"
    return ToolCall("schedule_discovery_scan", {"action": "create", "name": name, "discover_type": "IP"})


@_maps("discovery.status", unsupported=("schedule_id",))
def _status(p: CallInput) -> ToolCall:
    if p["scan_id"]:
        return ToolCall("get_discovery_status", {"action": "details", "scan_sys_id": p["scan_id"]})
    return ToolCall("get_discovery_status", {"action": "list", "limit": p["limit"]})


@_maps("discovery.reconcile")
def _analyze(p: CallInput) -> ToolCall:
    if p["scan_id"]:
        return ToolCall("analyze_discovery_results", {"action": "analyze", "scan_sys_id": p["scan_id"]})
    return ToolCall("analyze_discovery_results", {"action": "trend"})


_maps("discovery.schedule")(
    lambda p: ToolCall("list_discovery_schedules", {"action": "list", "active": True if p["active_only"] else None})
)


# ---- snow-asset-agent ------------------------------------------------------------------------------------------


@_maps("asset.query")
def _assets(p: CallInput) -> ToolCall:
    kind = p["asset_type"]
    if kind == "software":
        for name in ("status", "assigned_to"):
            if p[name] is not None:
                raise _unsupported("asset.query", name, "tool_query_software_licenses")
        return ToolCall("tool_query_software_licenses", {"limit": p["limit"]})
    if kind == "consumable":
        raise TaskInvalidError(
            "asset_type 'consumable' has no tool on the asset agent's MCP server (it queries hardware assets and "
            "software licences); use asset_type 'hardware' or 'software'.",
            {"action": "asset.query", "parameter": "asset_type"},
        )
    args = {"status": p["status"], "assigned_to": p["assigned_to"], "limit": p["limit"]}
    return ToolCall("tool_query_hardware_assets", args)


@_maps("asset.lifecycle", unsupported=("horizon_days",))
def _lifecycle(p: CallInput) -> ToolCall:
    ref = p["asset_id"]
    if ref:
        key = "sys_id" if _SYS_ID.match(str(ref)) else "asset_tag"
        return ToolCall("tool_get_asset_lifecycle", {key: ref})
    return ToolCall("tool_track_asset_depreciation", {})


_maps("asset.reconcile")(lambda p: ToolCall("tool_reconcile_assets_to_cis", {}))
_maps("asset.license_check")(lambda p: ToolCall("tool_check_license_compliance", {"product": p["software"]}))


# ---- csa-agent (tool names and arguments as the chat UI's prompt uses them) ----------


def _affected(p: CallInput) -> list[dict[str, Any]]:
    return [
        {"sys_id": ci["sys_id"], "name": ci.get("name"), "ci_class": ci.get("sys_class_name")}
        for ci in collect_cis(p.earlier().values(), limit=100)
    ]


@_maps("csa.plan_fulfillment")
def _pipeline(p: CallInput) -> ToolCall:
    request = p["request"]
    if not request:
        names = [str(ci["name"]) for ci in _affected(p)]
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        request = f"Plan the fulfilment of a remediation for {len(names)} affected CI(s): {listed or 'none found'}"
    return ToolCall("execute_pipeline", {"user_request": request})


@_maps("csa.run_remediation")
def _remediation(p: CallInput) -> ToolCall:
    affected = _affected(p)
    summary = p["summary"] or f"Remediation of {len(affected)} configuration item(s)"
    args = {
        "remediation_type": p["remediation_type"],
        "remediation_mode": p["remediation_mode"],
        "issue_summary": summary,
        "affected_cis": affected,
        "proposed_action": summary,
        "risk_level": p["risk_level"],
        "estimated_impact": f"{len(affected)} CI(s) affected",
    }
    return ToolCall("create_remediation_request", args)


_maps("csa.create_request", unsupported=("catalog_item",))(
    lambda p: ToolCall("create_service_request", {"description": p["description"]})
)
_maps("csa.request_status")(lambda p: ToolCall("check_approval_status", {"ritm_sys_id": p["request_id"]}))


# ---- snow-itom-auditor -----------------------------------------------------------------------------------------

_maps("audit.compliance")(lambda p: ToolCall(AUDIT_TOOLS[str(p["scope"] or "full")], {}))
_maps("audit.drift")(lambda p: ToolCall("audit_discovery", {}))
_maps("audit.report")(
    lambda p: ToolCall("compliance_report", {"audit_id": p["audit_id"], "audit_type": "full", "report_format": "json"})
)
_maps("audit.policy")(lambda p: ToolCall("compliance_rules", {"category": p["category"]}))


# ---- itom-documentator (no public server: the legacy registry's capability names, our parameters) -----------

_maps("documentation.generate")(
    lambda p: ToolCall("generate_documentation", {"report_type": p["report_type"], "title": p["title"]})
)
_maps("documentation.runbook")(lambda p: ToolCall("create_runbook", {"ci_id": p["ci_id"]}))
_maps("documentation.knowledge_base")(
    lambda p: ToolCall("update_knowledge_base", {"title": p["title"], "body": p["body"]})
)
_maps("documentation.diagram")(lambda p: ToolCall("generate_architecture_diagram", {"ci_id": p["ci_id"]}))


# ---- the entry point -------------------------------------------------------------------------------------------


def _unsupported(action: str, name: str, tool: str) -> TaskInvalidError:
    return TaskInvalidError(
        f"Parameter '{name}' of '{action}' has no counterpart in the MCP tool '{tool}' of the agent's server; leave it "
        f"out, or pass the tool's own argument in 'tool_args'.",
        {"action": action, "parameter": name, "tool": tool},
    )


def tool_call(spec: ActionSpec, params: Mapping[str, Any], earlier: Callable[[], dict[str, Any]]) -> ToolCall:
    """The tool call that runs ``spec`` with its bound ``params`` on a bridged agent.

    Raises ORCH_7003 when the action has no sibling tool, or a parameter set away from its default has no
    counterpart in the tool.
    """
    mapping = MAPPINGS.get(spec.name)
    if mapping is None or not spec.tools:
        raise TaskInvalidError(
            f"Action '{spec.name}' has no tool on agent '{spec.agent_id}''s MCP server (none of the sibling agents "
            f"offers one); it runs only on the built-in agent, so unset ORCH_AGENTS__"
            f"{spec.agent_id.upper().replace('-', '_')}__MCP_URL to use it.",
            {"action": spec.name, "agent_id": spec.agent_id},
        )
    defaults = {p.name: p.default for p in spec.params}
    call = mapping.build(CallInput(params, earlier))
    for name in mapping.unsupported:
        if params.get(name) != defaults.get(name):
            raise _unsupported(spec.name, name, call.tool)
    extra = params.get("tool_args") or {}
    if not isinstance(extra, Mapping):
        raise TaskInvalidError("'tool_args' must be an object of tool argument names to values.", {"action": spec.name})
    arguments = {k: v for k, v in {**call.arguments, **extra}.items() if v is not None}
    assert call.tool == tool_for(spec, dict(params)), f"{spec.name}: builder and catalog disagree on the tool"
    return ToolCall(call.tool, arguments)
