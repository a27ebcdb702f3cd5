"""The auditor's policy rules: each checks one thing over CIs, discovery results or assets.

Why a table of small rules: ``audit.compliance`` (findings), ``audit.policy`` (pass/fail per rule) and
``audit.report`` (scores) all evaluate the same rules, and a rule's evaluated count makes the score a
pass rate rather than a count of problems that grows with the estate.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

from workers.handlers.asset import licence_position
from workers.handlers.common import SERVER_CLASSES, days_between
from workers.handlers.matching import Matching, match_devices, on_production_network
from workers.handlers.quality import PHYSICAL_CLASSES, Quality, assess
from workers.sample import SampleInstance
from workers.sample.vocabulary import END_OF_LIFE_OS

SEVERITY_WEIGHT = {"high": 3, "medium": 2, "low": 1}
CATEGORIES: tuple[str, ...] = ("cmdb", "discovery", "asset")


class Facts:
    """Inputs of one evaluation, computed on first use and shared by every rule."""

    def __init__(self, instance: SampleInstance, devices: list[dict[str, Any]] | None = None) -> None:
        self.instance = instance
        self.devices = devices if devices is not None else instance.table("discovered_device")
        self.today: date = instance.now().date()

    @cached_property
    def cis(self) -> list[dict[str, Any]]:
        return self.instance.cis()

    @cached_property
    def quality(self) -> Quality:
        return assess(self.cis, self.today, 90)

    @cached_property
    def matching(self) -> Matching:
        return match_devices(self.devices, self.cis)

    @cached_property
    def assets(self) -> list[dict[str, Any]]:
        return self.instance.assets()

    @cached_property
    def ci_by_id(self) -> dict[str, dict[str, Any]]:
        return {c["sys_id"]: c for c in self.instance.cis(include_retired=True)}


def finding(rule: Rule, target: Any, message: str, ci: dict[str, Any] | None = None) -> dict[str, Any]:
    """One failed check; names the CI (in the compact CI form) when there is one."""
    found = {"rule_id": rule.rule_id, "severity": rule.severity, "target": target, "message": message}
    if ci is not None:
        found.update({k: ci.get(k) for k in ("sys_id", "sys_class_name", "environment")})
    return found


Check = Callable[["Rule", Facts], tuple[int, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    category: str
    severity: str
    title: str
    check: Check


def _owner(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    prod = [c for c in f.cis if c["environment"] == "Production"]
    return len(prod), [finding(rule, c["name"], "Production CI has no owner", c) for c in prod if not c.get("owner")]


def _field_on(field: str, classes: frozenset[str], label: str) -> Check:
    def check(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
        pool = [c for c in f.cis if c["sys_class_name"] in classes]
        return len(pool), [finding(rule, c["name"], f"{label} missing", c) for c in pool if not c.get(field)]

    return check


def _duplicates(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    return len(f.cis), [
        finding(rule, g.value, f"{len(g.cis)} CIs share this {g.match.replace('_', ' ')}", g.cis[0])
        for g in f.quality.duplicates
    ]


def _fresh(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    return len(f.cis), [finding(rule, c["name"], f"Not updated for {age} days", c) for c, age in f.quality.stale]


def _eol_os(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    prod = [c for c in f.cis if c["sys_class_name"] in SERVER_CLASSES and c["environment"] == "Production"]
    return len(prod), [
        finding(rule, c["name"], f"Runs end-of-life {c['os']}", c) for c in prod if c.get("os") in END_OF_LIFE_OS
    ]


def _unmanaged(production: bool) -> Check:
    def check(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
        pool = [d for d in f.devices if on_production_network(d["ip_address"]) == production]
        unmatched = {d["ip_address"] for d in f.matching.unmatched}
        return len(pool), [
            finding(rule, d["ip_address"], f"Unmanaged device '{d['name']}' ({d['device_class']})")
            for d in pool
            if d["ip_address"] in unmatched
        ]

    return check


def _drift(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    return len(f.matching.matched), [
        finding(
            rule,
            d["name"],
            f"{d['field']}: recorded {d['recorded']!r}, discovered {d['discovered']!r}",
            f.ci_by_id.get(d["sys_id"]),
        )
        for d in f.matching.drift
    ]


def _silent(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    seen = {ci["sys_id"] for _, ci, _ in f.matching.matched}
    scanned = {d["scan"] for d in f.devices if d.get("scan")}
    ranges = [s["ip_ranges"] for s in f.instance.table("discovery_scan") if s["sys_id"] in scanned]
    networks = [ipaddress.ip_network(r) for group in ranges for r in group]
    pool = [
        c
        for c in f.cis
        if c.get("ip_address")
        and c["sys_class_name"] in PHYSICAL_CLASSES
        and any(ipaddress.ip_address(c["ip_address"]) in n for n in networks)
    ]
    return len(pool), [
        finding(rule, c["name"], "Not seen by the last discovery scan", c) for c in pool if c["sys_id"] not in seen
    ]


def _licences(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    products = licence_position(f.instance)
    return len(products), [
        finding(rule, p["software"], f"{p['installed']} installs, {p['entitled']} entitled")
        for p in products
        if p["status"] == "over-deployed"
    ]


def _hardware(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    pool = [
        a
        for a in f.assets
        if a["asset_type"] == "hardware"
        and a["install_status"] == "In use"
        and f.ci_by_id.get(str(a.get("ci")), {}).get("environment") == "Production"
    ]
    return len(pool), [
        finding(rule, a["asset_tag"], f"{a['display_name']} past end of life ({a['eol']})", f.ci_by_id.get(a["ci"]))
        for a in pool
        if (days_between(f.today, a.get("eol")) or 0) > 0
    ]


def _linked(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    pool = [
        a
        for a in f.assets
        if a.get("model_category") in ("Server", "Network Gear", "Storage Device") and a["install_status"] == "In use"
    ]
    return len(pool), [
        finding(rule, a["asset_tag"], f"{a['display_name']} is linked to no CI") for a in pool if not a.get("ci")
    ]


def _retired_in_use(rule: Rule, f: Facts) -> tuple[int, list[dict[str, Any]]]:
    pool = [a for a in f.assets if a.get("ci") and a["install_status"] == "In use"]
    return len(pool), [
        finding(
            rule, a["asset_tag"], f"In use but its CI {f.ci_by_id[a['ci']]['name']} is retired", f.ci_by_id.get(a["ci"])
        )
        for a in pool
        if f.ci_by_id.get(a["ci"], {}).get("install_status") == "Retired"
    ]


RULES: tuple[Rule, ...] = (
    Rule("CMDB-001", "cmdb", "high", "Production CIs have an owner", _owner),
    Rule(
        "CMDB-002",
        "cmdb",
        "medium",
        "Physical CIs record a serial number",
        _field_on("serial_number", PHYSICAL_CLASSES, "Serial number"),
    ),
    Rule(
        "CMDB-003",
        "cmdb",
        "medium",
        "Servers record their operating system",
        _field_on("os", SERVER_CLASSES, "Operating system"),
    ),
    Rule("CMDB-004", "cmdb", "medium", "No duplicate CIs (by name or serial number)", _duplicates),
    Rule("CMDB-005", "cmdb", "low", "CIs updated within 90 days", _fresh),
    Rule("CMDB-006", "cmdb", "high", "No end-of-life operating system in production", _eol_os),
    Rule("DISC-001", "discovery", "high", "No unmanaged devices on production networks", _unmanaged(True)),
    Rule("DISC-002", "discovery", "medium", "No unmanaged devices on other networks", _unmanaged(False)),
    Rule("DISC-003", "discovery", "medium", "Recorded configuration matches what discovery sees", _drift),
    Rule("DISC-004", "discovery", "low", "Every physical CI in a scanned range answered the scan", _silent),
    Rule("ASSET-001", "asset", "high", "Software installs stay within entitlements", _licences),
    Rule("ASSET-002", "asset", "high", "No production hardware past end of life", _hardware),
    Rule("ASSET-003", "asset", "low", "Infrastructure hardware is linked to its CI", _linked),
    Rule("ASSET-004", "asset", "medium", "No asset in use on a retired CI", _retired_in_use),
)


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    evaluated: int
    findings: list[dict[str, Any]]

    @property
    def pass_rate(self) -> float:
        return 1.0 if self.evaluated == 0 else max(0.0, 1 - len(self.findings) / self.evaluated)

    def row(self) -> dict[str, Any]:
        r = self.rule
        return {
            "rule_id": r.rule_id,
            "category": r.category,
            "severity": r.severity,
            "title": r.title,
            "evaluated": self.evaluated,
            "failed": len(self.findings),
            "passed": not self.findings,
            "pass_rate": round(100 * self.pass_rate, 1),
        }


def evaluate(categories: tuple[str, ...], facts: Facts) -> list[Outcome]:
    outcomes = []
    for rule in RULES:
        if rule.category in categories:
            evaluated, found = rule.check(rule, facts)
            outcomes.append(Outcome(rule, evaluated, found))
    return outcomes


def score(outcomes: list[Outcome]) -> float:
    """Severity-weighted mean pass rate, 0..100."""
    weights = sum(SEVERITY_WEIGHT[o.rule.severity] for o in outcomes)
    if not weights:
        return 100.0
    return round(100 * sum(SEVERITY_WEIGHT[o.rule.severity] * o.pass_rate for o in outcomes) / weights, 1)
