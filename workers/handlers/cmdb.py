"""cmdb-agent built-ins: query, health audit, impact analysis, and CI writes (update, create, retire, bulk)."""

from __future__ import annotations

import fnmatch
from typing import Any

from workers.context import ActionContext
from workers.handlers.common import (
    CAP,
    ENVIRONMENTS,
    MAX_ROWS,
    Handler,
    ci_class_param,
    ci_class_value,
    ci_ref,
    ci_row,
    environment_param,
    environment_value,
    exactly_once,
    in_class,
    int_param,
    invalid,
    listing,
    required_text,
    resolve_ci,
    text_param,
)
from workers.handlers.graph import CIGraph
from workers.handlers.quality import assess
from workers.sample import Change, SampleInstance

EDITABLE_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "environment",
        "owner",
        "support_group",
        "serial_number",
        "os",
        "ip_address",
        "location",
        "operational_status",
        "short_description",
        "cpu_count",
        "ram_mb",
        "manufacturer",
        "model_id",
        "version",
        "engine",
        "criticality",
    }
)
STATUSES: tuple[str, ...] = ("Operational", "Non-Operational", "Repair in Progress")
_KIND = {
    "cmdb_ci_service": "services",
    "cmdb_ci_appl": "applications",
    "cmdb_ci_linux_server": "servers",
    "cmdb_ci_win_server": "servers",
    "cmdb_ci_database": "databases",
}


