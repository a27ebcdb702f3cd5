"""Chat turn helpers, pure: a routed message -> (catalog action, parameters); an action's result -> markdown.

Why here and not in the agents: one place turns a chat message into a catalog action for every agent. It
speaks the one catalog vocabulary, honours the UI's ``tool_hint`` when it names a catalog action (or the MCP
tool an action maps to), reads ``tool_args`` in the chat UI's legacy names (``ci_type``, ``days``,
``ci_sys_id``, ...) and refuses names it cannot place instead of dropping them, and always validates
parameters against the action's declared ones, so a chat turn is dispatched exactly like any other action.
The chat UI's slash commands arrive as its prompt templates ("Find stale servers in the CMDB", "Show the
change history of CI: web-prod-01"); the cascades below map each onto the action the command means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestrator.catalog import ACTIONS, LEGACY_ACTIONS, get_agent, validate_params
from orchestrator.chat.routing import compile_keywords
from orchestrator.errors import TaskInvalidError

MAX_TABLE_ROWS = 15
MAX_TABLE_COLUMNS = 8
MAX_SUGGESTIONS = 3
_MAX_CELL = 80

# ---- text inspection -----------------------------------------------------------------------------------------


def _kw(keywords: str) -> Callable[[str], bool]:
    """A whole-word test for a comma-separated keyword list (precompiled once, at import)."""
    pattern = compile_keywords([k.strip() for k in keywords.split(",")])
    return lambda text: pattern.search(text) is not None


_SYS_ID = re.compile(r"\b[0-9a-f]{32}\b", re.IGNORECASE)
_IP_RANGE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2}|\s*-\s*\d{1,3}(?:\.\d{1,3}){3})?\b")
_REQUEST_ID = re.compile(r"\b(?:REQ|RITM|SCTASK|CHG|INC|RR)-?\d{3,}\b", re.IGNORECASE)
_DAYS = re.compile(r"\b(\d{1,5})\s*(day|week|month|year)s?\b", re.IGNORECASE)
_DEPTH = re.compile(r"\bdepth\s*(?:of\s*)?(\d{1,2})\b", re.IGNORECASE)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FILLER = _words(
    "the a an my our this that these those ci cis configuration item items named called please all any every server "
    "servers database databases application applications app apps host hosts node device devices software licenses "
    "licences license licence"
)
_STOP = _words("is are was were be and or in on with please if to from at by when which now so then")
_LABELLED = re.compile(r"\b(?:ci|configuration\s+item|item|matching)\s*:\s*(.+)$", re.IGNORECASE)
_CLASS_TABLE = re.compile(r"\bcmdb_ci_[a-z_]+\b", re.IGNORECASE)
_IDENT_AFTER = re.compile(
    r"\b(?:impact\s+analysis\s+(?:of|for|on)|impact\s+(?:of|on|for)|(?:dependency\s+tree|dependencies|relationships?"
    r"|upstream|downstream|details|info(?:rmation)?|history|runbook|diagram)\s+(?:of|for|about|on)|depends\s+on"
    r"|tell\s+me\s+about|for|of)\s+(.+)",
    re.IGNORECASE,
)
_CI_CLASSES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_kw("linux server, linux"), "linux_server"),
    (_kw("windows server, windows, win server"), "win_server"),
    (_kw("server"), "server"),
    (_kw("database, db, dbs"), "database"),
    (_kw("application, app, apps"), "application"),
    (_kw("network gear, network device, switch, switches, router, firewall"), "network_gear"),
    (_kw("storage"), "storage"),
)
_ENVIRONMENTS: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_kw("production, prod"), "Production"),
    (_kw("development, dev"), "Development"),
    (_kw("staging, stage"), "Staging"),
    (_kw("test, testing, qa"), "Test"),
)


def _first(table: tuple[tuple[Callable[[str], bool], str], ...], text: str) -> str | None:
    return next((value for test, value in table if test(text)), None)


def labelled(text: str) -> str | None:
    """The value after "CI:", "configuration item:" or "matching:" (how the chat UI's commands name their argument)."""
    found = _LABELLED.search(text)
    value = found.group(1).strip().strip("'\"`").rstrip(".?!").strip() if found else ""
    return value or None


def identifier(text: str) -> str | None:
    """A CI named in the message: a 32-hex sys_id, the value after "CI:", or up to four words after "impact of",
    "runbook for", ..."""
    if found := _SYS_ID.search(text):
        return found.group(0).lower()
    named = labelled(text)
    if named is not None and len(named.split()) <= 4:
        return named
    for found in _IDENT_AFTER.finditer(text):
        tail = re.split(r"[?!,;:()]|\.(?:\s|$)", found.group(1), maxsplit=1)[0]
        words: list[str] = []
        for word in filter(None, (w.strip("'\"`") for w in tail.split())):
            folded = word.casefold()
            if folded in _STOP or len(words) == 4:
                break
            if words or folded not in _FILLER:
                words.append(word)
        while words and words[-1].casefold() in _FILLER:
            words.pop()
        if words:
            return " ".join(words)
    return None


def _days(text: str) -> int | None:
    found = _DAYS.search(text)
    return int(found.group(1)) * _UNIT_DAYS[found.group(2).lower()] if found else None


# ---- which action -------------------------------------------------------------------------------------------

_IMPACT = _kw("impact, blast radius")
_RELATIONS = _kw("dependency, dependencies, depends on, relationship, relations, upstream, downstream")
_HISTORY = _kw("history, change history, audit log of, changes of")
_TREND = _kw("trend, health trend, trend report, over time")
_IRE = _kw("ire, identification rule, identification rules, reconciliation rule, reconciliation rules")
_REL_TYPES = _kw("relationship type, relationship types, relation type, relation types")
_CI_TYPES = _kw("ci type, ci types, ci class, ci classes, list types, what types, available types")
_MCP = _kw("mcp")
_SERVER_HEALTH = _kw("health, health check, status, check")
_DASHBOARD = _kw("dashboard")
_ACTIVITY = _kw("activity, activity log, audit summary, audit statistics, audit stats, audit log, recent changes")
_RECONCILE = _kw("reconcile, reconciliation, data drift, drift, remediate, remediation, fix data")
_STALE = _kw("stale, outdated, eol, end of life, not updated")
_DUPLICATES = _kw("duplicate, dedup, deduplicate")
_COUNT = _kw("how many, count, number of")
_CMDB_HEALTH = _kw(
    "lifecycle, health, data quality, metrics, completeness, audit, compliance, quality, overview, summary, "
    "report, missing, without, no owner, no serial, kpi, kpis"
)
_CMDB_DETAILS = _kw("details, detail, info about, information about, tell me about")
_CMDB_SEARCH = _kw("search, find, list, show, query, which, look up, all")
_DISCOVERY_STATUS = _kw("status, progress, result, last, recent, running, history, how did")
_DISCOVERY_SCAN = _kw("scan, discover, discovery, run, start, trigger, launch, rescan")
_LICENSE = _kw("license, licence, entitlement, compliance, install, installation")
_LIFECYCLE = _kw(
    "lifecycle, eol, end of life, expire, expiring, expiry, warranty, retire, depreciation, refresh, aging, old"
)
_REMEDIATION = _kw("remediation, remediate, fix request, fix")
_NEW_REQUEST = _kw("create, open, raise, submit, new request, order, i need, request a, request an")
_DRIFT = _kw("drift")
_POLICY = _kw("policy, policies, rule, rules")
_REPORT = _kw("report")
_RUNBOOK = _kw("runbook")
_DIAGRAM = _kw("diagram, architecture")
_SCHEDULE = _kw("schedule, schedules, scheduled")
_END_OF_LIFE = _kw("eol, end of life, lifecycle")
_INCREMENTAL = _kw("incremental, quick, delta")
_ACTIVE = _kw("active")
_ASSET_TYPES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_kw("software, application"), "software"),
    (_kw("consumable"), "consumable"),
    (_kw("hardware, laptop, desktop, server, device, monitor"), "hardware"),
)
_REPORT_TYPES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_kw("health"), "health"),
    (_kw("audit, compliance"), "audit"),
    (_kw("lifecycle, eol"), "lifecycle"),
)
_SCOPES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_kw("full, everything, every domain, all domains, whole estate"), "full"),
    (_kw("discovery, scan"), "discovery"),
    (_kw("asset, assets, licence, license, hardware, software"), "asset"),
    (_kw("cmdb, configuration items, cis"), "cmdb"),
)
_CATEGORIES: tuple[tuple[Callable[[str], bool], str], ...] = tuple(
    (_kw(c), c) for c in ("hardware", "software", "access", "network")
)


