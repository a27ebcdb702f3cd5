"""csa-agent built-ins: service catalog, fulfilment planning from earlier findings, tickets and their status.

``plan_fulfillment`` and ``run_remediation`` read what earlier steps found (impact analysis, health audit,
discovery, licences, compliance) and turn it into a catalog item, an assignment group and a risk level:
the hand-off between agents, carried by run state.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from workers.context import ActionContext
from workers.handlers.common import (
    CAP,
    Handler,
    collect_cis,
    earlier,
    exactly_once,
    invalid,
    required_text,
    text_param,
)
from workers.sample import SampleInstance

RISK_ORDER: tuple[str, ...] = ("low", "medium", "high")
_CLASS_GROUP = {
    "cmdb_ci_linux_server": "Linux Operations",
    "cmdb_ci_win_server": "Windows Operations",
    "cmdb_ci_database": "Database Administration",
    "cmdb_ci_netgear": "Network Operations",
    "cmdb_ci_storage": "Storage Team",
    "cmdb_ci_appl": "Application Support",
    "cmdb_ci_service": "Application Support",
}
_CHANGE_ITEMS = {"Emergency change - service restoration", "Standard change - server remediation"}


def _total(value: Any) -> int:
    if isinstance(value, dict):
        return int(value.get("total", 0) or 0)
    return len(value) if isinstance(value, list) else 0


def _signals(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the earlier results say, by shape (so bridged agents' results count too when they match)."""
    found: dict[str, Any] = {
        "services": set(),
        "root": None,
        "unmatched": 0,
        "health_defects": 0,
        "over_deployed": [],
        "past_eol": 0,
        "high_findings": 0,
        "plan": None,
    }
    for result in results.values():
        if "impacted_services" in result or "impacted_cis" in result:
            found["services"].update(result.get("impacted_services") or [])
            found["root"] = found["root"] or result.get("ci")
        if "health_score" in result and "incomplete" in result:
            found["health_defects"] += _total(result.get("incomplete")) + int(
                (result.get("duplicates") or {}).get("cis", 0)
            )
        found["unmatched"] += _total(result.get("unmatched"))
        found["over_deployed"] += [p for p in result.get("over_deployed") or [] if isinstance(p, str)]
        found["past_eol"] += _total(result.get("past_eol"))
        found["high_findings"] += int((result.get("by_severity") or {}).get("high", 0) or 0)
        if {"catalog_item", "assignment_group", "risk_level"} <= set(result):
            found["plan"] = result
    return found


def _risk(signals: dict[str, Any], affected: list[dict[str, Any]], instance: SampleInstance) -> str:
    critical = [
        s for s in signals["services"] if str((instance.find_ci(s) or {}).get("criticality", "")).startswith("1")
    ]
    production = [c for c in affected if c.get("environment") == "Production"]
    if critical or len(production) >= 10 or signals["high_findings"]:
        return "high"
    if production or signals["over_deployed"] or signals["past_eol"]:
        return "medium"
    return "low"


def _item_name(signals: dict[str, Any], affected: list[dict[str, Any]], risk: str) -> str:
    if signals["root"] is not None:
        urgent = signals["services"] and risk == "high"
        return "Emergency change - service restoration" if urgent else "Standard change - server remediation"
    choices = (
        (signals["unmatched"], "Register discovered device"),
        (signals["health_defects"], "CMDB data correction"),
        (signals["over_deployed"], "Software licence true-up"),
        (signals["past_eol"], "Hardware refresh"),
        (affected or signals["high_findings"], "Standard change - server remediation"),
    )
    return next((name for present, name in choices if present), "General IT request")


def build_plan(results: dict[str, dict[str, Any]], instance: SampleInstance) -> dict[str, Any]:
    signals = _signals(results)
    affected = collect_cis(results.values())
    risk = _risk(signals, affected, instance)
    item = next(i for i in instance.table("sc_cat_item") if i["name"] == _item_name(signals, affected, risk))
    group_name = item["fulfillment_group"]
    if item["name"] in _CHANGE_ITEMS:
        root = signals["root"] or {}
        infra = Counter(
            c["sys_class_name"] for c in affected if c["sys_class_name"] not in ("cmdb_ci_appl", "cmdb_ci_service")
        )
        ci_class = root.get("sys_class_name") or (infra.most_common(1)[0][0] if infra else None)
        group_name = _CLASS_GROUP.get(str(ci_class), group_name)
    group = next(g for g in instance.table("sys_user_group") if g["name"] == group_name)
    rationale = [f"{len(affected)} CI(s) named in earlier results"]
    if signals["services"]:
        rationale.append(f"business services impacted: {', '.join(sorted(signals['services']))}")
    for key, label in (
        ("unmatched", "unmanaged devices discovered"),
        ("health_defects", "CMDB data defects"),
        ("past_eol", "assets past end of life"),
        ("high_findings", "high-severity findings"),
    ):
        if signals[key]:
            rationale.append(f"{signals[key]} {label}")
    if signals["over_deployed"]:
        rationale.append(f"over-deployed software: {', '.join(sorted(set(signals['over_deployed'])))}")
    return {
        "catalog_item": {"sys_id": item["sys_id"], "name": item["name"], "category": item["category"]},
        "assignment_group": {"sys_id": group["sys_id"], "name": group["name"]},
        "risk_level": risk,
        "affected_count": len(affected),
        "affected_cis": affected[:CAP],
        "impacted_services": sorted(signals["services"]),
        "rationale": rationale,
        "source_steps": sorted(results),
    }