def ping(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    return {"pong": True}


def query(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class, environment = ci_class_param(ctx), environment_param(ctx)
    name = text_param(ctx, "name")
    limit = int_param(ctx, "limit", CAP, minimum=1, maximum=MAX_ROWS)
    pattern = None if name is None else (name.lower() if any(c in name for c in "*?[") else f"*{name.lower()}*")
    rows = sorted(
        (
            ci
            for ci in instance.cis()
            if in_class(ci, ci_class)
            and (environment is None or ci["environment"] == environment)
            and (pattern is None or fnmatch.fnmatchcase(str(ci.get("name", "")).lower(), pattern))
        ),
        key=lambda ci: (str(ci.get("name")), ci["sys_id"]),
    )
    return {
        "filters": {"ci_class": ci_class, "name": name, "environment": environment},
        "total": len(rows),
        "returned": min(limit, len(rows)),
        "items": [ci_row(ci) for ci in rows[:limit]],
    }


def health_audit(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class = ci_class_param(ctx)
    stale_days = int_param(ctx, "stale_days", 90, minimum=1, maximum=3650)
    cis = [ci for ci in instance.cis() if in_class(ci, ci_class)]
    quality = assess(cis, instance.now().date(), stale_days)
    duplicates = [
        {"match": g.match, "value": g.value, "count": len(g.cis), "cis": [ci_ref(c) for c in g.cis]}
        for g in quality.duplicates
    ]
    return {
        "ci_class": ci_class,
        "total_cis": quality.total,
        "health_score": quality.health_score,
        **quality.scores,
        "duplicates": {"groups": len(duplicates), "cis": len(quality.duplicate_ids), "items": duplicates[:CAP]},
        "stale": {
            "threshold_days": stale_days,
            **listing([ci_ref(ci, days_since_update=age) for ci, age in quality.stale]),
        },
        "incomplete": listing([ci_ref(ci, missing=gaps) for ci, gaps in quality.incomplete]),
    }


def map_relationships(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    depth = int_param(ctx, "depth", 3, minimum=1, maximum=10)
    graph = CIGraph(instance.cis(include_retired=True), instance.relationships())
    impacted = graph.walk(ci["sys_id"], "up", depth)
    depends_on = graph.walk(ci["sys_id"], "down", depth)
    counts: dict[str, int] = {}
    for reach in impacted:
        kind = _KIND.get(str(graph.cis[reach.sys_id]["sys_class_name"]), "other")
        counts[kind] = counts.get(kind, 0) + 1
    services = sorted(
        graph.name(r.sys_id) for r in impacted if graph.cis[r.sys_id]["sys_class_name"] == "cmdb_ci_service"
    )

    def row(reach: Any) -> dict[str, Any]:
        return ci_ref(
            graph.cis[reach.sys_id],
            distance=reach.distance,
            path=[graph.name(s) for s in reach.path],
            via=list(reach.relations),
        )

    return {
        "ci": ci_ref(ci),
        "depth": depth,
        "impacted_count": len(impacted),
        "impacted_by_kind": counts,
        "impacted_services": services,
        "impacted_cis": [row(r) for r in impacted[:CAP]],
        "impacted_truncated": len(impacted) > CAP,
        "dependency_count": len(depends_on),
        "dependencies": [row(r) for r in depends_on[:CAP]],
        "summary": (
            f"A failure of {ci['name']} impacts {len(impacted)} CI(s) within {depth} hop(s), "
            f"including {len(services)} business service(s): {', '.join(services) or 'none'}."
        ),
    }


def _checked_fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise invalid(
            "Parameter 'fields' must be a non-empty object of CI field names to new values.", parameter="fields"
        )
    unknown = sorted(set(value) - EDITABLE_FIELDS)
    if unknown:
        raise invalid(
            f"Field(s) {unknown} cannot be set. Editable fields: {', '.join(sorted(EDITABLE_FIELDS))}.",
            parameter="fields",
        )
    fields = dict(value)
    if "environment" in fields:
        fields["environment"] = environment_value(fields["environment"], "fields.environment")
    if "operational_status" in fields and fields["operational_status"] not in STATUSES:
        raise invalid(
            f"operational_status must be one of {list(STATUSES)} (use cmdb.delete to retire a CI).", parameter="fields"
        )
    if "name" in fields and (not isinstance(fields["name"], str) or not fields["name"].strip()):
        raise invalid("A CI name must be a non-empty string.", parameter="fields")
    return fields


@exactly_once
def update(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    fields = _checked_fields(ctx.params.get("fields"))
    previous = {name: ci.get(name) for name in fields}
    return instance.update_ci(ctx.idempotency_key, ci["sys_id"], fields, {"name": ci["name"], "previous": previous})


@exactly_once
def create(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci_class = ci_class_value(required_text(ctx, "ci_class"))
    name = required_text(ctx, "name")
    fields = _checked_fields(ctx.params["fields"]) if ctx.params.get("fields") else {}
    fields.pop("name", None)
    existing = instance.find_ci(name, include_retired=False)
    if existing is not None:
        raise invalid(
            f"A live CI named '{name}' already exists (sys_id {existing['sys_id']}); update it with "
            f"cmdb.update instead of creating a duplicate.",
            ci=name,
        )
    fields.setdefault("environment", ENVIRONMENTS[0])
    return instance.create_ci(ctx.idempotency_key, ci_class, name, fields)


@exactly_once
def delete(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ci = resolve_ci(instance, ctx.params.get("ci_id"))
    if ci.get("install_status") == "Retired":
        raise invalid(f"CI '{ci['name']}' ({ci['sys_id']}) is already retired.", ci=ci["sys_id"])
    return instance.retire_ci(
        ctx.idempotency_key, ci["sys_id"], {"name": ci["name"], "previous_status": ci.get("operational_status")}
    )


@exactly_once
def bulk_operations(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    refs = ctx.params.get("ci_ids")
    if not isinstance(refs, list) or not refs or len(refs) > 500:
        raise invalid("Parameter 'ci_ids' must be a list of 1 to 500 CI sys_ids or names.", parameter="ci_ids")
    fields = _checked_fields(ctx.params.get("fields"))
    found = {str(ref): instance.find_ci(str(ref)) for ref in refs}
    unknown = [ref for ref, ci in found.items() if ci is None]
    if unknown:
        raise invalid(
            f"{len(unknown)} CI(s) not found: {unknown[:10]}. Fix or remove them and retry.",
            parameter="ci_ids",
            unknown=unknown[:50],
        )
    targets = {ci["sys_id"]: ci for ci in found.values() if ci is not None}
    changes = [Change("ci", sys_id, "update", fields) for sys_id in targets]
    summary = {
        "updated_count": len(changes),
        "fields": fields,
        "cis": [ci_ref(ci) for ci in list(targets.values())[:CAP]],
    }
    return instance.apply_changes(ctx.idempotency_key, "ci:bulk_update", changes, summary)


HANDLERS: dict[str, Handler] = {
    "cmdb.ping": ping,
    "cmdb.query": query,
    "cmdb.health_audit": health_audit,
    "cmdb.map_relationships": map_relationships,
    "cmdb.update": update,
    "cmdb.create": create,
    "cmdb.delete": delete,
    "cmdb.bulk_operations": bulk_operations,
}