_CMDB_TOPICS: tuple[tuple[Callable[[str], bool], str], ...] = (
    (_TREND, "cmdb.health_trend"),
    (_IRE, "cmdb.ire_rules"),
    (_REL_TYPES, "cmdb.relationship_types"),
    (_CI_TYPES, "cmdb.ci_types"),
    (lambda t: _MCP(t) and _SERVER_HEALTH(t), "cmdb.health_check"),
    (_DASHBOARD, "cmdb.dashboard"),
    (_ACTIVITY, "cmdb.activity"),
    (_RECONCILE, "cmdb.reconcile"),
    (_STALE, "cmdb.stale"),
    (_DUPLICATES, "cmdb.duplicates"),
    (_COUNT, "cmdb.count"),
    (_CMDB_HEALTH, "cmdb.health_audit"),
)


def _cmdb_action(text: str) -> str:
    named = identifier(text) is not None
    if named and _IMPACT(text):
        return "cmdb.map_relationships"
    if named and _HISTORY(text):
        return "cmdb.history"
    if named and _RELATIONS(text):
        return "cmdb.dependency_tree"
    topic = _first(_CMDB_TOPICS, text)
    if topic is not None:
        return topic
    if (_CMDB_DETAILS(text) and named) or _CMDB_SEARCH(text) or labelled(text):
        return "cmdb.query"
    if _first(_CI_CLASSES, text) or _first(_ENVIRONMENTS, text):
        return "cmdb.query"
    return "cmdb.health_audit"


