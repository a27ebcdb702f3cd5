"""One vocabulary: agents and their actions, ``<domain>.<verb>``.

Templates name actions, policies allow actions, workers run actions and the audit log records actions.
Three older vocabularies (role actions, template capability names, agent MCP tool names) all map
onto the names below (``LEGACY_ACTIONS`` and ``ActionSpec.mcp_tool``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.errors import AgentNotFoundError, TaskInvalidError
from orchestrator.models.common import Access
from orchestrator.models.workflow import TemplateParameter

P = TemplateParameter

DOMAINS: tuple[str, ...] = ("cmdb", "discovery", "asset", "csa", "audit", "documentation", "orchestration")


@dataclass(frozen=True)
class ActionSpec:
    """What one action is: who runs it, what it touches, and how it may be retried."""

    name: str
    agent_id: str
    access: Access
    idempotent: bool
    description: str
    params: tuple[TemplateParameter, ...] = ()
    timeout_seconds: float = 30.0
    max_retries: int = 2
    mcp_tool: str | None = None
    alt_tools: tuple[str, ...] = ()
    local: bool = False

    @property
    def domain(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tools(self) -> tuple[str, ...]:
        """Every sibling MCP tool this action may call (the main one first); empty when it has none."""
        return (self.mcp_tool, *self.alt_tools) if self.mcp_tool else ()


@dataclass(frozen=True)
class AgentSpec:
    """An agent as the registry shows it (the compatible registry fields)."""

    agent_id: str
    name: str
    domain: str
    description: str
    project: str
    actions: tuple[str, ...] = field(default_factory=tuple)


_R, _W, _X = Access.READ, Access.WRITE, Access.EXECUTE
_CI = P(name="ci_id", type="string", required=True, description="CI sys_id or name")
_LIMIT = P(name="limit", type="integer", default=50, description="Maximum rows returned")
_CLASS = P(name="ci_class", default=None, description="CI class, e.g. server, linux_server or cmdb_ci_database")
TOOL_ARGS = "tool_args"
_TOOL_ARGS = P(
    name=TOOL_ARGS,
    type="object",
    default=None,
    description="Extra arguments for the agent's MCP tool (bridged agents only; checked against the tool's schema)",
)
_REPORT = P(name="report_type", type="string", default="summary", enum=["summary", "health", "audit", "lifecycle"])


def _with_tool_args(spec: ActionSpec) -> ActionSpec:
    """Actions that map to a sibling tool also take ``tool_args``: more arguments for that tool, as it names them."""
    return replace(spec, params=(*spec.params, _TOOL_ARGS)) if spec.mcp_tool else spec


ACTIONS: dict[str, ActionSpec] = {
    a.name: _with_tool_args(a)
    for a in (
        # cmdb-agent
        ActionSpec("cmdb.ping", "cmdb-agent", _R, True, "No-op round trip (health and benchmarks)", local=True),
        ActionSpec(
            "cmdb.query",
            "cmdb-agent",
            _R,
            True,
            "Search configuration items",
            (
                P(name="ci_class", default=None),
                P(name="name", default=None),
                P(name="environment", default=None),
                _LIMIT,
            ),
            mcp_tool="search_configuration_items",
        ),
        ActionSpec(
            "cmdb.health_audit",
            "cmdb-agent",
            _R,
            True,
            "Find duplicate, stale and incomplete CIs",
            (P(name="ci_class", default=None), P(name="stale_days", type="integer", default=90)),
            timeout_seconds=60,
            mcp_tool="get_cmdb_health_metrics",
        ),
        ActionSpec(
            "cmdb.map_relationships",
            "cmdb-agent",
            _R,
            True,
            "Impact analysis: walk the CI relationship graph",
            (_CI, P(name="depth", type="integer", default=3)),
            mcp_tool="analyze_configuration_item_impact",
        ),
        ActionSpec(
            "cmdb.update",
            "cmdb-agent",
            _W,
            False,
            "Update fields of a CI",
            (_CI, P(name="fields", type="object", required=True)),
            timeout_seconds=60,
            max_retries=0,
        ),
        ActionSpec(
            "cmdb.create",
            "cmdb-agent",
            _W,
            False,
            "Create a CI",
            (
                P(name="ci_class", required=True),
                P(name="name", required=True),
                P(name="fields", type="object", default=None),
            ),
            timeout_seconds=60,
            max_retries=0,
        ),
        ActionSpec(
            "cmdb.delete",
            "cmdb-agent",
            _W,
            False,
            "Retire a CI",
            (_CI,),
            timeout_seconds=60,
            max_retries=0,
        ),
        ActionSpec(
            "cmdb.bulk_operations",
            "cmdb-agent",
            _W,
            False,
            "Apply one field update to many CIs",
            (P(name="ci_ids", type="array", required=True), P(name="fields", type="object", required=True)),
            timeout_seconds=120,
            max_retries=0,
        ),
        ActionSpec(
            "cmdb.count",
            "cmdb-agent",
            _R,
            True,
            "Count configuration items",
            (_CLASS, P(name="environment", default=None), P(name="name", default=None)),
            mcp_tool="search_configuration_items",
        ),
        ActionSpec(
            "cmdb.stale",
            "cmdb-agent",
            _R,
            True,
            "Find stale configuration items (not updated for a number of days)",
            (_CLASS, P(name="days", type="integer", default=90), _LIMIT),
            mcp_tool="find_stale_configuration_items",
        ),
        ActionSpec(
            "cmdb.duplicates",
            "cmdb-agent",
            _R,
            True,
            "Find duplicate configuration items",
            (_CLASS, P(name="match_field", default="name", enum=["name", "serial_number"])),
            mcp_tool="find_duplicate_configuration_items",
        ),
        ActionSpec(
            "cmdb.health_trend",
            "cmdb-agent",
            _R,
            True,
            "CMDB health trend over time",
            (_CLASS, P(name="days", type="integer", default=90)),
            timeout_seconds=60,
            mcp_tool="get_cmdb_health_trend_report",
        ),
        ActionSpec(
            "cmdb.dashboard",
            "cmdb-agent",
            _R,
            True,
            "CMDB operational dashboard",
            (),
            mcp_tool="get_operational_dashboard",
        ),
        ActionSpec(
            "cmdb.dependency_tree",
            "cmdb-agent",
            _R,
            True,
            "A CI's relationships: what it depends on and what depends on it",
            (_CI, P(name="depth", type="integer", default=2)),
            mcp_tool="query_ci_dependency_tree",
        ),
        ActionSpec(
            "cmdb.history",
            "cmdb-agent",
            _R,
            True,
            "A CI's change history",
            (_CI, P(name="limit", type="integer", default=20, description="Maximum entries returned")),
            mcp_tool="get_configuration_item_history",
        ),
        ActionSpec(
            "cmdb.reconcile",
            "cmdb-agent",
            _R,
            True,
            "Data reconciliation (dry run): CMDB records that drift from what discovery saw",
            (_CLASS,),
            timeout_seconds=60,
            mcp_tool="reconcile_cmdb_configuration_data",
        ),
        ActionSpec(
            "cmdb.ire_rules",
            "cmdb-agent",
            _R,
            True,
            "Identification and reconciliation (IRE) rules of a CI class",
            (P(name="ci_class", default="server", description="CI class, e.g. server or cmdb_ci_linux_server"),),
            mcp_tool="get_ire_rules_for_class",
        ),
        ActionSpec("cmdb.ci_types", "cmdb-agent", _R, True, "CI types and their fields", (), mcp_tool="list_ci_types"),
        ActionSpec("cmdb.relationship_types", "cmdb-agent", _R, True, "CI relationship types in use", ()),
        ActionSpec(
            "cmdb.activity",
            "cmdb-agent",
            _R,
            True,
            "Recent CI activity and CMDB audit statistics",
            (_CLASS, P(name="limit", type="integer", default=20, description="Maximum entries returned")),
            mcp_tool="get_agent_status",
        ),
        ActionSpec("cmdb.health_check", "cmdb-agent", _R, True, "The CMDB agent's own health", (), mcp_tool="health"),
        # discovery-agent
        ActionSpec(
            "discovery.scan",
            "discovery-agent",
            _X,
            True,
            "Run a discovery scan over an IP range",
            (
                P(name="ip_range", default="10.0.0.0/16"),
                P(name="scan_type", default="full", enum=["full", "incremental"]),
                P(name="schedule_id", default=None, description="Run this existing discovery schedule instead"),
            ),
            timeout_seconds=120,
            mcp_tool="schedule_discovery_scan",
        ),
        ActionSpec(
            "discovery.status",
            "discovery-agent",
            _R,
            True,
            "Status of recent discovery scans",
            (P(name="schedule_id", default=None), P(name="scan_id", default=None), _LIMIT),
            mcp_tool="get_discovery_status",
        ),
        ActionSpec(
            "discovery.reconcile",
            "discovery-agent",
            _W,
            False,
            "Reconcile discovered devices into the CMDB",
            (P(name="scan_id", default=None),),
            timeout_seconds=60,
            max_retries=0,
            mcp_tool="analyze_discovery_results",
        ),
        ActionSpec(
            "discovery.schedule",
            "discovery-agent",
            _R,
            True,
            "List discovery schedules",
            (P(name="active_only", type="boolean", default=False),),
            mcp_tool="list_discovery_schedules",
        ),
        # asset-agent
        ActionSpec(
            "asset.query",
            "asset-agent",
            _R,
            True,
            "Query hardware and software assets",
            (
                P(name="asset_type", default=None, enum=[None, "hardware", "software", "consumable"]),
                P(name="status", default=None),
                P(name="assigned_to", default=None),
                _LIMIT,
            ),
            mcp_tool="tool_query_hardware_assets",
            alt_tools=("tool_query_software_licenses",),
        ),
        ActionSpec(
            "asset.lifecycle",
            "asset-agent",
            _R,
            True,
            "Assets past or near end of life",
            (
                P(name="horizon_days", type="integer", default=180),
                P(name="asset_id", default=None, description="One asset (sys_id or asset tag) instead of all"),
            ),
            mcp_tool="tool_get_asset_lifecycle",
            alt_tools=("tool_track_asset_depreciation",),
        ),
        ActionSpec(
            "asset.reconcile",
            "asset-agent",
            _W,
            False,
            "Link assets to their CIs",
            (),
            timeout_seconds=60,
            max_retries=0,
            mcp_tool="tool_reconcile_assets_to_cis",
        ),
        ActionSpec(
            "asset.license_check",
            "asset-agent",
            _R,
            True,
            "Licence compliance: installs vs entitlements",
            (P(name="software", default=None),),
            mcp_tool="tool_check_license_compliance",
        ),
        # csa-agent
        ActionSpec(
            "csa.list_catalog",
            "csa-agent",
            _R,
            True,
            "List service catalog items",
            (P(name="category", default=None),),
        ),
        ActionSpec(
            "csa.plan_fulfillment",
            "csa-agent",
            _R,
            True,
            "Pick the catalog item and assignment group for earlier findings",
            (P(name="request", default=None, description="What to fulfil (default: the earlier steps' findings)"),),
            mcp_tool="execute_pipeline",
        ),
        ActionSpec(
            "csa.run_remediation",
            "csa-agent",
            _W,
            False,
            "Create a remediation ticket",
            (
                P(name="summary", default=None),
                P(name="risk_level", default="low", enum=["low", "medium", "high"]),
                P(
                    name="remediation_type",
                    default="missing_data",
                    enum=["missing_data", "duplicate_merge", "stale_retirement"],
                ),
                P(name="remediation_mode", default="manual", enum=["manual", "agent"]),
            ),
            timeout_seconds=60,
            max_retries=0,
            mcp_tool="create_remediation_request",
        ),
        ActionSpec(
            "csa.create_request",
            "csa-agent",
            _W,
            False,
            "Create a service request",
            (P(name="description", required=True), P(name="catalog_item", default=None)),
            timeout_seconds=60,
            max_retries=0,
            mcp_tool="create_service_request",
        ),
        ActionSpec(
            "csa.request_status",
            "csa-agent",
            _R,
            True,
            "Status of a service or remediation request",
            (P(name="request_id", required=True),),
            mcp_tool="check_approval_status",
        ),
        # itom-auditor
        ActionSpec(
            "audit.compliance",
            "itom-auditor",
            _R,
            True,
            "Compliance audit of CIs and scan results",
            (P(name="scope", default="cmdb", enum=["cmdb", "discovery", "asset", "full"]),),
            timeout_seconds=60,
            mcp_tool="audit_full",
            alt_tools=("audit_cmdb", "audit_discovery", "audit_assets"),
        ),
        ActionSpec(
            "audit.drift",
            "itom-auditor",
            _R,
            True,
            "Configuration drift: discovered vs recorded",
            (),
            timeout_seconds=60,
            mcp_tool="audit_discovery",
        ),
        ActionSpec(
            "audit.report",
            "itom-auditor",
            _R,
            True,
            "Audit report",
            (P(name="audit_id", default=None, description="Report on this earlier audit instead of a fresh one"),),
            timeout_seconds=60,
            mcp_tool="compliance_report",
        ),
        ActionSpec(
            "audit.policy",
            "itom-auditor",
            _R,
            True,
            "Check CIs against policy rules",
            (P(name="category", default=None),),
            mcp_tool="compliance_rules",
        ),
        # itom-documentator
        ActionSpec(
            "documentation.generate",
            "itom-documentator",
            _W,
            True,
            "Render a Markdown report from earlier steps' results",
            (_REPORT, P(name="title", default=None)),
            mcp_tool="generate_documentation",
        ),
        ActionSpec(
            "documentation.runbook",
            "itom-documentator",
            _W,
            True,
            "Write a runbook for a CI",
            (_CI,),
            mcp_tool="create_runbook",
        ),
        ActionSpec(
            "documentation.knowledge_base",
            "itom-documentator",
            _W,
            False,
            "Publish a knowledge article",
            (P(name="title", required=True), P(name="body", required=True)),
            max_retries=0,
            mcp_tool="update_knowledge_base",
        ),
        ActionSpec(
            "documentation.diagram",
            "itom-documentator",
            _R,
            True,
            "Mermaid diagram of a CI's dependencies",
            (_CI,),
            mcp_tool="generate_architecture_diagram",
        ),
    )
}

_AGENT_META: tuple[tuple[str, str, str, str, str], ...] = (
    ("cmdb-agent", "CMDB Agent", "cmdb", "Configuration items, relationships and CMDB health", "snow-cmdb-agent"),
    (
        "discovery-agent",
        "Discovery Agent",
        "discovery",
        "Discovery scans, schedules and results",
        "snow-discovery-agent",
    ),
    ("asset-agent", "Asset Agent", "asset", "Hardware and software assets, licences", "snow-asset-agent"),
    ("csa-agent", "CSA Agent", "csa", "Service catalog, requests and remediation tickets", "snow-csa-agent"),
    ("itom-auditor", "ITOM Auditor", "audit", "Compliance audits and configuration drift", "snow-itom-auditor"),
    (
        "itom-documentator",
        "ITOM Documentator",
        "documentation",
        "Reports, runbooks and diagrams",
        "snow-itom-documentator",
    ),
)

AGENTS: dict[str, AgentSpec] = {
    agent_id: AgentSpec(
        agent_id,
        name,
        domain,
        description,
        project,
        tuple(sorted(a.name for a in ACTIONS.values() if a.agent_id == agent_id)),
    )
    for agent_id, name, domain, description, project in _AGENT_META
}

# Legacy template capability names and role action names, mapped onto this vocabulary.
LEGACY_ACTIONS: dict[str, str] = {
    "cmdb_health_audit": "cmdb.health_audit",
    "query_cis": "cmdb.query",
    "map_relationships": "cmdb.map_relationships",
    "bulk_ci_operations": "cmdb.bulk_operations",
    "run_discovery_scan": "discovery.scan",
    "get_discovery_status": "discovery.status",
    "reconcile_discovered_cis": "discovery.reconcile",
    "manage_discovery_schedules": "discovery.schedule",
    "query_assets": "asset.query",
    "manage_asset_lifecycle": "asset.lifecycle",
    "reconcile_assets": "asset.reconcile",
    "license_compliance_check": "asset.license_check",
    "manage_catalog_items": "csa.list_catalog",
    "fulfill_requests": "csa.plan_fulfillment",
    "run_remediation": "csa.run_remediation",
    "run_compliance_audit": "audit.compliance",
    "detect_configuration_drift": "audit.drift",
    "generate_audit_report": "audit.report",
    "check_policy_compliance": "audit.policy",
    "generate_documentation": "documentation.generate",
    "create_runbook": "documentation.runbook",
    "update_knowledge_base": "documentation.knowledge_base",
    "generate_architecture_diagram": "documentation.diagram",
}


def get_action(name: str) -> ActionSpec:
    """The spec of an action; accepts the legacy names too."""
    spec = ACTIONS.get(LEGACY_ACTIONS.get(name, name))
    if spec is None:
        raise TaskInvalidError(f"Unknown action '{name}'. Use one of: {', '.join(sorted(ACTIONS))}", {"action": name})
    return spec


AUDIT_TOOLS = {"cmdb": "audit_cmdb", "discovery": "audit_discovery", "asset": "audit_assets", "full": "audit_full"}
_TOOL_CHOICE: dict[str, Any] = {
    "asset.query": lambda p: (
        "tool_query_software_licenses" if p.get("asset_type") == "software" else "tool_query_hardware_assets"
    ),
    "asset.lifecycle": lambda p: "tool_get_asset_lifecycle" if p.get("asset_id") else "tool_track_asset_depreciation",
    "audit.compliance": lambda p: AUDIT_TOOLS.get(str(p.get("scope") or "full"), "audit_full"),
}


def tool_for(spec: ActionSpec, params: dict[str, Any]) -> str | None:
    """Which of the action's sibling MCP tools a call with these (bound) parameters goes to; None if it has none."""
    if not spec.tools:
        return None
    choose = _TOOL_CHOICE.get(spec.name)
    return str(choose(params)) if choose is not None else spec.mcp_tool


