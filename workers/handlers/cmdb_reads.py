"""cmdb-agent built-ins for the CMDB reads the chat UI's commands ask for: counts, stale and duplicate CIs,
health trend, dashboard, dependency tree, change history, reconciliation (dry run), IRE rules, CI and
relationship types, recent activity and the agent's own health.

Result fields follow the sibling CMDB agent's replies where the chat UI shows them
(``stale_cis``/``days_threshold``, ``duplicate_groups``/``total_groups``, ``snapshots``, ``history``, ...), so a
reply reads the same whether the agent is built in or bridged.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from workers.context import ActionContext
from workers.handlers.common import (
    CAP,
    CI_CLASSES,
    MAX_ROWS,
    SERVER_CLASSES,
    SUBCLASSES,
    Handler,
    ci_class_param,
    ci_ref,
    days_between,
    environment_param,
    in_class,
    int_param,
    listing,
    resolve_ci,
    text_param,
)
from workers.handlers.graph import CIGraph
from workers.handlers.matching import match_devices
from workers.handlers.quality import REQUIRED_FIELDS, assess, duplicate_groups, stale_cis
from workers.sample import SampleInstance

_TREND_POINTS = 6
_IRE_RULES: dict[str, list[dict[str, Any]]] = {
    "hardware": [
        {"priority": 100, "attributes": ["serial_number"], "description": "Serial number identifies the device"},
        {"priority": 200, "attributes": ["ip_address", "name"], "description": "Then IP address with host name"},
        {"priority": 300, "attributes": ["name"], "description": "Then host name alone"},
    ],
    "logical": [{"priority": 100, "attributes": ["name"], "description": "Name identifies the CI"}],
}
_HARDWARE = frozenset({"cmdb_ci_server", *SERVER_CLASSES, "cmdb_ci_netgear", "cmdb_ci_storage"})


def _cis(ctx: ActionContext, instance: SampleInstance) -> tuple[str | None, list[dict[str, Any]]]:
    ci_class = ci_class_param(ctx)
    return ci_class, [ci for ci in instance.cis() if in_class(ci, ci_class)]


def _by(cis: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ci in cis:
        value = str(ci.get(key) or "unknown")
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def count(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    environment, name = environment_param(ctx), text_param(ctx, "name")
    rows = [
        ci
        for ci in cis
        if (environment is None or ci.get("environment") == environment)
        and (name is None or name.lower() in str(ci.get("name", "")).lower())
    ]
    label = CI_CLASSES.get(ci_class, "configuration item") if ci_class else "configuration item"
    return {
        "count": len(rows),
        "summary": f"{len(rows)} CI(s) of class {label}{f' in {environment}' if environment else ''} in the CMDB.",
        "filters": {"ci_class": ci_class, "environment": environment, "name": name},
        "by_class": _by(rows, "sys_class_name"),
        "by_environment": _by(rows, "environment"),
    }


def stale(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    days = int_param(ctx, "days", 90, minimum=1, maximum=3650)
    limit = int_param(ctx, "limit", CAP, minimum=1, maximum=MAX_ROWS)
    found = stale_cis(cis, instance.now().date(), days)
    return {
        "ci_class": ci_class,
        "days_threshold": days,
        "count": len(found),
        "stale_cis": [ci_ref(ci, days_since_update=age, owner=ci.get("owner")) for ci, age in found[:limit]],
        "truncated": len(found) > limit,
    }


def duplicates(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    match_field = text_param(ctx, "match_field") or "name"
    groups = [g for g in duplicate_groups(cis) if g.match == match_field]
    return {
        "ci_class": ci_class,
        "match_field": match_field,
        "total_groups": len(groups),
        "duplicate_groups": [
            {"value": g.value, "count": len(g.cis), "cis": [ci_ref(c, updated_on=c.get("updated_on")) for c in g.cis]}
            for g in groups[:CAP]
        ],
    }


def _as_of(ci: dict[str, Any], day: date) -> dict[str, Any] | None:
    """The CI as it stood on ``day`` (None if not yet created); a later update counts as fresh on ``day``."""
    created = days_between(day, ci.get("sys_created_on"))
    if created is not None and created < 0:
        return None
    updated = days_between(day, ci.get("updated_on"))
    if updated is not None and updated < 0:
        return {**ci, "updated_on": day.isoformat()}
    return ci


def health_trend(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    days = int_param(ctx, "days", 90, minimum=7, maximum=730)
    today = instance.now().date()
    snapshots: list[dict[str, Any]] = []
    for n in range(_TREND_POINTS, -1, -1):
        day = today - timedelta(days=round(days * n / _TREND_POINTS))
        then = [c for ci in cis if (c := _as_of(ci, day)) is not None]
        quality = assess(then, day)
        snapshots.append({"date": day.isoformat(), "total_cis": quality.total, "health_score": quality.health_score})
    first, last = snapshots[0]["health_score"], snapshots[-1]["health_score"]
    return {
        "ci_class": ci_class,
        "lookback_days": days,
        "method": "reconstructed from creation and update dates",
        "snapshots": snapshots,
        "trends": {"health_score": {"first": first, "last": last, "change": round(last - first, 1)}},
    }


def dashboard(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    cis = instance.cis()
    quality = assess(cis, instance.now().date())
    scans = instance.scans()
    open_requests = [t for t in instance.tickets() if not str(t.get("state", "")).startswith("Closed")]
    return {
        "total_cis": len(cis),
        "health_score": quality.health_score,
        **quality.scores,
        "stale_cis": len(quality.stale),
        "duplicate_cis": len(quality.duplicate_ids),
        "incomplete_cis": len(quality.incomplete),
        "open_requests": len(open_requests),
        "last_discovery": {k: scans[0].get(k) for k in ("number", "state", "started", "devices_found")}
        if scans
        else None,
        "by_class": _by(cis, "sys_class_name"),
        "by_environment": _by(cis, "environment"),
        "by_operational_status": _by(cis, "operational_status"),
    }


def dependency_tree(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    depth = int_param(ctx, "depth", 2, minimum=1, maximum=5)
    graph = CIGraph(instance.cis(include_retired=True), instance.relationships())

    def rows(direction: str) -> list[dict[str, Any]]:
        reached = graph.walk(ci["sys_id"], "down" if direction == "down" else "up", depth)
        return [
            ci_ref(graph.cis[r.sys_id], depth=r.distance, relationship_type=r.relations[-1], via=graph.name(r.path[-2]))
            for r in reached[:CAP]
        ]

    depends_on, used_by = rows("down"), rows("up")
    return {
        "root": ci_ref(ci),
        "depth": depth,
        "depends_on": depends_on,
        "used_by": used_by,
        "total_nodes": len(depends_on) + len(used_by),
    }


def history(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    limit = int_param(ctx, "limit", 20, minimum=1, maximum=MAX_ROWS)
    entries: list[dict[str, Any]] = []
    if ci.get("sys_created_on"):
        entries.append({"timestamp": ci["sys_created_on"], "action": "created", "source": "cmdb"})
    written = instance.ci_changes(ci["sys_id"])
    if ci.get("updated_on") and not written:
        entries.append({"timestamp": ci["updated_on"], "action": "updated", "source": "cmdb"})
    for op, fields, at in written:
        if op == "update":
            entries += [
                {"timestamp": at, "action": "updated", "field": k, "new_value": v, "source": "orchestrator"}
                for k, v in fields.items()
            ]
        else:
            entries.append({"timestamp": at, "action": "retired" if op == "retire" else op, "source": "orchestrator"})
    entries.sort(key=lambda e: str(e["timestamp"]), reverse=True)
    return {"ci": ci_ref(ci), "count": len(entries), "history": entries[:limit]}


def reconcile(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    devices = [
        d for d in instance.table("discovered_device") if in_class({"sys_class_name": d["device_class"]}, ci_class)
    ]
    matching = match_devices(devices, cis)
    return {
        "ci_class": ci_class,
        "dry_run": True,
        "field_drift": {"status": "drift" if matching.drift else "ok", **listing(matching.drift)},
        "not_in_cmdb": {
            "status": "missing" if matching.unmatched else "ok",
            **listing([{"name": d["name"], "ip_address": d["ip_address"]} for d in matching.unmatched]),
        },
        "matched_devices": len(matching.matched),
    }


def ire_rules(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class = ci_class_param(ctx) or "cmdb_ci_server"
    kind = "hardware" if ci_class in _HARDWARE else "logical"
    return {
        "ci_class": ci_class,
        "applies_to": sorted(SUBCLASSES.get(ci_class, {ci_class})),
        "identification_rules": _IRE_RULES[kind],
        "required_fields": list(REQUIRED_FIELDS.get(ci_class, ("owner",))),
    }


def ci_types(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    cis = instance.cis()
    counts = _by(cis, "sys_class_name")
    types = {}
    for ci_class, label in CI_CLASSES.items():
        members = SUBCLASSES.get(ci_class, {ci_class})
        fields = sorted(
            {k for ci in cis if ci.get("sys_class_name") in members for k, v in ci.items() if v is not None}
        )
        types[ci_class] = {"label": label, "count": sum(counts.get(m, 0) for m in members), "fields": fields}
    return {"count": len(types), "ci_types": types}


def relationship_types(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    counts = _by(instance.relationships(), "type")
    return {
        "count": len(counts),
        "relationship_types": [
            {
                "type": kind,
                "parent_descriptor": kind.split("::")[0],
                "child_descriptor": kind.split("::")[-1],
                "in_use": n,
            }
            for kind, n in counts.items()
        ],
    }


def activity(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, cis = _cis(ctx, instance)
    limit = int_param(ctx, "limit", 20, minimum=1, maximum=MAX_ROWS)
    today = instance.now().date()
    recent = sorted(cis, key=lambda c: str(c.get("updated_on") or ""), reverse=True)
    ages = [a for ci in cis if (a := days_between(today, ci.get("updated_on"))) is not None]
    return {
        "ci_class": ci_class,
        "statistics": {
            "total_cis": len(cis),
            "updated_last_7_days": sum(1 for a in ages if a <= 7),
            "updated_last_30_days": sum(1 for a in ages if a <= 30),
            "changes_by_orchestrator": len(instance.ci_changes()),
        },
        "entries": [ci_ref(ci, updated_on=ci.get("updated_on"), owner=ci.get("owner")) for ci in recent[:limit]],
    }


def health_check(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    return {
        "status": "healthy",
        "server": "built-in cmdb-agent (bundled sample instance)",
        "configuration_items": len(instance.cis()),
        "relationships": len(instance.relationships()),
    }


HANDLERS: dict[str, Handler] = {
    "cmdb.count": count,
    "cmdb.stale": stale,
    "cmdb.duplicates": duplicates,
    "cmdb.health_trend": health_trend,
    "cmdb.dashboard": dashboard,
    "cmdb.dependency_tree": dependency_tree,
    "cmdb.history": history,
    "cmdb.reconcile": reconcile,
    "cmdb.ire_rules": ire_rules,
    "cmdb.ci_types": ci_types,
    "cmdb.relationship_types": relationship_types,
    "cmdb.activity": activity,
    "cmdb.health_check": health_check,
}