def _discovery_action(text: str) -> str:
    if _IP_RANGE.search(text):
        return "discovery.scan"
    if _SCHEDULE(text):
        return "discovery.schedule"
    if _DISCOVERY_STATUS(text):
        return "discovery.status"
    return "discovery.scan" if _DISCOVERY_SCAN(text) else "discovery.status"


def _asset_action(text: str) -> str:
    if _LICENSE(text):
        return "asset.license_check"
    return "asset.lifecycle" if _LIFECYCLE(text) else "asset.query"


def _csa_action(text: str) -> str:
    if _REQUEST_ID.search(text):
        return "csa.request_status"
    if _REMEDIATION(text):
        return "csa.run_remediation"
    return "csa.create_request" if _NEW_REQUEST(text) else "csa.list_catalog"


def _audit_action(text: str) -> str:
    if _DRIFT(text):
        return "audit.drift"
    if _POLICY(text):
        return "audit.policy"
    return "audit.report" if _REPORT(text) else "audit.compliance"


def _documentation_action(text: str) -> str:
    if _RUNBOOK(text) and identifier(text):
        return "documentation.runbook"
    if _DIAGRAM(text) and identifier(text):
        return "documentation.diagram"
    return "documentation.generate"


_CASCADES: dict[str, Callable[[str], str]] = {
    "cmdb": _cmdb_action,
    "discovery": _discovery_action,
    "asset": _asset_action,
    "csa": _csa_action,
    "audit": _audit_action,
    "documentation": _documentation_action,
}

# The chat UI's slash commands typed raw (the UI itself sends its prompt templates), as words the cascades read.
_SLASH_WORDS = {
    "ci-search": "search",
    "ci-count": "how many",
    "ci-details": "details of",
    "ci-history": "history of",
    "ci-relations": "relationships of",
    "ci-dependencies": "dependencies of",
    "ci-impact": "impact of",
    "ci-types": "list ci types",
    "cmdb-health": "cmdb health",
    "cmdb-trend": "health trend",
    "cmdb-compliance": "compliance",
    "cmdb-stale": "stale",
    "cmdb-duplicates": "duplicates",
    "cmdb-reconcile": "reconcile",
    "cmdb-audit": "audit summary",
    "cmdb-activity": "recent activity",
    "cmdb-dashboard": "dashboard",
    "cmdb-ire": "ire rules",
    "cmdb-rel-types": "list relationship types",
    "mcp-health": "mcp health check",
    "discover": "discover",
    "audit": "audit",
    "assets": "assets",
    "docs": "documentation",
}
_SLASH = re.compile(r"^/([a-z][a-z0-9-]*)\b\s*", re.IGNORECASE)