def get_agent(agent_id: str) -> AgentSpec:
    spec = AGENTS.get(agent_id)
    if spec is None:
        raise AgentNotFoundError(
            f"Agent '{agent_id}' not found in registry. Known agents: {', '.join(AGENTS)}", {"agent_id": agent_id}
        )
    return spec


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def coerce_param(spec: TemplateParameter, value: Any) -> Any:
    """Check (and gently coerce CLI strings) one value against its declared type; ValueError says why."""
    if value is None:
        return None
    if isinstance(value, str) and spec.type in {"integer", "number", "boolean"}:
        text = value.strip().lower()
        try:
            if spec.type == "boolean":
                if text not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(text)
                value = text in {"true", "1", "yes"}
            else:
                value = int(text) if spec.type == "integer" else float(text)
        except ValueError:
            raise ValueError(f"'{spec.name}' must be {spec.type}, got {value!r}") from None
    wanted = _PY_TYPES[spec.type]
    if not isinstance(value, wanted) or (spec.type in {"integer", "number"} and isinstance(value, bool)):
        raise ValueError(f"'{spec.name}' must be {spec.type}, got {type(value).__name__}")
    if spec.enum is not None and value not in spec.enum:
        raise ValueError(f"'{spec.name}' must be one of {[e for e in spec.enum if e is not None]}, got {value!r}")
    return value


