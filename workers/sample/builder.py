"""The sample generator's builder: accumulates the tables, every random choice from one seeded generator.

Shared by both halves of the generator (``generate`` for the CMDB, ``generate_ops`` for discovery, assets and
the service catalog), so neither half imports the other.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.sample import vocabulary as vocab

SEED = 20260101
REFERENCE_TIME = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

ENV_SHORT = {"Production": "prod", "Staging": "stg", "Development": "dev", "Test": "test"}
SUBNET = {"Production": "10.10", "Staging": "10.20", "Development": "10.30", "Test": "10.31"}
CLASS_OCTET = {"cmdb_ci_linux_server": 1, "cmdb_ci_win_server": 5, "cmdb_ci_database": 8}
LINUX_OS = ("Red Hat Enterprise Linux 8.8", "Red Hat Enterprise Linux 9.2", "Ubuntu 22.04 LTS")
WINDOWS_OS = ("Windows Server 2019", "Windows Server 2022")
HARDWARE = (("Dell Inc.", "PowerEdge R650"), ("HPE", "ProLiant DL380 Gen10"), ("Lenovo", "ThinkSystem SR650"))
VIRTUAL = ("VMware, Inc.", "VMware Virtual Platform")


def iso(moment: datetime) -> str:
    return moment.isoformat()


class Builder:
    """Accumulates tables; every random choice goes through one seeded generator (determinism)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cis: list[dict[str, Any]] = []
        self.rels: list[dict[str, Any]] = []
        self.counters: dict[str, int] = {}
        self.ip_counters: dict[str, int] = {}
        self.defects: dict[str, list[Any]] = {}
        self.copies: set[str] = set()  # sys_ids of deliberate duplicate records (they own no assets)

    # -- primitives --------------------------------------------------------------------------------------------
    def sys_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    @staticmethod
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text)

    def days_ago(self, low: int, high: int) -> str:
        return iso(REFERENCE_TIME - timedelta(days=self.rng.randint(low, high), minutes=self.rng.randint(0, 1439)))

    def next_name(self, stem: str) -> str:
        self.counters[stem] = self.counters.get(stem, 0) + 1
        return f"{stem}-{self.counters[stem]:02d}"

    def next_ip(self, prefix: str) -> str:
        """Hosts .11-.250 of ``prefix`` (three octets), spilling into the next third octet when full."""
        index = self.ip_counters.get(prefix, 0)
        self.ip_counters[prefix] = index + 1
        first, second, third = prefix.split(".")
        return f"{first}.{second}.{int(third) + index // 240}.{11 + index % 240}"

    def serial(self, manufacturer: str) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        body = "".join(self.rng.choice(alphabet) for _ in range(8))
        if manufacturer.startswith("VMware"):
            return f"VMware-42{self.rng.getrandbits(40):010x}"
        return {"Dell Inc.": "DL", "HPE": "CZ", "Lenovo": "J3"}.get(manufacturer, "SN") + body

    def relate(self, parent: dict[str, Any], child: dict[str, Any], kind: str) -> None:
        self.rels.append({"sys_id": self.sys_id(), "parent": parent["sys_id"], "child": child["sys_id"], "type": kind})

    def ci(self, ci_class: str, name: str, environment: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "sys_id": self.sys_id(),
            "name": name,
            "sys_class_name": ci_class,
            "environment": environment,
            "owner": self.rng.choice(vocab.OWNERS),
            "support_group": fields.pop("support_group", None),
            "serial_number": None,
            "os": None,
            "ip_address": None,
            "location": "DC1 Frankfurt" if environment == "Production" else "DC2 Dublin",
            "operational_status": "Operational" if self.rng.random() > 0.04 else "Repair in Progress",
            "install_status": "Installed",
            "sys_created_on": self.days_ago(400, 1800),
            "updated_on": self.days_ago(0, 60),
        }
        record.update(fields)
        self.cis.append(record)
        return record

    def server(self, role: str, environment: str, windows: bool = False) -> dict[str, Any]:
        ci_class = "cmdb_ci_win_server" if windows else "cmdb_ci_linux_server"
        name = self.next_name(f"{'win-' if windows else ''}{role}-{ENV_SHORT[environment]}")
        manufacturer, model = VIRTUAL if self.rng.random() < 0.35 else self.rng.choice(HARDWARE)
        octet = CLASS_OCTET[ci_class]
        return self.ci(
            ci_class,
            name,
            environment,
            support_group="Windows Operations" if windows else "Linux Operations",
            serial_number=self.serial(manufacturer),
            os=self.rng.choice(WINDOWS_OS if windows else LINUX_OS),
            ip_address=self.next_ip(f"{SUBNET[environment]}.{octet}"),
            manufacturer=manufacturer,
            model_id=model,
            cpu_count=self.rng.choice((2, 4, 8, 16)),
            ram_mb=self.rng.choice((4096, 8192, 16384, 32768, 65536)),
            short_description=f"{role} server ({environment})",
        )