def expand_slash_command(message: str) -> str:
    """``/ci-impact web01`` -> ``impact of web01`` (the chat UI's commands); other text is only stripped."""
    text = message.strip()
    found = _SLASH.match(text)
    if not found or found.group(1).lower() not in _SLASH_WORDS:
        return text
    return f"{_SLASH_WORDS[found.group(1).lower()]} {text[found.end() :]}".strip()


# ---- which parameters ----------------------------------------------------------------------------------------


def _ci_class(text: str) -> str | None:
    table = _CLASS_TABLE.search(text)
    return table.group(0).lower() if table else _first(_CI_CLASSES, text)


def _cmdb_query_params(text: str) -> dict[str, Any]:
    named = labelled(text)
    if named is not None and (_ci_class(named) or _first(_ENVIRONMENTS, named)):
        named = None  # "matching: linux servers in production" filters; it names no CI
    name = named or (identifier(text) if _CMDB_DETAILS(text) else None)
    rest = text.replace(name, " ") if name else text  # "db-prod-01" names a CI; it is not a class or environment
    return {"ci_class": _ci_class(rest), "environment": _first(_ENVIRONMENTS, rest), "name": name}


def _count_params(text: str) -> dict[str, Any]:
    return {"ci_class": _ci_class(text), "environment": _first(_ENVIRONMENTS, text)}


def _health_params(text: str) -> dict[str, Any]:
    return {"ci_class": _ci_class(text), "stale_days": _days(text)}


def _stale_params(text: str) -> dict[str, Any]:
    return {"ci_class": _ci_class(text), "days": _days(text) or (365 if _END_OF_LIFE(text) else None)}


def _by_class(text: str) -> dict[str, Any]:
    return {"ci_class": _ci_class(text)}


_MATCH_FIELDS = _kw("serial, serial number, serial numbers")


def _scan_params(text: str) -> dict[str, Any]:
    found = _IP_RANGE.search(text)
    return {
        "ip_range": found.group(0) if found else None,
        "scan_type": "incremental" if _INCREMENTAL(text) else None,
    }


def _asset_query_params(text: str) -> dict[str, Any]:
    kind = _first(_ASSET_TYPES, text)
    assigned = re.search(r"\bassigned\s+to\s+([\w.@-]+(?:\s+[A-Z][\w-]*)?)", text)
    return {"asset_type": kind, "assigned_to": assigned.group(1) if assigned else None}


def _risk(text: str) -> str | None:
    found = re.search(r"\b(low|medium|high)\s+risk\b|\brisk(?:\s+level)?\s*[:=]?\s*(low|medium|high)\b", text, re.I)
    return (found.group(1) or found.group(2)).lower() if found else None


