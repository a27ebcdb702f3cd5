"""The agent registry file (``ORCH_DATA_DIR/agents.json``): which agents are registered, since when, and their
administrative status.

Why a file: an operator can read and edit the registry, and a status set through the
API (``maintenance``) survives restarts. The catalog still says what each agent *is* (its actions, its
domain); this file says whether it is registered (``enabled``), its display fields, ``registered_at`` (filled
the first time the orchestrator writes the file, so it is the real registration time) and its status:
``active`` (live status from worker heartbeats) or ``maintenance`` (shown as such and skipped by routing).

Validation names the entry: an unknown agent id is ORCH_1001, an agent listed twice ORCH_1002, a bad field
ORCH_1003, a file that is not a registry at all ORCH_1004. Legacy statuses (online, offline,
degraded) are read as ``active``: live status comes from heartbeats here, never from a file.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator.catalog import AGENTS
from orchestrator.errors import (
    AgentAlreadyRegisteredError,
    AgentNotFoundError,
    AgentRegistrationInvalidError,
    RegistryLoadError,
    RegistrySaveError,
)
from orchestrator.models.common import iso_now
from orchestrator.state.watched import WatchedJsonFile, write_json_atomically

FILE_NAME = "agents.json"
AdminStatus = Literal["active", "maintenance"]
ADMIN_STATUSES: tuple[str, ...] = ("active", "maintenance")
_LIVE_STATUSES = frozenset({"online", "offline", "degraded"})


@dataclass(frozen=True)
class RegistryEntry:
    """One registered agent as the file describes it."""

    agent_id: str
    name: str
    description: str
    status: AdminStatus = "active"
    enabled: bool = True
    registered_at: str | None = None
    status_reason: str | None = None
    status_changed_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _text(entry: dict[str, Any], key: str, default: str, where: str) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise AgentRegistrationInvalidError(f"{where}: '{key}' must be a non-empty string", {"field": key})
    return value.strip()


def _entry(raw: Any, index: int, source: str) -> RegistryEntry:
    where = f"{source}: agents[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("agent_id"), str):
        raise AgentRegistrationInvalidError(f"{where} must be an object with a string 'agent_id'", {"index": index})
    agent_id = raw["agent_id"]
    where = f"{where} ('{agent_id}')"
    spec = AGENTS.get(agent_id)
    if spec is None:
        raise AgentNotFoundError(
            f"{where}: no such agent in the catalog; use one of: {', '.join(AGENTS)}",
            {"index": index, "agent_id": agent_id},
        )
    status = raw.get("status", "active")
    if status in _LIVE_STATUSES:
        status = "active"
    if status not in ADMIN_STATUSES:
        raise AgentRegistrationInvalidError(
            f"{where}: status must be one of {', '.join(ADMIN_STATUSES)}, got {status!r}",
            {"index": index, "agent_id": agent_id, "field": "status"},
        )
    enabled = raw.get("enabled", True)
    metadata = raw.get("metadata", {})
    if not isinstance(enabled, bool) or not isinstance(metadata, dict):
        raise AgentRegistrationInvalidError(
            f"{where}: 'enabled' must be true or false and 'metadata' an object",
            {"index": index, "agent_id": agent_id},
        )
    registered_at = raw.get("registered_at")
    return RegistryEntry(
        agent_id=agent_id,
        name=_text(raw, "name", spec.name, where),
        description=_text(raw, "description", spec.description, where),
        status=status,
        enabled=enabled,
        registered_at=registered_at if isinstance(registered_at, str) else None,
        status_reason=raw.get("status_reason") if isinstance(raw.get("status_reason"), str) else None,
        status_changed_at=raw.get("status_changed_at") if isinstance(raw.get("status_changed_at"), str) else None,
        metadata=metadata,
    )


def parse_registry(data: Any, source: str) -> dict[str, RegistryEntry]:
    """The entries of a registry document, validated; raises an ORCH_100x error naming the culprit."""
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list):
        raise RegistryLoadError(f"{source}: expected an object with an 'agents' list", {"source": source})
    entries: dict[str, RegistryEntry] = {}
    first_seen: dict[str, int] = {}
    for index, raw in enumerate(data["agents"]):
        entry = _entry(raw, index, source)
        if entry.agent_id in entries:
            raise AgentAlreadyRegisteredError(
                f"{source}: agents[{index}] ('{entry.agent_id}') is already registered by agents"
                f"[{first_seen[entry.agent_id]}]; keep one entry per agent",
                {"index": index, "agent_id": entry.agent_id},
            )
        entries[entry.agent_id], first_seen[entry.agent_id] = entry, index
    return entries


class AgentRegistry:
    """The registry file of one data directory: read (re-read on change) and status changes (written back)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.file = WatchedJsonFile(self.path, FILE_NAME, parse_registry, load_error=RegistryLoadError)
        self._write_lock = threading.Lock()
        self.started_at = iso_now()

    def ensure_written(self) -> None:
        """Write the file from the packaged default the first time, stamping ``registered_at`` with now."""
        if self.path.exists():
            return
        with contextlib.suppress(RegistrySaveError):  # a read-only data dir: the packaged default still applies
            self._update(lambda _doc: None)

    def entries(self) -> dict[str, RegistryEntry]:
        return self.file.get()

    def registered(self) -> dict[str, RegistryEntry]:
        """Enabled entries, in catalog order."""
        entries = self.entries()
        return {a: entries[a] for a in AGENTS if a in entries and entries[a].enabled}

    def get(self, agent_id: str) -> RegistryEntry:
        entry = self.registered().get(agent_id)
        if entry is None:
            known = ", ".join(self.registered()) or "none"
            raise AgentNotFoundError(
                f"Agent '{agent_id}' not found in registry. Registered agents: {known}", {"agent_id": agent_id}
            )
        return entry

    def in_maintenance(self) -> frozenset[str]:
        return frozenset(a for a, e in self.registered().items() if e.status == "maintenance")

    def set_status(self, agent_id: str, status: str, reason: str | None = None) -> RegistryEntry:
        """Persist an administrative status (``active`` or ``maintenance``) for a registered agent."""
        self.get(agent_id)
        if status not in ADMIN_STATUSES:
            raise AgentRegistrationInvalidError(
                f"Status must be one of {', '.join(ADMIN_STATUSES)}, got {status!r}", {"status": status}
            )

        def change(doc: dict[str, Any]) -> None:
            for raw in doc["agents"]:
                if isinstance(raw, dict) and raw.get("agent_id") == agent_id:
                    raw.update(status=status, status_reason=reason, status_changed_at=iso_now())

        self._update(change)
        return self.get(agent_id)

    def _update(self, change: Any) -> None:
        with self._write_lock:
            try:
                doc = self.file.read_raw()
                parse_registry(doc, str(self.path))
                now = iso_now()
                for raw in doc["agents"]:
                    if isinstance(raw, dict) and not raw.get("registered_at"):
                        raw["registered_at"] = now
                change(doc)
                write_json_atomically(self.path, doc)
            except OSError as exc:
                raise RegistrySaveError(f"Cannot write the agent registry {self.path}: {exc}") from exc
            finally:
                self.file.invalidate()