def validate_params(
    specs: tuple[TemplateParameter, ...] | list[TemplateParameter],
    given: dict[str, Any],
    *,
    where: str,
    allow_extra: bool = False,
) -> dict[str, Any]:
    """Bind ``given`` to declared parameters: defaults filled, types checked, unknown names rejected.

    Raises ValueError with a message naming the parameter and ``where`` it was given.
    """
    by_name = {s.name: s for s in specs}
    unknown = sorted(set(given) - set(by_name))
    if unknown and not allow_extra:
        hint = "; arguments in the agent's MCP tool's own names go in 'tool_args'" if "tool_args" in by_name else ""
        raise ValueError(f"{where}: unknown parameter(s) {unknown}; declared: {sorted(by_name) or 'none'}{hint}")
    bound: dict[str, Any] = {k: v for k, v in given.items() if k not in by_name}
    for spec in specs:
        if spec.name == TOOL_ARGS and given.get(TOOL_ARGS) is None:
            continue  # optional pass-through: bound only when given, so step parameters stay as written
        if spec.name in given and given[spec.name] is not None:
            bound[spec.name] = coerce_param(spec, given[spec.name])
        elif spec.required:
            raise ValueError(f"{where}: missing required parameter '{spec.name}' ({spec.type})")
        else:
            bound[spec.name] = spec.default
    return bound