_PARAMS: dict[str, Callable[[str], dict[str, Any]]] = {
    "cmdb.query": _cmdb_query_params,
    "cmdb.count": _count_params,
    "cmdb.health_audit": _health_params,
    "cmdb.stale": _stale_params,
    "cmdb.duplicates": lambda t: {
        "ci_class": _ci_class(t),
        "match_field": "serial_number" if _MATCH_FIELDS(t) else None,
    },
    "cmdb.health_trend": lambda t: {"ci_class": _ci_class(t), "days": _days(t)},
    "cmdb.reconcile": _by_class,
    "cmdb.ire_rules": _by_class,
    "cmdb.activity": _by_class,
    "cmdb.dependency_tree": lambda t: {
        "ci_id": identifier(t),
        "depth": int(d.group(1)) if (d := _DEPTH.search(t)) else None,
    },
    "cmdb.history": lambda t: {"ci_id": identifier(t)},
    "cmdb.map_relationships": lambda t: {
        "ci_id": identifier(t),
        "depth": int(d.group(1)) if (d := _DEPTH.search(t)) else None,
    },
    "cmdb.update": lambda t: {"ci_id": identifier(t)},
    "cmdb.delete": lambda t: {"ci_id": identifier(t)},
    "discovery.scan": _scan_params,
    "discovery.schedule": lambda t: {"active_only": True if _ACTIVE(t) else None},
    "asset.query": _asset_query_params,
    "asset.lifecycle": lambda t: {"horizon_days": _days(t)},
    "asset.license_check": lambda t: {"software": identifier(t)},
    "csa.create_request": lambda t: {"description": t},
    "csa.run_remediation": lambda t: {"summary": t[:500], "risk_level": _risk(t)},
    "csa.request_status": lambda t: {"request_id": r.group(0).upper() if (r := _REQUEST_ID.search(t)) else None},
    "csa.list_catalog": lambda t: {"category": _first(_CATEGORIES, t)},
    "audit.compliance": lambda t: {"scope": _first(_SCOPES, t)},
    "documentation.generate": lambda t: {"report_type": _first(_REPORT_TYPES, t) or "summary"},
    "documentation.runbook": lambda t: {"ci_id": identifier(t)},
    "documentation.diagram": lambda t: {"ci_id": identifier(t)},
    "documentation.knowledge_base": lambda t: {"title": t[:100], "body": t},
}
_BY_MCP_TOOL: dict[str, str] = {}
for _name, _spec in ACTIONS.items():
    for _tool in _spec.tools:
        _BY_MCP_TOOL.setdefault(_tool, _name)
# Tool names the chat UI's prompt uses that no action maps to one to one.
_BY_MCP_TOOL.update(
    {
        "list_ci_classes_with_ire": "cmdb.ire_rules",
        "get_audit_summary": "cmdb.activity",
        "get_ci_activity_log": "cmdb.activity",
        "query_audit_log": "cmdb.activity",
        "get_request_details": "csa.request_status",
    }
)
# The chat UI's legacy argument names (its tool_args) -> the parameters they mean, in order of preference.
TOOL_ARG_ALIASES: dict[str, tuple[str, ...]] = {
    "ci_type": ("ci_class",),
    "ci_sys_id": ("ci_id",),
    "sys_id": ("ci_id",),
    "days": ("days", "stale_days", "horizon_days"),
    "product": ("software",),
    "ritm_sys_id": ("request_id",),
    "req_sys_id": ("request_id",),
    "task_number": ("request_id",),
    "user_request": ("request", "description"),
    "issue_summary": ("summary",),
}


def _hinted_action(agent_id: str, context: Mapping[str, Any]) -> str | None:
    hint = context.get("tool_hint")
    if not isinstance(hint, str):
        return None
    name = hint.strip()
    action = name if name in ACTIONS else LEGACY_ACTIONS.get(name) or _BY_MCP_TOOL.get(name)
    return action if action is not None and ACTIONS[action].agent_id == agent_id else None


def _target(name: str, value: Any, declared: set[str]) -> tuple[str | None, Any]:
    """The parameter a ``tool_args`` entry means (its own name, or a legacy one), with its value; None if none."""
    if name in declared and name != "tool_args":
        return name, value
    target = next((p for p in TOOL_ARG_ALIASES.get(name, ()) if p in declared), None)
    if target is None and name == "query" and isinstance(value, str) and "name" in declared:
        return "name", value.removeprefix("nameLIKE")  # the chat UI's encoded query by name
    return target, value


def _tool_args(action: str, args: Mapping[str, Any], *, bridged: bool) -> dict[str, Any]:
    """``context.tool_args`` as parameters of ``action``: its own names, the legacy ones (``ci_type`` ...), and for a
    bridged agent anything else as ``tool_args`` for its MCP tool (checked there against the tool's schema)."""
    declared = {p.name for p in ACTIONS[action].params}
    params: dict[str, Any] = {}
    passed: dict[str, Any] = {}
    for name, given in args.items():
        target, value = _target(name, given, declared)
        if target is not None:
            params[target] = value
        elif bridged and "tool_args" in declared:
            passed[name] = value
        else:
            aliases = sorted(a for a, ps in TOOL_ARG_ALIASES.items() if declared & set(ps))
            known = ", ".join(sorted(declared - {"tool_args"}) + aliases) or "nothing"
            raise TaskInvalidError(
                f"context.tool_args names '{name}', which '{action}' does not take. It takes: {known}.",
                {"action": action, "argument": name},
            )
    if passed:
        params["tool_args"] = passed
    return params


