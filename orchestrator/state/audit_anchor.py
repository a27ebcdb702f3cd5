"""Anchors: the audit log's head recorded outside Redis, so a lost or rewritten history cannot pass ``verify``.

Why: the hash chain makes edits evident, but a Redis that restarts without persistence comes back empty, and a
new chain starting from nothing looks like a genesis; whoever can write Redis can also rebuild the whole chain.
An anchor (the newest entry's stream id and hash, and how many entries were ever added) kept elsewhere pins the
past: ``verify`` with an anchor fails if the anchored entry is gone, changed, or if fewer entries were ever
written than when the anchor was taken. The reconciler writes one under ``ORCH_DATA_DIR`` every minute;
``itom-orch audit --anchor FILE`` writes one wherever an operator keeps such things.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.models.common import iso_now
from orchestrator.state.audit import AuditLog


@dataclass(frozen=True)
class Anchor:
    stream_id: str
    hash: str
    entries_added: int
    redis: str
    at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        data: dict[str, Any] = json.loads(text)
        return cls(
            stream_id=str(data["stream_id"]),
            hash=str(data["hash"]),
            entries_added=int(data.get("entries_added", 0)),
            redis=str(data.get("redis", "")),
            at=str(data.get("at", "")),
        )


def redis_label(url: str) -> str:
    """Which Redis an anchor belongs to (host, port, db; never the password)."""
    without_auth = re.sub(r"//[^@/]*@", "//", url)
    return without_auth.split("?", 1)[0]


def take(audit: AuditLog, redis_url: str) -> Anchor | None:
    stream_id, digest, added, _kept = audit.tip()
    if stream_id is None or digest is None:
        return None
    return Anchor(stream_id, digest, added, redis_label(redis_url), iso_now())


def check(audit: AuditLog, anchor: Anchor) -> str | None:
    """Why the log does not match the anchor, or None when it does."""
    _newest, _digest, added, kept = audit.tip()
    if added < anchor.entries_added:
        return (
            f"the audit log holds fewer entries ever written ({added}) than when it was anchored at {anchor.at} "
            f"({anchor.entries_added}): its history was lost or replaced (a Redis restart without persistence?)"
        )
    stored = audit.hash_at(anchor.stream_id)
    if stored is False:
        if added - kept >= anchor.entries_added:
            return None  # trimmed by retention since: the chain from the oldest kept entry is what verify checks
        return (
            f"the anchored entry {anchor.stream_id} is gone although retention never trimmed that far: the log "
            "was emptied and started again (a Redis restart without persistence?)"
        )
    if stored is None:
        return f"the anchored entry {anchor.stream_id} (anchored at {anchor.at}) is missing from the audit log"
    if stored != anchor.hash:
        return f"the anchored entry {anchor.stream_id} no longer has the anchored hash: the log was rewritten"
    return None


def default_path(data_dir: Path, redis_url: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", redis_label(redis_url).split("//", 1)[-1]).strip("-")
    return data_dir / f"audit-anchor-{slug}.json"


def save(path: Path, anchor: Anchor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(anchor.to_json())
    scratch.replace(path)


def load(path: Path) -> Anchor | None:
    try:
        return Anchor.from_json(path.read_text())
    except (OSError, ValueError, KeyError):
        return None


def save_now(audit: AuditLog, redis_url: str, path: Path) -> Anchor | None:
    """Take an anchor of the log as it is and keep it at ``path`` (the reconciler does this every minute)."""
    anchor = take(audit, redis_url)
    if anchor is not None:
        save(path, anchor)
    return anchor