def list_catalog(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    category = text_param(ctx, "category")
    items = [i for i in instance.table("sc_cat_item") if i["active"]]
    categories = Counter(i["category"] for i in items)
    if category is not None:
        match = next((c for c in categories if c.lower() == category.lower()), None)
        if match is None:
            raise invalid(
                f"Unknown catalog category {category!r}. Use one of: {', '.join(sorted(categories))}.",
                parameter="category",
            )
        items = [i for i in items if i["category"] == match]
    return {
        "category": category,
        "total": len(items),
        "categories": dict(sorted(categories.items())),
        "items": items[:CAP],
    }


def plan_fulfillment(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    return build_plan(earlier(ctx), instance)


@exactly_once
def run_remediation(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    requested = text_param(ctx, "risk_level") or "low"
    if requested not in RISK_ORDER:
        raise invalid(f"risk_level must be one of {list(RISK_ORDER)}, got {requested!r}.", parameter="risk_level")
    results = earlier(ctx)
    plan = _signals(results)["plan"] or build_plan(results, instance)
    risk = max(requested, str(plan.get("risk_level", "low")), key=RISK_ORDER.index)
    affected = plan.get("affected_cis") or []
    services = plan.get("impacted_services") or []
    item_name = (plan.get("catalog_item") or {}).get("name", "Standard change - server remediation")
    summary = text_param(ctx, "summary") or (
        f"{item_name}: {plan.get('affected_count', len(affected))} CI(s)"
        + (f" impacting {', '.join(services)}" if services else "")
        + (
            f" ({', '.join(str(c.get('name')) for c in affected[:3])}{', ...' if len(affected) > 3 else ''})"
            if affected
            else ""
        )
    )
    return instance.create_ticket(
        ctx.idempotency_key,
        prefix="CHG",
        short_description=summary,
        risk_level=risk,
        affected_cis=[c["sys_id"] for c in affected],
        affected_ci_names=[c.get("name") for c in affected][:CAP],
        catalog_item=item_name,
        assignment_group=(plan.get("assignment_group") or {}).get("name", "Service Desk"),
        impacted_services=services,
        state="New",
        approval="approved" if risk == "low" else "requested",
        type="remediation",
        remediation_type=text_param(ctx, "remediation_type") or "missing_data",
        remediation_mode=text_param(ctx, "remediation_mode") or "manual",
        run_id=ctx.run_id,
    )


@exactly_once
def create_request(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    description = required_text(ctx, "description")
    wanted = text_param(ctx, "catalog_item") or "General IT request"
    items = instance.table("sc_cat_item")
    item = next((i for i in items if wanted.lower() in (i["sys_id"], i["name"].lower())), None)
    if item is None:
        raise invalid(
            f"Catalog item {wanted!r} not found. Use one of: {', '.join(i['name'] for i in items)}.",
            parameter="catalog_item",
        )
    return instance.create_ticket(
        ctx.idempotency_key,
        prefix="RITM",
        short_description=description[:160],
        risk_level="low",
        affected_cis=[],
        description=description,
        catalog_item=item["name"],
        assignment_group=item["fulfillment_group"],
        state="Open",
        approval="requested",
        type="service_request",
        run_id=ctx.run_id,
    )


def request_status(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ref = required_text(ctx, "request_id")
    ticket = instance.find_ticket(ref)
    if ticket is None:
        raise invalid(
            f"Request {ref!r} not found. Give a number such as RITM0010001 or CHG0010001, or a sys_id.",
            parameter="request_id",
        )
    fields = (
        "sys_id",
        "number",
        "short_description",
        "state",
        "approval",
        "risk_level",
        "catalog_item",
        "assignment_group",
        "created_at",
    )
    return {**{f: ticket.get(f) for f in fields}, "affected_ci_count": len(ticket.get("affected_cis") or [])}


HANDLERS: dict[str, Handler] = {
    "csa.list_catalog": list_catalog,
    "csa.plan_fulfillment": plan_fulfillment,
    "csa.run_remediation": run_remediation,
    "csa.create_request": create_request,
    "csa.request_status": request_status,
}