def choose_action(
    agent_id: str, message: str, context: Mapping[str, Any] | None = None, *, bridged: bool = False
) -> tuple[str, dict[str, Any]]:
    """The catalog action (and its bound parameters) that answers ``message`` on ``agent_id``.

    ``context["tool_hint"]`` wins when it names one of this agent's actions (by action, legacy or MCP tool
    name); ``context["tool_args"]`` then override what the message implies, in the action's or the legacy
    names; a name neither knows is refused (ORCH_7003), unless the agent is ``bridged``: then it goes to the
    agent's MCP tool, whose schema decides.
    Raises AgentNotFoundError for an unknown agent and TaskInvalidError when the parameters do not validate.
    """
    agent = get_agent(agent_id)
    context = context or {}
    text = expand_slash_command(message)
    hinted = _hinted_action(agent_id, context)
    cascade = _CASCADES.get(agent.domain)
    action = hinted or (cascade(text) if cascade else agent.actions[0])
    spec = ACTIONS[action]
    derive = _PARAMS.get(action)
    params = {k: v for k, v in (derive(text) if derive else {}).items() if v is not None}
    args = context.get("tool_args")
    if isinstance(args, Mapping):
        params.update({k: v for k, v in _tool_args(action, args, bridged=bridged).items() if v is not None})
    try:
        return action, validate_params(spec.params, params, where=f"chat action '{action}'")
    except ValueError as exc:
        raise TaskInvalidError(f"{exc}. Say it in the message or pass it in tool_args.", {"action": action}) from None


