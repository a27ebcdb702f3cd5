"""Discovery reconciliation rules: which CI a discovered device is, and where the two disagree.

Matching follows the order ServiceNow's identification rules use for hardware: serial number first, then
IP address, then host name. Shared by discovery (scan, reconcile) and the auditor (drift, compliance).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

DRIFT_FIELDS: tuple[str, ...] = ("name", "os", "serial_number", "cpu_count", "ram_mb")
_ENVIRONMENT_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("10.10.", "Production"),
    ("10.0.0.", "Production"),
    ("10.40.0.", "Production"),
    ("10.20.", "Staging"),
    ("10.30.", "Development"),
    ("10.31.", "Test"),
)
PRODUCTION_NETWORKS: tuple[str, ...] = ("10.10.0.0/16", "10.0.0.0/24", "10.40.0.0/24")


def environment_for_ip(ip: str) -> str:
    return next((env for prefix, env in _ENVIRONMENT_BY_PREFIX if ip.startswith(prefix)), "Production")


def on_production_network(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(net) for net in PRODUCTION_NETWORKS)


def in_network(ip: Any, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return isinstance(ip, str) and ipaddress.ip_address(ip) in network
    except ValueError:
        return False


@dataclass
class Matching:
    """Devices split into matched (with their CI) and unmatched, plus every field that drifted."""

    matched: list[tuple[dict[str, Any], dict[str, Any], str]] = field(default_factory=list)  # device, ci, rule
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted_ci_ids(self) -> set[str]:
        return {d["sys_id"] for d in self.drift}


def _normalise(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def match_devices(devices: list[dict[str, Any]], cis: list[dict[str, Any]]) -> Matching:
    """Match each device to a live CI; a later-updated CI wins an index slot (duplicates keep the fresh one)."""
    index: dict[str, dict[str, dict[str, Any]]] = {"serial_number": {}, "ip_address": {}, "name": {}}
    for ci in sorted(cis, key=lambda c: str(c.get("updated_on") or "")):
        for key, slots in index.items():
            value = _normalise(ci.get(key))
            if value:
                slots[value] = ci
    result = Matching()
    for device in devices:
        hit = next(
            (
                (index[key][value], key)
                for key in index
                if (value := _normalise(device.get(key))) and value in index[key]
            ),
            None,
        )
        if hit is None:
            result.unmatched.append(device)
            continue
        ci, rule = hit
        result.matched.append((device, ci, rule))
        for name in DRIFT_FIELDS:
            discovered, recorded = device.get(name), ci.get(name)
            if discovered not in (None, "") and _normalise(discovered) != _normalise(recorded):
                result.drift.append(
                    {
                        "sys_id": ci["sys_id"],
                        "name": ci["name"],
                        "ip_address": device["ip_address"],
                        "field": name,
                        "recorded": recorded,
                        "discovered": discovered,
                    }
                )
    return result


def device_row(device: dict[str, Any]) -> dict[str, Any]:
    return {k: device.get(k) for k in ("ip_address", "name", "device_class", "os", "serial_number")}
