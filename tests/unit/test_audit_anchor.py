"""Anchors pin the audit log's past: a lost or rewritten history fails ``verify`` even if the new chain is valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator import keys
from orchestrator.security.principals import Principal
from orchestrator.state.audit import AuditLog
from orchestrator.state.audit_anchor import check, default_path, load, save, save_now, take
from tests.unit.test_http_fixtures import build_service

URL = "redis://127.0.0.1:6390/0"


def _log(fake_redis: Any) -> AuditLog:
    return AuditLog(fake_redis, max_entries=1000)


def test_an_intact_log_matches_its_anchor_and_keeps_matching_as_it_grows(fake_redis: Any) -> None:
    audit = _log(fake_redis)
    for i in range(3):
        audit.append("task_routed", "ann", f"t{i}")
    anchor = take(audit, URL)
    assert anchor is not None and anchor.entries_added == 3
    audit.append("task_routed", "ann", "later")
    assert check(audit, anchor) is None and audit.verify().ok


def test_a_history_lost_with_a_redis_restart_fails_against_the_anchor(fake_redis: Any) -> None:
    audit = _log(fake_redis)
    for i in range(3):
        audit.append("task_routed", "ann", f"t{i}")
    anchor = take(audit, URL)
    assert anchor is not None
    fake_redis.delete(keys.AUDIT_STREAM, keys.AUDIT_HEAD)  # what a restart without persistence leaves
    audit.append("task_routed", "mallory", "fresh start")
    assert audit.verify().ok  # on its own, the new chain looks like a genesis ...
    problem = check(audit, anchor)
    assert problem is not None and "history was lost" in problem  # ... the anchor says otherwise


def test_a_rewritten_anchored_entry_fails(fake_redis: Any) -> None:
    from dataclasses import replace

    audit = _log(fake_redis)
    audit.append("task_routed", "ann", "t0")
    anchor = take(audit, URL)
    assert anchor is not None
    forged = replace(anchor, hash="0" * 40)  # the log at that id carries another hash than the one kept outside
    problem = check(audit, forged)
    assert problem is not None and "rewritten" in problem


def test_entries_trimmed_by_retention_still_match(fake_redis: Any) -> None:
    audit = AuditLog(fake_redis, max_entries=1000)
    audit.append("task_routed", "ann", "t0")
    anchor = take(audit, URL)
    assert anchor is not None
    for i in range(5):
        audit.append("task_routed", "ann", f"t{i + 1}")
    fake_redis.xtrim(keys.AUDIT_STREAM, maxlen=3)  # what MAXLEN retention does
    assert check(audit, anchor) is None


def test_anchor_files_round_trip_and_name_their_redis_without_the_password(tmp_path: Path, fake_redis: Any) -> None:
    audit = _log(fake_redis)
    audit.append("task_routed", "ann", "t0")
    secret_url = "redis://:s3cret@127.0.0.1:6390/2"
    path = default_path(tmp_path, secret_url)
    anchor = save_now(audit, secret_url, path)
    assert anchor is not None and load(path) == anchor
    assert "s3cret" not in path.read_text() and "s3cret" not in path.name
    save(path, anchor)
    assert load(tmp_path / "missing.json") is None


def test_verify_uses_the_anchor_the_reconciler_keeps(tmp_path: Path) -> None:
    service = build_service(data_dir=tmp_path)
    admin = Principal("ada", "admin")
    service.audit.append("task_routed", "ann", "t0")
    service.reconciler.anchor()  # type: ignore[misc] - what the reconciler's loop does every minute
    report = service.audit_verify(admin)
    assert report["ok"] and report["anchor"]["checked"] is True
    service.redis.delete(keys.AUDIT_STREAM, keys.AUDIT_HEAD)
    service.audit.append("task_routed", "mallory", "fresh start")
    report = service.audit_verify(admin)
    assert not report["ok"] and "Redis restart without persistence" in report["reason"]