# ---- rendering ------------------------------------------------------------------------------------------------


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize() or key


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:,.2f}"
    elif value is None:
        text = ""
    elif _is_scalar(value):
        text = str(value)
    else:
        text = json.dumps(value, default=str, separators=(",", ":"))
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a markdown table: at most 15 rows and 8 columns (first-seen key order), with a count footer."""
    shown = rows[:MAX_TABLE_ROWS]
    columns: list[str] = []
    for row in shown:
        columns.extend(k for k in row if k not in columns and _is_scalar(row[k]))
    columns = columns[:MAX_TABLE_COLUMNS] or [k for row in shown for k in row][:1]
    lines = ["| " + " | ".join(_label(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in shown]
    if len(rows) > len(shown):
        lines.append(f"\n_Showing {len(shown)} of {len(rows)} rows._")
    return "\n".join(lines)


def _render_value(key: str, value: Any) -> list[str]:
    if _is_scalar(value):
        return [] if value is None else [f"- **{_label(key)}:** {_cell(value)}"]
    if isinstance(value, Mapping):
        if value and all(isinstance(v, Mapping) for v in value.values()):
            rows = [{"name": k, **v} for k, v in value.items()]
            return [f"\n**{_label(key)}**\n", markdown_table(rows), ""]
        inner = [f"  - {_label(str(k))}: {_cell(v)}" for k, v in value.items() if v is not None]
        return [f"- **{_label(key)}:**", *inner] if inner else []
    if isinstance(value, list):
        if not value:
            return [f"- **{_label(key)}:** none"]
        if all(isinstance(v, Mapping) for v in value):
            return [f"\n**{_label(key)}** ({len(value)})\n", markdown_table(value), ""]
        items = ", ".join(_cell(v) for v in value[:MAX_TABLE_ROWS])
        more = f" … (+{len(value) - MAX_TABLE_ROWS} more)" if len(value) > MAX_TABLE_ROWS else ""
        return [f"- **{_label(key)}:** {items}{more}"]
    return [f"- **{_label(key)}:** {_cell(value)}"]


def result_markdown(action: str, result: Mapping[str, Any]) -> str:
    """Any JSON dict as markdown: a heading, the key figures as bullets, lists of records as tables."""
    spec = ACTIONS.get(action)
    lines = [f"### {spec.description if spec else action}", ""]
    for key in ("message", "summary"):
        if isinstance(result.get(key), str):
            lines += [result[key], ""]
    body = [
        ln
        for k, v in result.items()
        if k not in {"message", "summary", "suggested_actions"}
        for ln in _render_value(str(k), v)
    ]
    lines += body or ([] if len(lines) > 2 else ["_No data returned._"])
    return "\n".join(lines).strip() + "\n"


def _first_name(result: Mapping[str, Any]) -> str | None:
    for value in result.values():
        if isinstance(value, list) and value and isinstance(value[0], Mapping):
            name = value[0].get("name") or value[0].get("ci_id") or value[0].get("sys_id")
            if isinstance(name, str) and name.strip():
                return name.strip()
    return None


def _pill(label: str, message: str, agent: str) -> dict[str, Any]:
    return {"label": label, "message": message, "agent_target": agent}


_FOLLOW_UPS: dict[str, tuple[dict[str, Any], ...]] = {
    "cmdb": (
        _pill("CMDB health audit", "run a cmdb health audit", "cmdb-agent"),
        _pill("Compliance audit", "run a compliance audit of the cmdb", "itom-auditor"),
        _pill("Health report", "generate a health report", "itom-documentator"),
    ),
    "discovery": (
        _pill("Discovery status", "show discovery status", "discovery-agent"),
        _pill("Audit scan results", "run a compliance audit of discovery results", "itom-auditor"),
        _pill("Configuration drift", "check configuration drift", "itom-auditor"),
    ),
    "asset": (
        _pill("Licence compliance", "check license compliance", "asset-agent"),
        _pill("Assets near end of life", "assets near end of life", "asset-agent"),
        _pill("Hardware inventory", "list hardware assets", "asset-agent"),
    ),
    "csa": (
        _pill("Service catalog", "list the service catalog", "csa-agent"),
        _pill("CMDB health audit", "run a cmdb health audit", "cmdb-agent"),
    ),
    "audit": (
        _pill("Configuration drift", "check configuration drift", "itom-auditor"),
        _pill("Remediation request", "create a remediation request for the audit findings", "csa-agent"),
        _pill("Audit report", "generate an audit report", "itom-documentator"),
    ),
    "documentation": (
        _pill("CMDB health audit", "run a cmdb health audit", "cmdb-agent"),
        _pill("Compliance audit", "run a compliance audit", "itom-auditor"),
    ),
}

# What each follow-up pill will run (it must differ from the action just shown).
_PILL_ACTIONS = {
    p["message"]: choose_action(p["agent_target"], p["message"])[0] for pills in _FOLLOW_UPS.values() for p in pills
}


def suggest_actions(action: str, result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Up to three follow-up pills ``{label, message, agent_target}``, skipping the action just run."""
    pills: list[dict[str, Any]] = []
    name = _first_name(result)
    if name and action.startswith("cmdb.") and name != result.get("ci_id"):  # never "impact of" the CI just shown
        pills.append(_pill(f"Impact of {name}", f"impact of {name}", "cmdb-agent"))
    if action == "cmdb.health_audit":
        pills.append(_pill("Remediation request", "create a remediation request for the CIs found", "csa-agent"))
    request_id = next((str(result[k]) for k in ("request_id", "number") if result.get(k)), None)
    if request_id and action in {"csa.create_request", "csa.run_remediation"}:
        pills.append(_pill(f"Status of {request_id}", f"status of {request_id}", "csa-agent"))
    pills += [p for p in _FOLLOW_UPS.get(action.split(".", 1)[0], ()) if _PILL_ACTIONS[p["message"]] != action]
    unique = list({p["label"]: p for p in pills}.values())
    return unique[:MAX_SUGGESTIONS]


def render_result(action: str, result: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """``(agent_response markdown, suggested_actions)`` for a chat reply; agent-provided text is kept as is."""
    data: Mapping[str, Any] = result if isinstance(result, Mapping) else {"result": result}
    given = data.get("suggested_actions")
    pills = (
        [p for p in given if isinstance(p, Mapping) and "label" in p and "message" in p]
        if isinstance(given, list)
        else []
    )
    text = data.get("agent_response")
    markdown = text if isinstance(text, str) and text.strip() else result_markdown(action, data)
    return markdown, ([dict(p) for p in pills] or suggest_actions(action, data))[:MAX_SUGGESTIONS]
