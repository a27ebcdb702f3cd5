"""itom-auditor built-ins: compliance findings, configuration drift, the audit report and policy checks."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from workers.context import ActionContext
from workers.handlers.common import CAP, Handler, earlier, invalid, listing, text_param
from workers.handlers.matching import device_row, in_network, match_devices
from workers.handlers.rules import CATEGORIES, SEVERITY_WEIGHT, Facts, Outcome, evaluate, score
from workers.sample import SampleInstance

SCOPES: dict[str, tuple[str, ...]] = {
    "cmdb": ("cmdb",),
    "discovery": ("discovery",),
    "asset": ("asset",),
    "assets": ("asset",),
    "full": CATEGORIES,
}


def _earlier_scan(
    ctx: ActionContext, instance: SampleInstance
) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """The devices of a discovery scan an earlier step ran, so the audit judges that scan's results."""
    for result in earlier(ctx).values():
        if "scan_id" in result and isinstance(result.get("ip_range"), str) and "unmatched" in result:
            network = ipaddress.ip_network(result["ip_range"])
            return result, [d for d in instance.table("discovered_device") if in_network(d["ip_address"], network)]
    return None, None


def _by_severity(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(f["severity"] for f in findings)
    return {severity: counts.get(severity, 0) for severity in SEVERITY_WEIGHT}


def _ordered(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    found = [f for o in outcomes for f in o.findings]
    return sorted(found, key=lambda f: -SEVERITY_WEIGHT[f["severity"]])


def compliance(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    scope = (text_param(ctx, "scope") or "cmdb").lower()
    if scope not in SCOPES:
        raise invalid(f"Unknown audit scope {scope!r}. Use one of: cmdb, discovery, asset, full.", parameter="scope")
    scan, devices = _earlier_scan(ctx, instance)
    categories = SCOPES[scope] + (("discovery",) if scan is not None and "discovery" not in SCOPES[scope] else ())
    outcomes = evaluate(categories, Facts(instance, devices))
    findings = _ordered(outcomes)
    return {
        "scope": scope,
        "categories": list(categories),
        "scan": scan.get("number") if scan else None,
        "score": score(outcomes),
        "rules_evaluated": len(outcomes),
        "rules_failed": sum(1 for o in outcomes if o.findings),
        "by_severity": _by_severity(findings),
        "rules": [o.row() for o in outcomes],
        "findings": listing(findings),
    }


def drift(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    matching = match_devices(instance.table("discovered_device"), instance.cis())
    by_field = Counter(d["field"] for d in matching.drift)
    return {
        "devices_compared": len(matching.matched) + len(matching.unmatched),
        "matched": len(matching.matched),
        "drifted_cis": len(matching.drifted_ci_ids),
        "by_field": dict(sorted(by_field.items())),
        "drift": listing(matching.drift),
        "unmatched": listing([device_row(d) for d in matching.unmatched]),
    }


def report(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    facts = Facts(instance)
    outcomes = evaluate(CATEGORIES, facts)
    findings = _ordered(outcomes)
    by_category = {c: score([o for o in outcomes if o.rule.category == c]) for c in CATEGORIES}
    return {
        "title": "ITOM compliance report",
        "generated_at": instance.now().isoformat(),
        "compliance_score": score(outcomes),
        "cmdb_health_score": facts.quality.health_score,
        "by_category": by_category,
        "by_severity": _by_severity(findings),
        "findings_total": len(findings),
        "rules": [o.row() for o in outcomes],
        "top_findings": findings[:10],
    }


def policy(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    category = text_param(ctx, "category")
    if category is not None and category.lower() not in CATEGORIES:
        raise invalid(
            f"Unknown policy category {category!r}. Use one of: {', '.join(CATEGORIES)}.", parameter="category"
        )
    outcomes = evaluate((category.lower(),) if category else CATEGORIES, Facts(instance))
    rows = [{**o.row(), "examples": [f["target"] for f in o.findings[:5]]} for o in outcomes]
    return {
        "category": category,
        "rules_total": len(rows),
        "rules_passed": sum(1 for r in rows if r["passed"]),
        "score": score(outcomes),
        "rules": rows[:CAP],
    }


HANDLERS: dict[str, Handler] = {
    "audit.compliance": compliance,
    "audit.drift": drift,
    "audit.report": report,
    "audit.policy": policy,
}
