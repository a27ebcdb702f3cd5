"""discovery-agent built-ins: scan an IP range, scan status, schedules, and reconcile results into the CMDB.

A scan here replays the instance's latest discovery data for the range (what a MID server would report)
and compares it with the CMDB as it is now, so a reconcile followed by another scan finds less to do.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from workers.context import ActionContext
from workers.handlers.common import (
    CAP,
    MAX_ROWS,
    Handler,
    exactly_once,
    int_param,
    invalid,
    listing,
    network_param,
    text_param,
)
from workers.handlers.matching import device_row, environment_for_ip, in_network, match_devices
from workers.sample import Change, SampleInstance
from workers.sample.store import record_id_for


def _overlapping_schedules(instance: SampleInstance, network: Any) -> list[str]:
    names = []
    for schedule in instance.table("discovery_schedule"):
        if any(
            ipaddress.ip_network(r).overlaps(network)
            for r in schedule["ip_ranges"]
            if ipaddress.ip_network(r).version == network.version
        ):
            names.append(schedule["name"])
    return names


def scan_summary(instance: SampleInstance, network: Any, scan_type: str) -> dict[str, Any]:
    """What a scan of ``network`` finds now: devices, matched/unmatched CIs, drift, silent CIs."""
    devices = [d for d in instance.table("discovered_device") if in_network(d["ip_address"], network)]
    live = instance.cis()
    matching = match_devices(devices, live)
    seen_ci_ids = {ci["sys_id"] for _, ci, _ in matching.matched}
    silent = [ci for ci in live if in_network(ci.get("ip_address"), network) and ci["sys_id"] not in seen_ci_ids]
    drifted_ips = {d["ip_address"] for d in matching.drift}
    changed = [d for d in devices if d["ip_address"] in drifted_ips] + matching.unmatched
    return {
        "ip_range": str(network),
        "scan_type": scan_type,
        "state": "Completed",
        "schedules": _overlapping_schedules(instance, network),
        "devices_found": len(devices),
        "devices_reported": len(devices) if scan_type == "full" else len(changed),
        "matched": len(matching.matched),
        "unmatched": listing([device_row(d) for d in matching.unmatched]),
        "drift": {"cis": len(matching.drifted_ci_ids), **listing(matching.drift)},
        "not_responding": listing(
            [{"sys_id": c["sys_id"], "name": c["name"], "ip_address": c["ip_address"]} for c in silent]
        ),
    }


@exactly_once
def scan(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    schedule_ref = text_param(ctx, "schedule_id")
    if schedule_ref is not None:  # run a schedule: scan its first range
        ctx.params["ip_range"] = _find_schedule(instance, schedule_ref)["ip_ranges"][0]
    network = network_param(ctx, "ip_range", "10.0.0.0/16")
    scan_type = text_param(ctx, "scan_type") or "full"
    if scan_type not in ("full", "incremental"):
        raise invalid(f"scan_type must be 'full' or 'incremental', got {scan_type!r}.", parameter="scan_type")
    summary = scan_summary(instance, network, scan_type)
    summary["scan_id"] = record_id_for("scan", ctx.idempotency_key)
    summary["completed"] = instance.now().isoformat()
    return instance.record_scan(ctx.idempotency_key, summary)


def _scan_row(scan: dict[str, Any]) -> dict[str, Any]:
    return {
        "scan_id": scan["sys_id"],
        "number": scan.get("number"),
        "schedule": scan.get("schedule_name") or ", ".join(scan.get("schedules") or []) or None,
        "state": scan.get("state"),
        "started": scan.get("started"),
        "completed": scan.get("completed"),
        "ip_ranges": scan.get("ip_ranges") or [scan.get("ip_range")],
        "devices_found": scan.get("devices_found"),
        "error_count": scan.get("error_count", 0),
    }


def _find_schedule(instance: SampleInstance, ref: str) -> dict[str, Any]:
    schedules = instance.table("discovery_schedule")
    found = next((s for s in schedules if ref.lower() in (s["sys_id"], s["name"].lower())), None)
    if found is None:
        raise invalid(
            f"Discovery schedule '{ref}' not found. Known schedules: {', '.join(s['name'] for s in schedules)}.",
            parameter="schedule_id",
        )
    return found


def status(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    ref = text_param(ctx, "schedule_id")
    limit = int_param(ctx, "limit", CAP, minimum=1, maximum=MAX_ROWS)
    scans = instance.scans()
    scan_ref = text_param(ctx, "scan_id")
    if scan_ref is not None:
        scans = [s for s in scans if scan_ref.lower() in (s["sys_id"], str(s.get("number", "")).lower())]
        if not scans:
            raise invalid(
                f"Discovery scan '{scan_ref}' not found; leave scan_id out to list the scans.", parameter="scan_id"
            )
    if ref is not None:
        schedule = _find_schedule(instance, ref)
        scans = [
            s
            for s in scans
            if s.get("schedule") == schedule["sys_id"] or schedule["name"] in (s.get("schedules") or [])
        ]
    by_state: dict[str, int] = {}
    for item in scans:
        by_state[str(item.get("state"))] = by_state.get(str(item.get("state")), 0) + 1
    return {
        "schedule_id": ref,
        "total": len(scans),
        "by_state": by_state,
        "scans": [_scan_row(s) for s in scans[:limit]],
    }


def schedule(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    active_only = bool(ctx.params.get("active_only"))
    latest: dict[str, dict[str, Any]] = {}
    for item in reversed(instance.scans()):
        if item.get("schedule"):
            latest[item["schedule"]] = item
    rows = []
    for sched in instance.table("discovery_schedule"):
        if active_only and not sched["active"]:
            continue
        last = latest.get(sched["sys_id"], {})
        rows.append({**sched, "last_state": last.get("state"), "last_devices_found": last.get("devices_found")})
    return {
        "active_only": active_only,
        "total": len(rows),
        "active": sum(1 for r in rows if r["active"]),
        "schedules": rows,
    }


def _devices_of(instance: SampleInstance, scan_ref: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    devices = instance.table("discovered_device")
    if scan_ref is None:
        return None, devices
    wanted = scan_ref.strip().lower()
    found = next((s for s in instance.scans() if wanted in (s["sys_id"], str(s.get("number", "")).lower())), None)
    if found is None:
        raise invalid(
            f"Discovery scan '{scan_ref}' not found; discovery.status lists scan ids and numbers.", parameter="scan_id"
        )
    if found.get("ip_range"):  # a scan run here: its range, as it stands now
        network = ipaddress.ip_network(found["ip_range"])
        return found["sys_id"], [d for d in devices if in_network(d["ip_address"], network)]
    own = [d for d in devices if d["scan"] == found["sys_id"]]
    if not own:
        raise invalid(
            f"Scan {found.get('number')} keeps no device data (only the latest scan of each schedule "
            f"does); reconcile the latest scan or leave scan_id empty.",
            parameter="scan_id",
        )
    return found["sys_id"], own


@exactly_once
def reconcile(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
    scan_id, devices = _devices_of(instance, text_param(ctx, "scan_id"))
    matching = match_devices(devices, instance.cis())
    changes: list[Change] = []
    created = []
    for device in matching.unmatched:
        sys_id = record_id_for("ci", f"{ctx.idempotency_key}:{device['ip_address']}")
        fields = {
            "name": device["name"],
            "sys_class_name": device["device_class"],
            "ip_address": device["ip_address"],
            "serial_number": device.get("serial_number"),
            "os": device.get("os"),
            "owner": None,
            "environment": environment_for_ip(device["ip_address"]),
            "discovery_source": "ServiceNow",
            "operational_status": "Operational",
            "install_status": "Installed",
        }
        changes.append(Change("ci", sys_id, "create", fields))
        created.append(
            {
                "sys_id": sys_id,
                "name": device["name"],
                "sys_class_name": device["device_class"],
                "ip_address": device["ip_address"],
            }
        )
    updates: dict[str, dict[str, Any]] = {}
    for drift in matching.drift:
        updates.setdefault(drift["sys_id"], {"name": drift["name"], "fields": {}})["fields"][drift["field"]] = drift[
            "discovered"
        ]
    changes.extend(Change("ci", sys_id, "update", u["fields"]) for sys_id, u in updates.items())
    summary = {
        "scan_id": scan_id,
        "devices": len(devices),
        "matched": len(matching.matched),
        "created": listing(created),
        "updated": listing([{"sys_id": k, **u} for k, u in updates.items()]),
    }
    return instance.apply_changes(ctx.idempotency_key, "discovery:reconcile", changes, summary)


HANDLERS: dict[str, Handler] = {
    "discovery.scan": scan,
    "discovery.status": status,
    "discovery.reconcile": reconcile,
    "discovery.schedule": schedule,
}
