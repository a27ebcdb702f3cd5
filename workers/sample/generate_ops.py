"""Generator, second half: discovery data, assets and licences, service catalog (built on the CMDB half).

Discovered devices are derived from the configuration items (same IPs, serials) with deliberate drift and
devices the CMDB does not know; assets follow the physical CIs with lifecycle dates, a few unlinked or
mismatched; licence entitlements are sized from the installs so that named products are over-deployed.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from workers.sample import vocabulary as vocab
from workers.sample.builder import Builder

_SERVER_CLASSES = {"cmdb_ci_linux_server", "cmdb_ci_win_server"}
_PHYSICAL_CLASSES = {*_SERVER_CLASSES, "cmdb_ci_netgear", "cmdb_ci_storage"}
_UNKNOWN_DEVICES: tuple[tuple[str, str, str, str], ...] = (
    ("tmp-build-07", "10.10.1.231", "cmdb_ci_linux_server", "Ubuntu 22.04 LTS"),
    ("ip-10-10-1-232", "10.10.1.232", "cmdb_ci_linux_server", "Debian 12"),
    ("DESKTOP-8F3K2L", "10.10.5.233", "cmdb_ci_win_server", "Windows 11 Pro"),
    ("rogue-ap-01", "10.10.1.234", "cmdb_ci_netgear", "UniFi OS 3.2"),
    ("kafka-prod-04", "10.10.1.235", "cmdb_ci_linux_server", "Red Hat Enterprise Linux 9.2"),
    ("win-sql-prod-09", "10.10.5.236", "cmdb_ci_win_server", "Windows Server 2019"),
    ("sw-acc-13", "10.0.0.240", "cmdb_ci_netgear", "Cisco IOS XE 17.9"),
    ("nas-prod-05", "10.40.0.240", "cmdb_ci_storage", "ONTAP 9.13"),
    ("stg-test-vm-3", "10.20.1.231", "cmdb_ci_linux_server", "Ubuntu 22.04 LTS"),
    ("web-stg-99", "10.20.1.232", "cmdb_ci_linux_server", "Red Hat Enterprise Linux 8.8"),
    ("WIN-STG-JMP", "10.20.5.233", "cmdb_ci_win_server", "Windows Server 2022"),
    ("lab-pi-01", "10.30.1.231", "cmdb_ci_linux_server", "Raspberry Pi OS 12"),
    ("dev-gpu-01", "10.30.1.232", "cmdb_ci_linux_server", "Ubuntu 22.04 LTS"),
    ("test-sonar-01", "10.31.1.231", "cmdb_ci_linux_server", "Red Hat Enterprise Linux 9.2"),
)


def _in_ranges(ip: str, ranges: tuple[str, ...]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(r) for r in ranges)


def _device(b: Builder, scan: dict[str, Any], ci: dict[str, Any]) -> dict[str, Any]:
    serial = ci.get("serial_number") or (b.serial("Dell Inc.") if ci["sys_class_name"] in _PHYSICAL_CLASSES else None)
    os_name = ci.get("os")
    if not os_name and ci["sys_class_name"] in _SERVER_CLASSES:
        os_name = "Windows Server 2022" if ci["sys_class_name"] == "cmdb_ci_win_server" else "Ubuntu 22.04 LTS"
    return {
        "sys_id": b.sys_id(),
        "scan": scan["sys_id"],
        "ip_address": ci["ip_address"],
        "name": ci["name"],
        "serial_number": serial,
        "os": os_name,
        "device_class": ci["sys_class_name"],
        "manufacturer": ci.get("manufacturer"),
        "model_id": ci.get("model_id"),
        "cpu_count": ci.get("cpu_count"),
        "ram_mb": ci.get("ram_mb"),
        "last_seen": scan["completed"],
    }


def _scans_for(b: Builder, schedule: dict[str, Any], n: int, first_days_ago: int) -> list[dict[str, Any]]:
    """``n`` scans a week apart, newest first, the newest about ``first_days_ago`` days old."""
    scans = []
    for index in range(n):
        started = b.rng.randint(0, 3) + first_days_ago + index * 7
        start = b.days_ago(started, started)
        scans.append(
            {
                "sys_id": b.sys_id(),
                "schedule": schedule["sys_id"],
                "schedule_name": schedule["name"],
                "ip_ranges": schedule["ip_ranges"],
                "state": "Completed",
                "started": start,
                "completed": (b.parse(start) + timedelta(minutes=b.rng.randint(8, 95))).isoformat(),
                "devices_found": 0,
                "error_count": 0,
                "scan_type": "full",
            }
        )
    return scans


def discovery(b: Builder) -> dict[str, list[dict[str, Any]]]:
    schedules: list[dict[str, Any]] = []
    scans: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    seen_ips: set[str] = set()
    live = [
        c for c in b.cis if c["install_status"] != "Retired" and c.get("ip_address") and c["sys_id"] not in b.copies
    ]
    candidates = [c for c in live if c["sys_class_name"] in _SERVER_CLASSES and c.get("os")]
    drifted = {c["sys_id"] for c in b.rng.sample(candidates, 12)}
    bigger_ram = set(b.rng.sample(sorted(drifted), 4))
    for name, ranges, kind, active, run in vocab.DISCOVERY_SCHEDULES:
        schedule = {
            "sys_id": b.sys_id(),
            "name": name,
            "ip_ranges": list(ranges),
            "discover": kind,
            "active": active,
            "run": run,
            "mid_server": "mid-dc2-01" if "Staging" in name else "mid-dc1-01",
        }
        history = _scans_for(b, schedule, 3 if active else 1, 1 if active else 200)
        latest = history[0]
        if not active:
            latest["state"] = "Cancelled"
        history[1 if active else 0]["error_count"] = b.rng.randint(1, 6)
        for ci in live if active else []:
            if ci["ip_address"] in seen_ips or not _in_ranges(ci["ip_address"], ranges) or b.rng.random() < 0.05:
                continue
            seen_ips.add(ci["ip_address"])
            device = _device(b, latest, ci)
            if ci["sys_id"] in drifted:
                device["os"] = vocab.OS_UPGRADES.get(ci["os"], ci["os"])
            if ci["sys_id"] in bigger_ram:
                device["ram_mb"] = int(ci["ram_mb"]) * 2
            devices.append(device)
        for unknown_name, ip, device_class, os_name in _UNKNOWN_DEVICES:
            if active and _in_ranges(ip, ranges):
                devices.append(
                    {
                        "sys_id": b.sys_id(),
                        "scan": latest["sys_id"],
                        "ip_address": ip,
                        "name": unknown_name,
                        "serial_number": b.serial("HPE"),
                        "os": os_name,
                        "device_class": device_class,
                        "manufacturer": None,
                        "model_id": None,
                        "cpu_count": None,
                        "ram_mb": None,
                        "last_seen": latest["completed"],
                    }
                )
        latest["devices_found"] = sum(1 for d in devices if d["scan"] == latest["sys_id"])
        for older in history[1:]:
            older["devices_found"] = max(0, latest["devices_found"] - b.rng.randint(0, 4))
        schedule["last_run"] = latest["started"]
        schedules.append(schedule)
        scans.extend(history)
    for number, scan in enumerate(sorted(scans, key=lambda s: s["started"]), start=1):
        scan["number"] = f"DSC{1000 + number:07d}"
    b.defects["drifted"] = sorted(c["name"] for c in b.cis if c["sys_id"] in drifted)
    b.defects["unmatched_devices"] = sorted(d[1] for d in _UNKNOWN_DEVICES)
    return {"discovery_schedule": schedules, "discovery_scan": scans, "discovered_device": devices}


def _lifecycle(b: Builder, eol_years: int) -> dict[str, str]:
    roll = b.rng.random()
    age = (
        b.rng.randint(60, 1500)
        if roll < 0.7
        else b.rng.randint(1500, 1900)
        if roll < 0.9
        else b.rng.randint(1900, 2700)
    )
    purchased = b.parse(b.days_ago(age, age))
    return {
        "purchased": purchased.date().isoformat(),
        "warranty_end": (purchased + timedelta(days=3 * 365)).date().isoformat(),
        "eol": (purchased + timedelta(days=eol_years * 365)).date().isoformat(),
    }


def _hardware(b: Builder) -> list[dict[str, Any]]:
    category = {
        "cmdb_ci_linux_server": "Server",
        "cmdb_ci_win_server": "Server",
        "cmdb_ci_netgear": "Network Gear",
        "cmdb_ci_storage": "Storage Device",
    }
    assets: list[dict[str, Any]] = []

    def add(**fields: Any) -> dict[str, Any]:
        asset = {
            "sys_id": b.sys_id(),
            "asset_tag": f"P{100001 + len(assets)}",
            "asset_type": "hardware",
            "assigned_to": None,
            "ci": None,
            "install_status": "In use",
            "cost": None,
            **fields,
        }
        assets.append(asset)
        return asset

    for ci in b.cis:
        physical = ci["sys_class_name"] in category and not str(ci.get("serial_number") or "").startswith("VMware")
        if not physical or ci["sys_id"] in b.copies or ci.get("manufacturer", "").startswith("VMware"):
            continue
        add(
            display_name=f"{ci['manufacturer']} {ci['model_id']} - {ci['name']}",
            model_category=category[ci["sys_class_name"]],
            manufacturer=ci["manufacturer"],
            model_id=ci["model_id"],
            serial_number=ci.get("serial_number") or b.serial(ci["manufacturer"]),
            ci=ci["sys_id"],
            location=ci["location"],
            cost=b.rng.choice((4200, 8900, 14500, 23800, 41000)),
            **_lifecycle(b, 5 if category[ci["sys_class_name"]] == "Server" else 7),
        )
    linked = [a for a in assets if a["ci"]]
    by_id = {c["sys_id"]: c for c in b.cis}
    in_use = [
        a for a in linked if by_id[a["ci"]]["install_status"] != "Retired" and by_id[a["ci"]].get("serial_number")
    ]
    unlinked = b.rng.sample(in_use, 10)
    for asset in unlinked:
        asset["ci"] = None
    mismatched = b.rng.sample([a for a in in_use if a["ci"]], 2)
    for asset in mismatched:
        asset["serial_number"] = b.serial("Lenovo")
    b.defects["unlinked_assets"] = sorted(a["asset_tag"] for a in unlinked)
    b.defects["serial_mismatch_assets"] = sorted(a["asset_tag"] for a in mismatched)
    b.defects["assets_of_retired_cis"] = sorted(
        a["asset_tag"] for a in assets if a["ci"] and by_id[a["ci"]]["install_status"] == "Retired"
    )
    for n in range(25):
        model = ("Dell Inc.", "Latitude 7440") if n % 3 else ("Apple", "MacBook Pro 14")
        add(
            display_name=f"{model[0]} {model[1]}",
            model_category="Computer",
            manufacturer=model[0],
            model_id=model[1],
            serial_number=b.serial(model[0]),
            assigned_to=vocab.OWNERS[n % len(vocab.OWNERS)],
            location="Office Berlin",
            cost=b.rng.choice((1450, 1900, 2600)),
            **_lifecycle(b, 4),
        )
    for _ in range(4):
        manufacturer, spare_model = b.rng.choice((("Dell Inc.", "PowerEdge R650"), ("HPE", "ProLiant DL380 Gen10")))
        add(
            display_name=f"{manufacturer} {spare_model} (spare)",
            model_category="Server",
            manufacturer=manufacturer,
            model_id=spare_model,
            serial_number=b.serial(manufacturer),
            install_status="In stock",
            location="DC1 Frankfurt",
            cost=8900,
            **_lifecycle(b, 5),
        )
    for name, quantity in (
        ("Cat6 patch cable 2m", 240),
        ("SFP+ 10G transceiver", 36),
        ("Toner HP 59A", 18),
        ("USB-C docking station", 12),
        ("Rack rail kit", 9),
    ):
        assets.append(
            {
                "sys_id": b.sys_id(),
                "asset_tag": f"C{2001 + len(assets)}",
                "asset_type": "consumable",
                "display_name": name,
                "quantity": quantity,
                "install_status": "In stock",
                "location": "DC1 Frankfurt",
                "assigned_to": None,
                "ci": None,
            }
        )
    return assets


def _installs(b: Builder, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    installs: list[dict[str, Any]] = []
    engine_product = {
        "Oracle": "Oracle Database Enterprise Edition",
        "MSSQL": "Microsoft SQL Server Enterprise",
        "PostgreSQL": "PostgreSQL Enterprise Support",
        "MySQL": "MySQL Enterprise Edition",
    }

    def install(product: str, target_id: str, target_name: str) -> None:
        installs.append(
            {
                "sys_id": b.sys_id(),
                "software": product,
                "publisher": vocab.SOFTWARE[product][0],
                "version": f"{b.rng.randint(7, 24)}.{b.rng.randint(0, 9)}",
                "installed_on": target_id,
                "installed_on_name": target_name,
                "install_date": b.days_ago(30, 900)[:10],
            }
        )

    for ci in b.cis:
        if ci["install_status"] == "Retired" or ci["sys_id"] in b.copies:
            continue
        products: list[str] = []
        if ci["sys_class_name"] == "cmdb_ci_linux_server":
            products = ["Datadog Agent", "CrowdStrike Falcon Sensor"]
            if str(ci.get("os") or "").startswith("Red Hat"):
                products.append("Red Hat Enterprise Linux")
        elif ci["sys_class_name"] == "cmdb_ci_win_server":
            products = ["Microsoft Windows Server Datacenter", "Datadog Agent", "CrowdStrike Falcon Sensor"]
        elif ci["sys_class_name"] == "cmdb_ci_database":
            products = [engine_product[str(ci["engine"]).split()[0]]]
        for product in products:
            install(product, ci["sys_id"], ci["name"])
    laptops = [a for a in assets if a.get("model_category") == "Computer"]
    for index, laptop in enumerate(laptops):
        install("Microsoft 365 E3", laptop["sys_id"], laptop["display_name"])
        if index % 5 < 3:
            install("Adobe Acrobat Pro", laptop["sys_id"], laptop["display_name"])
        if index % 2 == 0:
            install("Tableau Desktop", laptop["sys_id"], laptop["display_name"])
        if index in (4, 11, 19):
            install("WinZip Pro", laptop["sys_id"], laptop["display_name"])
    return installs


def _entitlements(b: Builder, installs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for product, (publisher, metric, spare) in vocab.SOFTWARE.items():
        if product in vocab.UNLICENSED:
            continue
        total = max(0, sum(1 for i in installs if i["software"] == product) + spare)
        parts = [total] if total < 10 else [total - total // 3, total // 3]
        for rights in parts:
            start = b.parse(b.days_ago(100, 700))
            rows.append(
                {
                    "sys_id": b.sys_id(),
                    "software": product,
                    "publisher": publisher,
                    "licence_metric": metric,
                    "rights": rights,
                    "contract": f"CNTR{10001 + len(rows):07d}",
                    "cost_per_unit": b.rng.choice((35, 120, 480, 2300, 17500)),
                    "start_date": start.date().isoformat(),
                    "end_date": (start + timedelta(days=3 * 365)).date().isoformat(),
                }
            )
    b.defects["over_deployed"] = sorted(p for p, (_, _, spare) in vocab.SOFTWARE.items() if spare < 0) + list(
        vocab.UNLICENSED
    )
    return rows


def assets(b: Builder) -> dict[str, list[dict[str, Any]]]:
    hardware = _hardware(b)
    installs = _installs(b, hardware)
    return {"alm_asset": hardware, "cmdb_sam_sw_install": installs, "alm_license": _entitlements(b, installs)}


def service_catalog(b: Builder) -> dict[str, list[dict[str, Any]]]:
    items = [
        {
            "sys_id": b.sys_id(),
            "name": name,
            "category": category,
            "short_description": text,
            "fulfillment_group": group,
            "delivery_days": days,
            "active": True,
        }
        for name, category, text, group, days in vocab.CATALOG_ITEMS
    ]
    groups = [
        {
            "sys_id": b.sys_id(),
            "name": name,
            "manager": manager,
            "email": name.lower().replace(" ", "-") + "@example.com",
            "handles": list(handles),
        }
        for name, manager, handles in vocab.ASSIGNMENT_GROUPS
    ]
    states = ("Closed Complete", "Work in Progress", "Open", "Pending Approval")
    requests = []
    for n in range(8):
        item = b.rng.choice(items)
        state = states[n % len(states)]
        requests.append(
            {
                "sys_id": b.sys_id(),
                "number": f"RITM{9001 + n:07d}",
                "kind": "service_request",
                "short_description": f"{item['name']} for {b.rng.choice(vocab.OWNERS)}",
                "catalog_item": item["name"],
                "assignment_group": item["fulfillment_group"],
                "state": state,
                "approval": {"Pending Approval": "requested", "Open": "not yet requested"}.get(state, "approved"),
                "requested_for": b.rng.choice(vocab.OWNERS),
                "risk_level": "low",
                "affected_cis": [],
                "created_at": b.days_ago(2, 90),
            }
        )
    knowledge = [
        {
            "sys_id": b.sys_id(),
            "number": f"KB{9001 + n:07d}",
            "kind": "knowledge",
            "title": title,
            "markdown": body,
            "created_at": b.days_ago(30, 400),
        }
        for n, (title, body) in enumerate(
            (
                (
                    "Restarting an application tier safely",
                    "Drain the load balancer pool first, then restart one node at a time.",
                ),
                (
                    "How CMDB reconciliation works",
                    "Discovery matches devices by serial number, then IP address, then name.",
                ),
                ("Licence true-up process", "Compare installs with entitlements quarterly; reclaim before buying."),
            )
        )
    ]
    return {"sc_cat_item": items, "sys_user_group": groups, "sc_req_item": requests, "kb_knowledge": knowledge}
