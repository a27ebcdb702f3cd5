"""CMDB data quality: duplicates, stale and incomplete CIs, and the health score built from them.

Shared by ``cmdb.health_audit`` (which reports it) and the auditor's policy rules and report (which
score it), so both agents agree on what a defect is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from workers.handlers.common import SERVER_CLASSES, days_between

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "cmdb_ci_linux_server": ("owner", "serial_number", "os"),
    "cmdb_ci_win_server": ("owner", "serial_number", "os"),
    "cmdb_ci_netgear": ("owner", "serial_number"),
    "cmdb_ci_storage": ("owner", "serial_number"),
}
DEFAULT_REQUIRED: tuple[str, ...] = ("owner",)
PHYSICAL_CLASSES = frozenset({*SERVER_CLASSES, "cmdb_ci_netgear", "cmdb_ci_storage"})


def missing_fields(ci: dict[str, Any]) -> list[str]:
    required = REQUIRED_FIELDS.get(str(ci.get("sys_class_name")), DEFAULT_REQUIRED)
    return [f for f in required if not ci.get(f)]


@dataclass(frozen=True)
class DuplicateGroup:
    match: str  # "name" or "serial_number"
    value: str
    cis: tuple[dict[str, Any], ...]


def duplicate_groups(cis: list[dict[str, Any]]) -> list[DuplicateGroup]:
    """CIs sharing a name (case-insensitive) or a serial number, name matches first."""
    groups: list[DuplicateGroup] = []
    for match in ("name", "serial_number"):
        buckets: dict[str, list[dict[str, Any]]] = {}
        for ci in cis:
            value = ci.get(match)
            if isinstance(value, str) and value.strip():
                buckets.setdefault(value.strip().lower(), []).append(ci)
        for _key, members in sorted(buckets.items()):
            if len(members) > 1:
                groups.append(DuplicateGroup(match, members[0][match], tuple(members)))
    return groups


def stale_cis(cis: list[dict[str, Any]], today: date, stale_days: int) -> list[tuple[dict[str, Any], int]]:
    """``(ci, days since update)`` for CIs not updated within ``stale_days``, oldest first."""
    aged = [(ci, days_between(today, ci.get("updated_on"))) for ci in cis]
    stale = [(ci, age) for ci, age in aged if age is not None and age > stale_days]
    return sorted(stale, key=lambda pair: -pair[1])


@dataclass(frozen=True)
class Quality:
    """The three dimensions (0..1, higher is better) and the weighted health score (0..100)."""

    total: int
    duplicates: list[DuplicateGroup]
    stale: list[tuple[dict[str, Any], int]]
    incomplete: list[tuple[dict[str, Any], list[str]]]

    @property
    def duplicate_ids(self) -> set[str]:
        return {ci["sys_id"] for group in self.duplicates for ci in group.cis}

    def ratio(self, bad: int) -> float:
        return 1.0 if self.total == 0 else 1 - bad / self.total

    @property
    def scores(self) -> dict[str, float]:
        return {
            "completeness": round(100 * self.ratio(len(self.incomplete)), 1),
            "freshness": round(100 * self.ratio(len(self.stale)), 1),
            "uniqueness": round(100 * self.ratio(len(self.duplicate_ids)), 1),
        }

    @property
    def health_score(self) -> float:
        s = self.scores
        return round(0.4 * s["completeness"] + 0.3 * s["freshness"] + 0.3 * s["uniqueness"], 1)


def assess(cis: list[dict[str, Any]], today: date, stale_days: int = 90) -> Quality:
    incomplete = [(ci, gaps) for ci in cis if (gaps := missing_fields(ci))]
    return Quality(len(cis), duplicate_groups(cis), stale_cis(cis, today, stale_days), incomplete)
