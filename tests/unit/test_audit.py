"""The hash-chained audit log on fakeredis (with Lua): append, query, export, verify and tampering."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import keys
from orchestrator.errors import AuditWriteError, InputInvalidError, StateCorruptedError, StateReadError
from orchestrator.models.events import AuditEntry
from orchestrator.state import audit as audit_module
from orchestrator.state.audit import AuditLog, canonical_json, chain_hash, entry_body, measure_append, verify_entries


@pytest.fixture
def server() -> fakeredis.FakeServer:
    """A fake Redis 7 whose Lua has ``redis.sha1hex``.

    fakeredis 2.40 does not provide ``redis.sha1hex`` (real Redis has since 2.6), so it is added to the
    server's Lua runtime here, computed by hashlib exactly as Redis does. Drop this once fakeredis has it.
    """
    server = fakeredis.FakeServer(version=(7,))
    fakeredis.FakeRedis(server=server).eval("return 1", 0)  # builds the server's Lua runtime
    lua_redis = server._lua_runtime.globals()[b"redis"]
    if lua_redis[b"sha1hex"] is None:
        lua_redis[b"sha1hex"] = lambda data: hashlib.sha1(data).hexdigest().encode()
    return server


@pytest.fixture
def client(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server, decode_responses=True)


@pytest.fixture
def log(client: fakeredis.FakeRedis) -> AuditLog:
    return AuditLog(client, max_entries=10_000)


def _fill(log: AuditLog) -> list[AuditEntry]:
    rows = [
        ("task_routed", "router", "cmdb-agent"),
        ("task_dispatched", "dispatch", "cmdb-agent"),
        ("permission_denied", "dispatch", "csa-agent"),
        ("task_executed", "cmdb-agent", "run-1"),
        ("task_failed", "asset-agent", "run-2"),
        ("task_executed", "cmdb-agent", "run-3"),
    ]
    return [log.append(kind, actor, target, {"n": index}) for index, (kind, actor, target) in enumerate(rows)]


def _raw(client: fakeredis.FakeRedis) -> list[tuple[str, dict[str, str]]]:
    return client.xrange(keys.AUDIT_STREAM)


# --- appending ----------------------------------------------------------------------------------------------


def test_append_chains_each_entry_to_the_one_before(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    first = log.append("workflow_started", "orchestrator", "run-1", {"template": "cmdb_health"})
    second = log.append("workflow_completed", "orchestrator", "run-1", result="success")
    assert first.prev_hash == ""
    assert second.prev_hash == first.hash
    for entry in (first, second):
        assert entry.hash == chain_hash(entry.prev_hash, entry_body(entry))
        assert entry.stream_id is not None
    assert client.get(keys.AUDIT_HEAD) == second.hash
    assert log.head() == second.hash
    assert log.count() == 2


def test_stored_body_is_the_canonical_json(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    entry = log.append("message_sent", "ann", "itom-auditor", {"z": 1, "a": "café ✓", "when": datetime(2026, 1, 1)})
    fields = _raw(client)[0][1]
    assert fields["entry"] == canonical_json(entry.model_dump(include={*audit_module.HASHED_FIELDS}))
    assert fields["entry"].isascii()
    assert '"details":{"a":"caf\\u00e9 \\u2713","when":"2026-01-01 00:00:00","z":1}' in fields["entry"]
    assert hashlib.sha1(f"\n{fields['entry']}".encode()).hexdigest() == fields["hash"] == entry.hash


@pytest.mark.parametrize(
    ("event_type", "actor", "details", "message"),
    [
        ("Task-Routed", "router", None, "must be snake_case"),
        ("task.routed", "router", None, "must be snake_case"),
        ("task_routed", "  ", None, "non-empty actor"),
        ("task_routed", "router", ["not", "a", "dict"], "audit entry 'task_routed' is invalid"),
    ],
)
def test_invalid_entries_are_refused(log: AuditLog, event_type: str, actor: str, details: Any, message: str) -> None:
    with pytest.raises(InputInvalidError, match=message):
        log.append(event_type, actor, details=details)
    assert log.count() == 0


def test_any_snake_case_event_type_is_accepted(log: AuditLog) -> None:
    assert log.append("dlq_redriven", "ops").event_type == "dlq_redriven"
    assert log.append("custom_event_2", "ops").event_type == "custom_event_2"


def test_append_to_queues_on_the_callers_pipeline(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    log.append("workflow_started", "orchestrator", "run-1")
    for transaction in (True, False):
        pipe = client.pipeline(transaction=transaction)
        pipe.set("orch:run:run-1", "running")
        assert log.append_to(pipe, "task_dispatched", "dispatch", "run-1", {"step": "a"}) is None
        log.append_to(pipe, "task_dispatched", "dispatch", "run-1", {"step": "b"})
        assert log.count() == 1 + 2 * (not transaction)  # nothing written before execute
        results = pipe.execute()
        assert results[0] is True
        assert [len(r) for r in results[1:]] == [3, 3]  # [stream id, prev hash, hash] per append
    log.append("workflow_completed", "orchestrator", "run-1")
    assert log.count() == 6
    assert [e.details.get("step") for e in log.query(event_type="task_dispatched")] == ["b", "a", "b", "a"]
    assert log.verify().ok


def test_redis_failure_on_write_is_an_audit_write_error(server: fakeredis.FakeServer, log: AuditLog) -> None:
    server.connected = False
    with pytest.raises(AuditWriteError) as caught:
        log.append("task_routed", "router")
    assert caught.value.code == "ORCH_6004"
    assert "check that Redis is reachable" in caught.value.message
    with pytest.raises(StateReadError):
        log.query()
    with pytest.raises(StateReadError):
        log.verify()


def test_client_must_decode_responses(server: fakeredis.FakeServer) -> None:
    with pytest.raises(ValueError, match="decode_responses=True"):
        AuditLog(fakeredis.FakeRedis(server=server), max_entries=1000)


def test_from_settings_uses_the_retention_cap(client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.settings import reset_settings

    monkeypatch.setenv("ORCH_RETENTION__AUDIT_MAX", "2500")
    reset_settings()
    try:
        assert AuditLog.from_settings(client)._max_entries == 2500
    finally:
        monkeypatch.delenv("ORCH_RETENTION__AUDIT_MAX")
        reset_settings()


# --- querying -----------------------------------------------------------------------------------------------


def test_query_newest_first_with_combined_filters(log: AuditLog) -> None:
    entries = _fill(log)
    assert [e.entry_id for e in log.query()] == [e.entry_id for e in reversed(entries)]
    assert [e.target for e in log.query(event_type="task_executed")] == ["run-3", "run-1"]
    assert [e.event_type for e in log.query(actor="dispatch")] == ["permission_denied", "task_dispatched"]
    assert [e.event_type for e in log.query(actor="dispatch", target="csa-agent")] == ["permission_denied"]
    assert log.query(event_type="task_failed", actor="cmdb-agent") == []
    assert [e.target for e in log.query(limit=2)] == ["run-3", "run-2"]
    assert log.query(limit=0) == []
    assert log.query(event_type="task_executed")[0] == entries[-1]


def test_query_pages_through_more_than_one_read(log: AuditLog) -> None:
    for index in range(250):
        log.append("task_executed" if index % 50 == 0 else "task_routed", "worker", f"run-{index}")
    assert [e.target for e in log.query(event_type="task_executed", limit=10)] == [
        "run-200",
        "run-150",
        "run-100",
        "run-50",
        "run-0",
    ]
    assert len(log.query(limit=1000)) == 250


@pytest.fixture
def clocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """Entries get timestamps 1 ms apart starting now (close to the fake server's stream-id clock)."""
    base = datetime.now(UTC).replace(microsecond=0)
    ticks = iter(range(10_000))

    def next_timestamp() -> str:
        return (base + timedelta(milliseconds=next(ticks))).isoformat()

    monkeypatch.setattr(audit_module, "iso_now", next_timestamp)
    yield base


def test_time_window_since_inclusive_until_exclusive(log: AuditLog, clocked: datetime) -> None:
    for index in range(10):
        log.append("task_routed", "router", f"t{index}")

    def at(ms: int) -> datetime:
        return clocked + timedelta(milliseconds=ms)

    assert [e.target for e in log.query(since=at(3), until=at(7))] == ["t6", "t5", "t4", "t3"]
    assert [e.target for e in log.query(since=at(8))] == ["t9", "t8"]
    assert [e.target for e in log.query(until=at(2))] == ["t1", "t0"]
    assert [e.target for e in log.query(since=at(2), until=at(9), limit=2)] == ["t8", "t7"]
    naive = at(8).replace(tzinfo=None)  # naive datetimes are read as UTC
    assert [e.target for e in log.query(since=naive)] == ["t9", "t8"]
    assert log.query(since=at(100)) == []


def test_time_query_reads_only_the_stream_id_window(
    log: AuditLog, client: fakeredis.FakeRedis, clocked: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(5):
        log.append("task_routed", "router", f"t{index}")
    ranges: list[tuple[str, str]] = []
    real = client.xrevrange

    def spy(name: str, max: str = "+", min: str = "-", count: int | None = None) -> Any:
        ranges.append((min, max))
        return real(name, max=max, min=min, count=count)

    monkeypatch.setattr(client, "xrevrange", spy)
    since, until = clocked + timedelta(milliseconds=1), clocked + timedelta(milliseconds=3)
    assert [e.target for e in log.query(since=since, until=until)] == ["t2", "t1"]
    slack = 2000
    assert ranges == [(str(int(since.timestamp() * 1000) - slack), str(int(until.timestamp() * 1000) + slack))]


def test_export_is_json_lines_oldest_first_and_verifiable_offline(log: AuditLog, clocked: datetime) -> None:
    entries = _fill(log)
    lines = list(log.export())
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    exported = [AuditEntry.model_validate(json.loads(line)) for line in lines]
    assert exported == entries
    assert verify_entries(exported, expected_head=log.head()).ok
    window = list(log.export(since=clocked + timedelta(milliseconds=2), until=clocked + timedelta(milliseconds=4)))
    assert [json.loads(line)["event_type"] for line in window] == ["permission_denied", "task_executed"]
    assert list(AuditLog(log._redis, max_entries=1000, stream_key="empty").export()) == []


# --- verifying ----------------------------------------------------------------------------------------------


def test_verify_ok_on_an_intact_log_and_an_empty_one(log: AuditLog) -> None:
    empty = log.verify()
    assert (empty.ok, empty.checked, empty.reason) == (True, 0, "the audit log is empty")
    _fill(log)
    report = log.verify()
    assert report.ok, report.reason
    assert report.checked == 6
    assert report.first_bad_entry_id is None
    assert report.reason == "6 entries chain correctly from the first entry ever written"


def test_verify_pages_through_a_long_chain(log: AuditLog) -> None:
    for index in range(1200):
        log.append("task_routed", "router", details={"i": index})
    report = log.verify()
    assert (report.ok, report.checked) == (True, 1200)


def test_deleted_entry_is_reported_at_the_entry_after_the_gap(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    entries = _fill(log)
    client.xdel(keys.AUDIT_STREAM, entries[2].stream_id)
    report = log.verify()
    assert not report.ok
    assert report.first_bad_entry_id == entries[3].entry_id
    assert report.first_bad_stream_id == entries[3].stream_id
    assert report.checked == 2
    assert f"does not link to entry {entries[1].entry_id}" in report.reason
    assert "deleted or replaced" in report.reason


def test_rewritten_entry_is_detected(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    """An edit is a delete plus a re-add of altered content at the end (streams cannot be edited in place)."""
    entries = _fill(log)
    victim_id, fields = _raw(client)[3]
    forged_body = json.loads(fields["entry"])
    forged_body["details"] = {"n": 3, "approved_by": "nobody"}
    client.xdel(keys.AUDIT_STREAM, victim_id)
    client.xadd(keys.AUDIT_STREAM, {**fields, "entry": canonical_json(forged_body)})
    report = log.verify()
    assert not report.ok
    assert report.first_bad_entry_id == entries[4].entry_id
    assert "was deleted or replaced" in report.reason


def test_edited_newest_entry_fails_its_hash(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    entries = _fill(log)
    victim_id, fields = _raw(client)[-1]
    forged_body = json.loads(fields["entry"])
    forged_body["result"] = "failure"
    client.xdel(keys.AUDIT_STREAM, victim_id)
    client.xadd(keys.AUDIT_STREAM, {**fields, "entry": canonical_json(forged_body)})
    report = log.verify()
    assert not report.ok
    assert report.first_bad_entry_id == entries[-1].entry_id
    assert "does not match its hash: its content was edited" in report.reason


def test_forgery_with_recomputed_hashes_is_still_detected(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    _fill(log)
    victim_id, fields = _raw(client)[-1]
    forged = json.loads(fields["entry"]) | {"result": "failure"}
    body = canonical_json(forged)
    digest = chain_hash(fields["prev_hash"], body)
    client.xdel(keys.AUDIT_STREAM, victim_id)
    client.xadd(keys.AUDIT_STREAM, {"entry": body, "prev_hash": fields["prev_hash"], "hash": digest})
    head_mismatch = log.verify()
    assert not head_mismatch.ok
    assert "is not the chain head" in head_mismatch.reason
    client.set(keys.AUDIT_HEAD, digest)  # the forger moves the head too: XDEL bookkeeping still shows
    report = log.verify()
    assert not report.ok
    assert report.first_bad_stream_id == victim_id
    assert "deleted from the audit stream with XDEL" in report.reason


def test_deleting_the_oldest_entry_is_detected(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    entries = _fill(log)
    client.xdel(keys.AUDIT_STREAM, entries[0].stream_id)
    report = log.verify()
    assert not report.ok
    assert report.first_bad_stream_id == entries[0].stream_id


def test_deleting_newest_entries_is_detected_by_the_head(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    entries = _fill(log)
    pipe = client.pipeline()
    pipe.delete(keys.AUDIT_STREAM)
    for entry in entries[:4]:  # re-create the stream without its two newest entries
        pipe.xadd(keys.AUDIT_STREAM, {"entry": entry_body(entry), "prev_hash": entry.prev_hash, "hash": entry.hash})
    pipe.execute()
    report = log.verify()
    assert not report.ok
    assert f"entries after {entries[3].entry_id} were deleted" in report.reason


def test_trimmed_log_is_anchored_at_the_oldest_kept_entry(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    for index in range(50):
        log.append("task_routed", "router", details={"i": index})
    client.xtrim(keys.AUDIT_STREAM, maxlen=10, approximate=False)  # what MAXLEN ~ does over time
    report = log.verify()
    assert report.ok, report.reason
    assert report.checked == 10
    assert report.reason == "10 entries chain correctly from the oldest kept entry"


def test_missing_history_without_trimming_is_detected(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    _fill(log)
    client.delete(keys.AUDIT_STREAM)
    gone = log.verify()
    assert not gone.ok
    assert "the log is empty but its head hash says entries were written" in gone.reason
    restarted = log.append("task_routed", "router")
    report = log.verify()
    assert not report.ok
    assert report.first_bad_entry_id == restarted.entry_id
    assert "missing although retention never trimmed" in report.reason


def test_missing_head_is_detected(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    _fill(log)
    client.delete(keys.AUDIT_HEAD)
    report = log.verify()
    assert not report.ok
    assert "the head hash is missing" in report.reason


def test_unreadable_entry_is_reported_and_never_skipped(log: AuditLog, client: fakeredis.FakeRedis) -> None:
    _fill(log)
    junk_id = client.xadd(keys.AUDIT_STREAM, {"entry": "{not json", "prev_hash": "", "hash": ""})
    report = log.verify()
    assert not report.ok
    assert report.first_bad_stream_id == junk_id
    assert "is unreadable" in report.reason
    with pytest.raises(StateCorruptedError, match=f"audit entry {junk_id}"):
        log.query()


def test_chain_stays_intact_under_concurrent_appenders(server: fakeredis.FakeServer) -> None:
    appenders = 4
    per_thread = 125
    start = threading.Barrier(appenders)
    failures: list[BaseException] = []

    def append_many(worker: int) -> None:
        own = AuditLog(fakeredis.FakeRedis(server=server, decode_responses=True), max_entries=10_000)
        start.wait()
        try:
            for index in range(per_thread):
                own.append("task_executed", f"worker-{worker}", details={"i": index})
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=append_many, args=(worker,)) for worker in range(appenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    log = AuditLog(fakeredis.FakeRedis(server=server, decode_responses=True), max_entries=10_000)
    report = log.verify()
    assert report.ok, report.reason
    assert report.checked == appenders * per_thread
    assert {len(log.query(actor=f"worker-{w}", limit=1000)) for w in range(appenders)} == {per_thread}


def test_measure_append_reports_seconds_and_cleans_up(client: fakeredis.FakeRedis) -> None:
    seconds = measure_append(client, n=50)
    print(f"audit append on fakeredis: {seconds * 1e6:.0f} us")
    assert 0 < seconds < 1
    assert client.keys("*") == []


def test_a_run_target_finds_the_run_and_its_steps(fake_redis: Any) -> None:
    log = AuditLog(fake_redis, max_entries=1000)
    log.append("workflow_started", "ann", "run-1")
    log.append("task_executed", "worker:x", "run-1/step-a")
    log.append("task_executed", "worker:x", "run-10/step-a")  # another run whose id merely starts alike
    found = [e.target for e in log.query(target="run-1")]
    assert found == ["run-1/step-a", "run-1"]


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=True) | st.datetimes(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _JSON_LIKE, max_size=4))
def test_details_are_hashed_as_json_gives_them_back(details: dict[Any, Any]) -> None:
    """Plain details skip the JSON round trip; whatever they hold, the text hashed is the round trip's text."""
    plain = audit_module._plain(details)
    assert canonical_json(plain) == canonical_json(json.loads(json.dumps(details, default=str)))


def test_details_nested_deeper_than_the_check_still_come_back_as_json() -> None:
    deep: Any = ("leaf",)
    for _ in range(20):
        deep = {"d": [deep]}
    assert audit_module._plain(deep) == json.loads(json.dumps(deep))
