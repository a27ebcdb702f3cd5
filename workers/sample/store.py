"""Where the sample instance keeps its writes: one SQLite file shared by every worker process.

Why SQLite: writes must survive a worker restart and be seen by the other worker processes of the same
machine, with no server to run. WAL mode lets readers proceed while one process writes; ``BEGIN IMMEDIATE``
serialises writers across processes, so "look up the idempotency key, then insert" is race-free, and the
``writes`` table's primary key makes exactly-once a database constraint, not a convention.

A SQLite connection must not cross ``fork()``: each process opens its own, detected by ``os.getpid()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import StateWriteError, TaskInvalidError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS writes (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    number TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_kind ON records(kind);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    fields TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""

Entity = Literal["ci", "asset"]
Operation = Literal["create", "update", "retire"]


@dataclass(frozen=True)
class Change:
    """One field-level change to a CI or an asset, replayed over the base data on every read."""

    entity: Entity
    entity_id: str
    op: Operation
    fields: dict[str, Any] = field(default_factory=dict)


def record_id_for(kind: str, idempotency_key: str) -> str:
    """A 32-hex sys_id derived from the key: a redelivered write names the same record."""
    return hashlib.sha256(f"{kind}:{idempotency_key}".encode()).hexdigest()[:32]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """The SQLite side of the sample instance: an exactly-once write primitive plus reads of what was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._inherited: list[sqlite3.Connection] = []  # opened before a fork: never used nor closed here

    # -- connection --------------------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            self._inherited.append(self._conn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _guard(self) -> threading.Lock:
        if self._pid != os.getpid():
            self._lock = threading.Lock()  # a lock held by another thread at fork time would never be released
        return self._lock

    def close(self) -> None:
        with self._guard():
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- writes ------------------------------------------------------------------------------------------------
    def write(
        self, idempotency_key: str, kind: str, apply: Callable[[sqlite3.Connection], dict[str, Any]]
    ) -> dict[str, Any]:
        """Run ``apply`` once per key. A repeated key returns the first result with ``duplicate_suppressed``."""
        if not idempotency_key or not idempotency_key.strip():
            raise TaskInvalidError("Every write needs a non-empty idempotency_key (use '<run_id>:<step_id>').")
        with self._guard():
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StateWriteError(f"Sample instance database {self.path} is locked or unwritable: {exc}") from exc
            try:
                row = conn.execute(
                    "SELECT kind, result FROM writes WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is not None:
                    conn.execute("ROLLBACK")
                    if row[0] != kind:
                        raise TaskInvalidError(
                            f"Idempotency key '{idempotency_key}' was already used for a '{row[0]}' write, "
                            f"not '{kind}'. Use one key per write.",
                            {"idempotency_key": idempotency_key},
                        )
                    return {**json.loads(row[1]), "duplicate_suppressed": True}
                result = apply(conn)
                conn.execute(
                    "INSERT INTO writes VALUES (?, ?, ?, ?)",
                    (idempotency_key, kind, json.dumps(result, sort_keys=True), _now()),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return {**result, "duplicate_suppressed": False}

    @staticmethod
    def insert_record(
        conn: sqlite3.Connection, kind: str, prefix: str, idempotency_key: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Insert a numbered record (``CHG0010001``); call inside ``write``. Returns the stored body."""
        count = conn.execute("SELECT COUNT(*) FROM records WHERE number LIKE ?", (f"{prefix}%",)).fetchone()[0]
        created_at = _now()
        record = {
            "sys_id": record_id_for(kind, idempotency_key),
            "number": f"{prefix}{10001 + count:07d}",
            "kind": kind,
            **body,
            "idempotency_key": idempotency_key,
            "created_at": created_at,
        }
        conn.execute(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
            (record["sys_id"], kind, record["number"], idempotency_key, json.dumps(record), created_at),
        )
        return record

    @staticmethod
    def insert_changes(conn: sqlite3.Connection, idempotency_key: str, changes: Iterable[Change]) -> int:
        rows = [
            (c.entity, c.entity_id, c.op, json.dumps(c.fields, sort_keys=True), idempotency_key, _now())
            for c in changes
        ]
        conn.executemany(
            "INSERT INTO changes (entity, entity_id, op, fields, idempotency_key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    # -- reads -------------------------------------------------------------------------------------------------
    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._guard():
            return self._connection().execute(sql, args).fetchall()

    def replay(self, idempotency_key: str) -> dict[str, Any] | None:
        """The stored result of the write made with this key, marked ``duplicate_suppressed``; None if none."""
        rows = self._query("SELECT result FROM writes WHERE idempotency_key = ?", (idempotency_key,))
        return {**json.loads(rows[0][0]), "duplicate_suppressed": True} if rows else None

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Stored records, oldest first."""
        if kind is None:
            rows = self._query("SELECT body FROM records ORDER BY rowid")
        else:
            rows = self._query("SELECT body FROM records WHERE kind = ? ORDER BY rowid", (kind,))
        return [json.loads(r[0]) for r in rows]

    def count_records(self, kind: str, idempotency_key: str | None = None) -> int:
        if idempotency_key is None:
            return int(self._query("SELECT COUNT(*) FROM records WHERE kind = ?", (kind,))[0][0])
        return int(
            self._query("SELECT COUNT(*) FROM records WHERE kind = ? AND idempotency_key = ?", (kind, idempotency_key))[
                0
            ][0]
        )

    def version(self) -> int:
        """Grows with every stored change; readers cache their overlay per version."""
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])

    def changes(self) -> list[tuple[str, str, str, dict[str, Any], str]]:
        """``(entity, entity_id, op, fields, created_at)`` in the order they were written."""
        rows = self._query("SELECT entity, entity_id, op, fields, created_at FROM changes ORDER BY seq")
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]
