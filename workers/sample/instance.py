"""``SampleInstance``: a small ServiceNow-like instance the built-in handlers read and write.

Why: the orchestrator must do real work out of the box (``itom-orch demo`` on a bare machine), so every
action has an answer computed from realistic data. Reads see the shipped base data with every stored
write laid over it; writes go to SQLite (see ``store.py``) and are exactly-once by idempotency key.
Nothing is opened until first use, so creating an instance costs nothing (``cmdb.ping`` does no I/O).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.settings import get_settings
from workers.sample.base import load_base
from workers.sample.store import Change, Store, record_id_for

_RETIRED = {"operational_status": "Retired", "install_status": "Retired"}


def default_path() -> Path:
    return get_settings().data_dir / "sample-instance.sqlite"


class SampleInstance:
    """The bundled instance: base tables (read-only) + an SQLite overlay of writes shared across processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._store = Store(self.path)
        self._overlay_key: tuple[object, ...] | None = None
        self._cis: list[dict[str, Any]] = []
        self._assets: list[dict[str, Any]] = []

    def close(self) -> None:
        self._store.close()

    # -- base data ---------------------------------------------------------------------------------------------
    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def table(self, name: str) -> list[dict[str, Any]]:
        """A base table as shipped (dates moved to today). Read-only: do not mutate the rows."""
        rows: list[dict[str, Any]] = load_base()[name]
        return rows

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = load_base()["meta"]
        return meta

    # -- overlaid entities -------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        base = load_base()
        key = (id(base), self._store.version())
        if key == self._overlay_key:
            return
        cis = {c["sys_id"]: dict(c) for c in base["cmdb_ci"]}
        assets = {a["sys_id"]: dict(a) for a in base["alm_asset"]}
        for entity, entity_id, op, fields, created_at in self._store.changes():
            target = cis if entity == "ci" else assets
            stamp = {"updated_on": created_at} if entity == "ci" else {}
            if op == "create":
                target[entity_id] = {**fields, "sys_id": entity_id, "sys_created_on": created_at, **stamp}
            elif entity_id in target:
                target[entity_id].update({**fields, **(_RETIRED if op == "retire" else {}), **stamp})
        self._cis, self._assets, self._overlay_key = list(cis.values()), list(assets.values()), key

    def cis(self, *, include_retired: bool = False) -> list[dict[str, Any]]:
        """Configuration items with every stored update applied (copies: safe to modify)."""
        self._refresh()
        return [dict(c) for c in self._cis if include_retired or c.get("install_status") != "Retired"]

    def find_ci(self, ref: str, *, include_retired: bool = True) -> dict[str, Any] | None:
        """By sys_id, else by name (case-insensitive; of duplicates, the live, most recently updated one)."""
        wanted = ref.strip().lower()
        self._refresh()
        candidates = [
            c
            for c in self._cis
            if (c["sys_id"] == wanted or str(c.get("name", "")).lower() == wanted)
            and (include_retired or c.get("install_status") != "Retired")
        ]
        if not candidates:
            return None
        best = max(
            candidates,
            key=lambda c: (c["sys_id"] == wanted, c.get("install_status") != "Retired", str(c.get("updated_on") or "")),
        )
        return dict(best)

    def ci_changes(self, sys_id: str | None = None) -> list[tuple[str, dict[str, Any], str]]:
        """``(op, fields, created_at)`` of stored writes to CIs (to one CI when ``sys_id`` is given), oldest first."""
        return [
            (op, fields, at)
            for entity, entity_id, op, fields, at in self._store.changes()
            if entity == "ci" and (sys_id is None or entity_id == sys_id)
        ]

    def relationships(self) -> list[dict[str, Any]]:
        return self.table("cmdb_rel_ci")

    def assets(self) -> list[dict[str, Any]]:
        """Hardware and consumable assets with stored updates applied (copies)."""
        self._refresh()
        return [dict(a) for a in self._assets]

    def scans(self) -> list[dict[str, Any]]:
        """Discovery scans, shipped and run here, newest first."""
        scans = [*self.table("discovery_scan"), *self._store.records("scan")]
        return sorted(scans, key=lambda s: str(s.get("started") or s.get("created_at")), reverse=True)

    def tickets(self) -> list[dict[str, Any]]:
        """Service requests and remediation tickets, shipped and created here, oldest first."""
        return [*self.table("sc_req_item"), *self._store.records("ticket")]

    def find_ticket(self, ref: str) -> dict[str, Any] | None:
        wanted = ref.strip().upper()
        return next((t for t in self.tickets() if wanted in (t["number"].upper(), t["sys_id"].upper())), None)

    def documents(self) -> list[dict[str, Any]]:
        """Knowledge articles, reports and runbooks, oldest first."""
        return [*self.table("kb_knowledge"), *self._store.records("document")]

    def count_tickets(self, idempotency_key: str | None = None) -> int:
        """Tickets created through this instance (for tests: exactly-once means this stays at one per key)."""
        return self._store.count_records("ticket", idempotency_key)

    # -- writes (each exactly-once by idempotency key) ---------------------------------------------------------
    def replay(self, idempotency_key: str) -> dict[str, Any] | None:
        """What the write with this key returned the first time (``duplicate_suppressed: true``), or None.

        Write handlers ask this first: a redelivered step must get its first answer back even where checks
        against the current state (e.g. "this CI is already retired") would now refuse it.
        """
        return self._store.replay(idempotency_key)

    def _record(self, idempotency_key: str, kind: str, prefix: str, body: dict[str, Any]) -> dict[str, Any]:
        def apply(conn: sqlite3.Connection) -> dict[str, Any]:
            return Store.insert_record(conn, kind, prefix, idempotency_key, body)

        return self._store.write(idempotency_key, f"{kind}:{prefix}", apply)

    def create_ticket(
        self,
        idempotency_key: str,
        *,
        prefix: str,
        short_description: str,
        risk_level: str,
        affected_cis: Sequence[str],
        **fields: Any,
    ) -> dict[str, Any]:
        """A remediation ticket (``prefix="CHG"``) or service request (``"RITM"``)."""
        body = {
            "short_description": short_description,
            "risk_level": risk_level,
            "affected_cis": list(affected_cis),
            **fields,
        }
        return self._record(idempotency_key, "ticket", prefix, body)

    def create_document(
        self, idempotency_key: str, *, prefix: str, title: str, markdown: str, **fields: Any
    ) -> dict[str, Any]:
        """A knowledge article (``prefix="KB"``) or a generated document (``"DOC"``)."""
        return self._record(idempotency_key, "document", prefix, {"title": title, "markdown": markdown, **fields})

    def record_scan(self, idempotency_key: str, summary: dict[str, Any]) -> dict[str, Any]:
        return self._record(idempotency_key, "scan", "DSC", {"started": self.now().isoformat(), **summary})

    def apply_changes(
        self, idempotency_key: str, kind: str, changes: Sequence[Change], summary: dict[str, Any]
    ) -> dict[str, Any]:
        """Store several CI/asset changes as one exactly-once write; returns ``summary`` plus the change count."""

        def apply(conn: sqlite3.Connection) -> dict[str, Any]:
            return {**summary, "changes_applied": Store.insert_changes(conn, idempotency_key, changes)}

        return self._store.write(idempotency_key, kind, apply)

    def update_ci(
        self, idempotency_key: str, sys_id: str, fields: dict[str, Any], context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Overlay ``fields`` on a CI; ``context`` (e.g. previous values) is stored with the result."""
        return self.apply_changes(
            idempotency_key,
            "ci:update",
            [Change("ci", sys_id, "update", fields)],
            {"sys_id": sys_id, "updated_fields": fields, **(context or {})},
        )

    def create_ci(self, idempotency_key: str, ci_class: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A new CI; its sys_id derives from the key, so a redelivery names the same CI."""
        sys_id = record_id_for("ci", idempotency_key)
        record = {
            "operational_status": "Operational",
            "install_status": "Installed",
            **fields,
            "name": name,
            "sys_class_name": ci_class,
        }
        return self.apply_changes(
            idempotency_key,
            "ci:create",
            [Change("ci", sys_id, "create", record)],
            {"sys_id": sys_id, "name": name, "sys_class_name": ci_class, "ci": record},
        )

    def retire_ci(self, idempotency_key: str, sys_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.apply_changes(
            idempotency_key,
            "ci:retire",
            [Change("ci", sys_id, "retire")],
            {"sys_id": sys_id, **_RETIRED, **(context or {})},
        )
