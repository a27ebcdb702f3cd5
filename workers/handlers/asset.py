"""asset-agent built-ins: asset queries, lifecycle (end of life, warranty), asset-to-CI reconcile, licences."""

from __future__ import annotations

from typing import Any

from workers.context import ActionContext
from workers.handlers.common import (
    CAP,
    MAX_ROWS,
    Handler,
    days_between,
    exactly_once,
    int_param,
    invalid,
    listing,
    text_param,
)
from workers.sample import Change, SampleInstance

ASSET_STATUSES: tuple[str, ...] = ("In use", "In stock", "In maintenance", "Pending disposal", "Retired")
_INFRASTRUCTURE = ("Server", "Network Gear", "Storage Device")


def _asset_row(asset: dict[str, Any], ci_names: dict[str, str]) -> dict[str, Any]:
    row = {
        k: asset.get(k)
        for k in (
            "sys_id",
            "asset_tag",
            "display_name",
            "asset_type",
            "model_category",
            "install_status",
            "assigned_to",
            "serial_number",
            "eol",
        )
    }
    row["ci_name"] = ci_names.get(str(asset.get("ci")))
    return row


def query(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    asset_type = text_param(ctx, "asset_type")
    status = text_param(ctx, "status")
    assigned_to = text_param(ctx, "assigned_to")
    limit = int_param(ctx, "limit", CAP, minimum=1, maximum=MAX_ROWS)
    if asset_type not in (None, "hardware", "software", "consumable"):
        raise invalid("asset_type must be 'hardware', 'software' or 'consumable'.", parameter="asset_type")
    if asset_type == "software":
        if status is not None:
            raise invalid("'status' filters hardware and consumables; software installs have none.", parameter="status")
        rows = [
            dict(i)
            for i in instance.table("cmdb_sam_sw_install")
            if assigned_to is None or assigned_to.lower() in str(i["installed_on_name"]).lower()
        ]
        return {
            "filters": {"asset_type": asset_type, "assigned_to": assigned_to},
            "total": len(rows),
            "returned": min(limit, len(rows)),
            "items": rows[:limit],
        }
    if status is not None:
        status = next((s for s in ASSET_STATUSES if s.lower() == status.lower()), None) or _bad_status(status)
    ci_names = {c["sys_id"]: c["name"] for c in instance.cis(include_retired=True)}
    rows = [
        a
        for a in instance.assets()
        if (asset_type is None or a["asset_type"] == asset_type)
        and (status is None or a["install_status"] == status)
        and (assigned_to is None or assigned_to.lower() in str(a.get("assigned_to") or "").lower())
    ]
    by_status: dict[str, int] = {}
    for asset in rows:
        by_status[asset["install_status"]] = by_status.get(asset["install_status"], 0) + 1
    return {
        "filters": {"asset_type": asset_type, "status": status, "assigned_to": assigned_to},
        "total": len(rows),
        "returned": min(limit, len(rows)),
        "by_status": by_status,
        "items": [_asset_row(a, ci_names) for a in rows[:limit]],
    }


def _bad_status(status: str) -> str:
    raise invalid(f"Unknown asset status {status!r}. Use one of: {', '.join(ASSET_STATUSES)}.", parameter="status")


def lifecycle(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    horizon = int_param(ctx, "horizon_days", 180, minimum=1, maximum=3650)
    today = instance.now().date()
    ci_names = {c["sys_id"]: c["name"] for c in instance.cis(include_retired=True)}
    hardware = [a for a in instance.assets() if a["asset_type"] == "hardware" and a["install_status"] != "Retired"]
    wanted = text_param(ctx, "asset_id")
    if wanted is not None:
        hardware = [a for a in hardware if wanted.lower() in (a["sys_id"], str(a.get("asset_tag", "")).lower())]
        if not hardware:
            raise invalid(
                f"No hardware asset '{wanted}' in use: give an asset sys_id or tag such as P100001.",
                parameter="asset_id",
            )
    past, near, warranty_over, warranty_soon = [], [], [], []
    for asset in sorted(hardware, key=lambda a: str(a.get("eol"))):
        to_eol = -(days_between(today, asset.get("eol")) or 0)
        to_warranty = -(days_between(today, asset.get("warranty_end")) or 0)
        row = {
            **_asset_row(asset, ci_names),
            "days_to_eol": to_eol,
            "warranty_end": asset.get("warranty_end"),
            "cost": asset.get("cost"),
        }
        if to_eol < 0:
            past.append(row)
        elif to_eol <= horizon:
            near.append(row)
        if to_warranty < 0:
            warranty_over.append(row)
        elif to_warranty <= horizon:
            warranty_soon.append(row)
    refresh_cost = sum(int(r.get("cost") or 0) for r in past + near)
    return {
        "horizon_days": horizon,
        "hardware_assets": len(hardware),
        "past_eol": listing(past),
        "eol_within_horizon": listing(near),
        "warranty_expired": len(warranty_over),
        "warranty_expiring": listing(warranty_soon),
        "estimated_refresh_cost": refresh_cost,
    }


@exactly_once
def reconcile(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    cis = instance.cis(include_retired=True)
    by_id = {c["sys_id"]: c for c in cis}
    by_serial = {
        str(c["serial_number"]).lower(): c
        for c in sorted(cis, key=lambda c: str(c.get("updated_on")))
        if c.get("serial_number") and c.get("install_status") != "Retired"
    }
    changes: list[Change] = []
    linked, orphaned, retired, mismatched = [], [], [], []
    for asset in instance.assets():
        if asset["asset_type"] != "hardware" or asset.get("model_category") not in _INFRASTRUCTURE:
            continue
        ci = by_id.get(str(asset.get("ci")))
        tag = {"asset_tag": asset["asset_tag"], "display_name": asset["display_name"]}
        if ci is None and asset["install_status"] == "In use":
            match = by_serial.get(str(asset.get("serial_number")).lower())
            if match is None:
                orphaned.append(tag)
            else:
                changes.append(Change("asset", asset["sys_id"], "update", {"ci": match["sys_id"]}))
                linked.append({**tag, "ci": match["sys_id"], "ci_name": match["name"]})
        elif ci is not None and ci.get("install_status") == "Retired" and asset["install_status"] == "In use":
            changes.append(Change("asset", asset["sys_id"], "update", {"install_status": "Pending disposal"}))
            retired.append({**tag, "ci_name": ci["name"], "new_status": "Pending disposal"})
        elif ci is not None and ci.get("serial_number") and asset.get("serial_number") != ci["serial_number"]:
            mismatched.append(
                {
                    **tag,
                    "ci_name": ci["name"],
                    "asset_serial": asset.get("serial_number"),
                    "ci_serial": ci["serial_number"],
                }
            )
    summary = {
        "linked": listing(linked),
        "retired_ci_assets": listing(retired),
        "serial_mismatch": listing(mismatched),
        "orphaned": listing(orphaned),
    }
    return instance.apply_changes(ctx.idempotency_key, "asset:reconcile", changes, summary)


def licence_position(instance: SampleInstance) -> list[dict[str, Any]]:
    """Per product: installs vs entitlements, with status ``compliant`` or ``over-deployed``."""
    installs: dict[str, list[dict[str, Any]]] = {}
    for row in instance.table("cmdb_sam_sw_install"):
        installs.setdefault(row["software"], []).append(row)
    rights: dict[str, list[dict[str, Any]]] = {}
    for row in instance.table("alm_license"):
        rights.setdefault(row["software"], []).append(row)
    products = []
    for product in sorted(set(installs) | set(rights)):
        installed, contracts = installs.get(product, []), rights.get(product, [])
        entitled = sum(int(c["rights"]) for c in contracts)
        shortfall = max(0, len(installed) - entitled)
        unit_cost = max((int(c["cost_per_unit"]) for c in contracts), default=0)
        products.append(
            {
                "software": product,
                "publisher": (installed or contracts)[0]["publisher"],
                "installed": len(installed),
                "entitled": entitled,
                "status": "over-deployed" if shortfall else "compliant",
                "shortfall": shortfall,
                "unused": max(0, entitled - len(installed)),
                "unlicensed": not contracts,
                "true_up_cost": shortfall * unit_cost if contracts else None,
                "installed_on": sorted({i["installed_on_name"] for i in installed})[:10] if shortfall else [],
            }
        )
    return products


def license_check(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    wanted = text_param(ctx, "software")
    products = licence_position(instance)
    if wanted is not None:
        chosen = [p for p in products if wanted.lower() in p["software"].lower()]
        if not chosen:
            raise invalid(
                f"No software matching {wanted!r}. Known products: {', '.join(p['software'] for p in products)}.",
                parameter="software",
            )
        products = chosen
    over = [p for p in products if p["status"] == "over-deployed"]
    return {
        "software": wanted,
        "total_products": len(products),
        "compliant_count": len(products) - len(over),
        "over_deployed_count": len(over),
        "over_deployed": [p["software"] for p in over],
        "compliance_rate": round(100 * (len(products) - len(over)) / len(products), 1) if products else 100.0,
        "products": products[:CAP],
    }


HANDLERS: dict[str, Handler] = {
    "asset.query": query,
    "asset.lifecycle": lifecycle,
    "asset.reconcile": reconcile,
    "asset.license_check": license_check,
}
