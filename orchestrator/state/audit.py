"""The audit trail: an append-only, hash-chained log in a Redis stream, with query, export and verify.

Why a hash chain: an audit log is only useful if edits show. Each entry stores ``prev_hash`` (the hash of
the entry before it) and ``hash = sha1(prev_hash + "\\n" + canonical_json(entry without hashes))``; editing,
deleting or re-inserting an entry breaks a link that ``verify()`` finds. SHA-1 is used because it is what
Redis Lua offers (``redis.sha1hex``); the chain makes tampering *evident*, it is not a signature: someone
with full write access who rewrites the whole suffix and the head is not detected (keep exports elsewhere).

Why Lua: reading the head hash, computing the new hash, XADD and moving the head happen in ONE atomic
script call, so any number of appending processes can never fork or break the chain. The canonical JSON
is computed here in Python (sorted keys, compact separators, ASCII only) and passed in, so ``verify`` can
recompute every hash with ``hashlib`` exactly as the script did.

Retention: the stream is capped with ``XADD MAXLEN ~ max_entries``; trimming drops the oldest entries, so
the oldest *remaining* entry's ``prev_hash`` anchors the chain (it is ``""`` only for the very first entry
ever written). Deleting the oldest entries therefore looks like retention to the chain alone; on Redis 7
``verify`` also reads the stream's ``max-deleted-entry-id`` (set by XDEL, never by trimming) and
``entries-added`` to catch that.

Time queries use the stream ids (Redis server milliseconds) as an index: the window is widened by
``index_slack_seconds`` for clock skew between this host and Redis, then entries are filtered exactly on
their own ``timestamp``. ``since`` is inclusive and ``until`` exclusive.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import uuid4

from pydantic import BaseModel, ValidationError
from redis import Redis, RedisError
from redis.client import Pipeline

from orchestrator import keys
from orchestrator.errors import AuditWriteError, InputInvalidError, StateCorruptedError, StateReadError
from orchestrator.models.common import as_utc, iso_now
from orchestrator.models.events import AuditEntry
from orchestrator.runtime.redis_client import script_sha
from orchestrator.settings import get_settings

HASHED_FIELDS = frozenset({"entry_id", "event_type", "actor", "target", "details", "result", "timestamp"})
_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_PAGE = 500
_T = TypeVar("_T")

_APPEND_LUA = """
local prev = redis.call('GET', KEYS[2]) or ''
local digest = redis.sha1hex(prev .. '\\n' .. ARGV[1])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'entry', ARGV[1], 'prev_hash', prev, 'hash', digest)
redis.call('SET', KEYS[2], digest)
return {id, prev, digest}
"""
_APPEND_SHA = script_sha(_APPEND_LUA)  # pipelines call it by SHA (see redis_client.execute_pipeline)


def canonical_json(fields: dict[str, Any]) -> str:
    """The exact text that is hashed: sorted keys, compact separators, ASCII only."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(prev_hash: str, body: str) -> str:
    """``sha1(prev_hash + "\\n" + body)`` as hex: what the Lua script computes with ``redis.sha1hex``."""
    return hashlib.sha1(f"{prev_hash}\n{body}".encode(), usedforsecurity=False).hexdigest()


def entry_body(entry: AuditEntry) -> str:
    """The canonical JSON of an entry without its hashes and stream id."""
    return canonical_json(entry.model_dump(include=set(HASHED_FIELDS)))


class VerifyReport(BaseModel):
    """Outcome of ``verify``: the first entry that breaks the chain and why, or ok."""

    ok: bool
    checked: int
    first_bad_entry_id: str | None = None
    first_bad_stream_id: str | None = None
    reason: str


class _ChainChecker:
    """Walks entries oldest first and stops at the first broken link or hash."""

    def __init__(self) -> None:
        self.checked = 0
        self.first: AuditEntry | None = None
        self.last: AuditEntry | None = None

    def feed(self, entry: AuditEntry) -> VerifyReport | None:
        where = f"entry {entry.entry_id} (stream id {entry.stream_id})"
        if self.last is not None and entry.prev_hash != self.last.hash:
            return self.bad(
                entry,
                f"{where} does not link to entry {self.last.entry_id}: an entry between them was deleted or replaced",
            )
        if chain_hash(entry.prev_hash, entry_body(entry)) != entry.hash:
            return self.bad(entry, f"{where} does not match its hash: its content was edited")
        self.first = self.first or entry
        self.last = entry
        self.checked += 1
        return None

    def bad(self, entry: AuditEntry | None, reason: str, stream_id: str | None = None) -> VerifyReport:
        return VerifyReport(
            ok=False,
            checked=self.checked,
            first_bad_entry_id=entry.entry_id if entry else None,
            first_bad_stream_id=entry.stream_id if entry else stream_id,
            reason=reason,
        )

    def finish(self, expected_head: str | None) -> VerifyReport:
        if self.last is None:
            if expected_head:
                return self.bad(None, "the log is empty but its head hash says entries were written: they were deleted")
            return VerifyReport(ok=True, checked=0, reason="the audit log is empty")
        if expected_head == "":
            return self.bad(None, f"the head hash is missing although entries exist (newest: {self.last.entry_id})")
        if expected_head is not None and self.last.hash != expected_head:
            return self.bad(None, f"entries after {self.last.entry_id} were deleted (it is not the chain head)")
        anchor = "the first entry ever written" if self.first and not self.first.prev_hash else "the oldest kept entry"
        return VerifyReport(
            ok=True, checked=self.checked, reason=f"{self.checked} entries chain correctly from {anchor}"
        )


def verify_entries(entries: Iterable[AuditEntry], expected_head: str | None = None) -> VerifyReport:
    """Verify entries oldest first (e.g. an export); ``expected_head`` is the hash the newest must carry."""
    checker = _ChainChecker()
    for entry in entries:
        if (problem := checker.feed(entry)) is not None:
            return problem
    return checker.finish(expected_head)


class AuditLog:
    """The audit trail of one Redis: append (alone or inside a caller's pipeline), query, export, verify."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_entries: int,
        stream_key: str = keys.AUDIT_STREAM,
        head_key: str = keys.AUDIT_HEAD,
        index_slack_seconds: float = 2.0,
    ) -> None:
        pool_kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", None)
        if pool_kwargs is not None and not pool_kwargs.get("decode_responses"):
            raise ValueError("AuditLog needs a Redis client created with decode_responses=True")
        self._redis = redis
        self._max_entries = max_entries
        self._stream = stream_key
        self._head = head_key
        self._slack_ms = int(index_slack_seconds * 1000)
        self._append_script = redis.register_script(_APPEND_LUA)

    @classmethod
    def from_settings(cls, redis: Redis) -> AuditLog:
        """An audit log capped at ``ORCH_RETENTION__AUDIT_MAX`` entries."""
        return cls(redis, max_entries=get_settings().retention.audit_max)

    # -- writing -------------------------------------------------------------------------------------------

    def append(
        self,
        event_type: str,
        actor: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        result: str = "success",
    ) -> AuditEntry:
        """Append one entry (one round trip) and return it with its hashes and stream id."""
        entry, body = _new_entry(event_type, actor, target, details, result)
        try:
            stream_id, prev_hash, digest = self._append_script(
                keys=[self._stream, self._head], args=[body, self._max_entries]
            )
        except RedisError as exc:
            raise AuditWriteError(
                f"could not write audit entry {event_type!r} to {self._stream}: {exc}; check that Redis is reachable",
                {"event_type": event_type, "entry_id": entry.entry_id},
            ) from exc
        return entry.model_copy(update={"stream_id": stream_id, "prev_hash": prev_hash, "hash": digest})

    def append_to(
        self,
        pipe: Pipeline,
        event_type: str,
        actor: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        result: str = "success",
    ) -> None:
        """Queue the same atomic append on ``pipe`` (EVAL, so the pipeline stays one round trip).

        Input is validated now (``InputInvalidError``); Redis errors surface from the caller's ``execute()``.
        """
        _entry, body = _new_entry(event_type, actor, target, details, result)
        pipe.evalsha(_APPEND_SHA, 2, self._stream, self._head, body, self._max_entries)

    # -- reading -------------------------------------------------------------------------------------------

    def query(
        self,
        event_type: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries matching every given filter, newest first (``since`` inclusive, ``until`` exclusive).

        ``target`` also matches what lies under it: a run's id finds the run's entries and its steps'
        (``<run>/<step>``)."""
        if limit <= 0:
            return []
        wanted = {k: v for k, v in (("event_type", event_type), ("actor", actor)) if v is not None}
        under = f"{target}/" if target is not None else None
        found: list[AuditEntry] = []
        for entry in self._scan(since, until, newest_first=True, page=min(max(limit, 100), 1000)):
            if target is not None and entry.target != target and not (entry.target or "").startswith(under or ""):
                continue
            if all(getattr(entry, k) == v for k, v in wanted.items()):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def query_run(
        self, run_id: str, *, since: datetime | None = None, limit: int = 50, max_scanned: int = 50_000
    ) -> list[AuditEntry]:
        """Entries of one run and its steps (target ``run_id`` or ``run_id/<step>``), newest first.

        ``since`` (the run's creation) bounds the scan; ``max_scanned`` bounds it when the run is unknown.
        """
        found: list[AuditEntry] = []
        prefix = f"{run_id}/"
        for scanned, entry in enumerate(self._scan(since, None, newest_first=True, page=500)):
            target = entry.target or ""
            if target == run_id or target.startswith(prefix):
                found.append(entry)
                if len(found) >= limit:
                    break
            if scanned >= max_scanned:
                break
        return found

    def export(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[str]:
        """JSON Lines, oldest first, each line ending in ``\\n``; hashes included so a copy can be verified."""
        for entry in self._scan(since, until, newest_first=False, page=_PAGE):
            yield entry.model_dump_json() + "\n"

    def verify(self) -> VerifyReport:
        """Walk the whole chain oldest first; report the first edited, deleted or re-inserted entry."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(self._head)
        pipe.xrevrange(self._stream, count=1)
        pipe.xinfo_stream(self._stream)
        head, newest, info = self._guard(lambda: pipe.execute(raise_on_error=False))
        if isinstance(head, Exception) or isinstance(newest, Exception):
            raise StateReadError(f"could not read the audit log head from {self._head}: {head or newest}")
        checker = _ChainChecker()
        if newest:
            for stream_id, fields in self._pages("-", newest[0][0], newest_first=False, page=_PAGE):
                try:
                    entry = self._parse(stream_id, fields)
                except StateCorruptedError as exc:
                    return checker.bad(None, exc.message, stream_id)
                if (problem := checker.feed(entry)) is not None:
                    return problem
        report = checker.finish(head or "")
        if not report.ok:
            return report
        return _check_stream_info(checker, info) or report

    def count(self) -> int:
        """How many entries the stream holds now (after retention)."""
        return int(self._guard(lambda: self._redis.xlen(self._stream)))

    def head(self) -> str | None:
        """The newest entry's hash: record it elsewhere to anchor the log against wholesale rewriting."""
        value = self._guard(lambda: self._redis.get(self._head))
        return str(value) if value is not None else None

    def tip(self) -> tuple[str | None, str | None, int, int]:
        """``(newest stream id, its hash, entries ever added, entries kept)``: what an anchor records and checks."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.xrevrange(self._stream, count=1)
        pipe.xinfo_stream(self._stream)
        newest, info = self._guard(lambda: pipe.execute(raise_on_error=False))
        if not newest or isinstance(newest, Exception):
            return None, None, 0, 0
        added = info.get("entries-added") if isinstance(info, dict) else None
        length = info.get("length") if isinstance(info, dict) else None
        stream_id, fields = newest[0]
        return str(stream_id), str(fields.get("hash")), int(added or 0), int(length or 0)

    def hash_at(self, stream_id: str) -> str | bool | None:
        """The hash stored at ``stream_id``; None if no entry has that id; False if it was trimmed by retention
        (older than the oldest entry kept)."""
        found = self._guard(lambda: self._redis.xrange(self._stream, min=stream_id, max=stream_id)) or []
        if found:
            fields = found[0][1] or {}
            return str(fields.get("hash"))
        oldest = self._guard(lambda: self._redis.xrange(self._stream, count=1))
        if oldest and _stream_key(str(oldest[0][0])) > _stream_key(stream_id):
            return False
        return None

    # -- internals -----------------------------------------------------------------------------------------

    def _scan(
        self, since: datetime | None, until: datetime | None, *, newest_first: bool, page: int
    ) -> Iterator[AuditEntry]:
        low = "-" if since is None else str(max(0, _ms(since) - self._slack_ms))
        high = "+" if until is None else str(_ms(until) + self._slack_ms)
        start, end = (as_utc(since) if since else None), (as_utc(until) if until else None)
        for stream_id, fields in self._pages(low, high, newest_first=newest_first, page=page):
            entry = self._parse(stream_id, fields)
            if start is None and end is None:
                yield entry
                continue
            stamp = self._stamp(entry)
            if (start is None or stamp >= start) and (end is None or stamp < end):
                yield entry

    def _stamp(self, entry: AuditEntry) -> datetime:
        try:
            return as_utc(datetime.fromisoformat(entry.timestamp))
        except ValueError as exc:
            raise StateCorruptedError(
                f"audit entry {entry.stream_id} in {self._stream} has an unreadable timestamp {entry.timestamp!r}; "
                "run the audit verify command to locate the tampering",
                {"stream_id": entry.stream_id},
            ) from exc

    def _pages(self, low: str, high: str, *, newest_first: bool, page: int) -> Iterator[tuple[str, dict[str, str]]]:
        while True:
            rows = self._page(low, high, newest_first=newest_first, page=page)
            yield from rows
            if len(rows) < page:
                return
            if newest_first:
                high = f"({rows[-1][0]}"
            else:
                low = f"({rows[-1][0]}"

    def _page(self, low: str, high: str, *, newest_first: bool, page: int) -> list[tuple[str, dict[str, str]]]:
        try:
            if newest_first:
                rows = self._redis.xrevrange(self._stream, max=high, min=low, count=page)
            else:
                rows = self._redis.xrange(self._stream, min=low, max=high, count=page)
        except RedisError as exc:
            raise StateReadError(
                f"could not read the audit log {self._stream}: {exc}; check that Redis is reachable"
            ) from exc
        return cast("list[tuple[str, dict[str, str]]]", rows)

    def _parse(self, stream_id: str, fields: dict[str, str]) -> AuditEntry:
        try:
            data = json.loads(fields["entry"])
            return AuditEntry.model_validate(
                {**data, "prev_hash": fields["prev_hash"], "hash": fields["hash"], "stream_id": stream_id}
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise StateCorruptedError(
                f"audit entry {stream_id} in {self._stream} is unreadable ({type(exc).__name__}: {exc}); "
                "run the audit verify command to locate the tampering",
                {"stream_id": stream_id},
            ) from exc

    def _guard(self, read: Callable[[], _T]) -> _T:
        try:
            return read()
        except RedisError as exc:
            raise StateReadError(
                f"could not read the audit log {self._stream}: {exc}; check that Redis is reachable"
            ) from exc


def audit_body(
    event_type: str,
    actor: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    result: str = "success",
) -> str:
    """The canonical text of a new entry, for scripts that append it atomically with a state change.

    Built from a plain dict (no model): workers call this once per step, and the text is all the script needs.
    """
    return canonical_json(_new_fields(event_type, actor, target, details, result))


def _new_fields(
    event_type: str, actor: str, target: str | None, details: dict[str, Any] | None, result: str
) -> dict[str, Any]:
    """The hashed fields of a new entry (details made JSON-plain: what is hashed is what is stored)."""
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise InputInvalidError(f"audit event_type {event_type!r} must be snake_case, e.g. 'task_routed'")
    if not isinstance(actor, str) or not actor.strip():
        raise InputInvalidError("an audit entry needs a non-empty actor (who did it)")
    if target is not None and not isinstance(target, str):
        raise InputInvalidError(f"audit entry {event_type!r} is invalid: target must be a string")
    if not isinstance(result, str):
        raise InputInvalidError(f"audit entry {event_type!r} is invalid: result must be a string")
    try:
        plain_details = _plain(details or {})
    except (TypeError, ValueError) as exc:
        raise InputInvalidError(f"audit entry {event_type!r} is invalid: {exc}") from exc
    if not isinstance(plain_details, dict):
        raise InputInvalidError(f"audit entry {event_type!r} is invalid: details must be an object")
    return {
        "entry_id": uuid4().hex,
        "event_type": event_type,
        "actor": actor,
        "target": target,
        "details": plain_details,
        "result": result,
        "timestamp": iso_now(),
    }


_JSON_SCALARS = (str, int, bool, type(None))
_PLAIN_DEPTH = 8


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back: values that are already JSON's own (dicts with string keys, lists,
    strings, integers, booleans, None; the common case, e.g. a run's step list) pass as they are, copied at the
    top; anything else goes through ``json`` (tuples become lists, unknown types their ``str``)."""
    if type(value) is dict and _is_plain(value, _PLAIN_DEPTH):
        return dict(value)
    return json.loads(json.dumps(value, default=str))


def _is_plain(value: Any, depth: int) -> bool:
    """Whether ``json.loads(json.dumps(value))`` would give ``value`` back unchanged (floats are left to ``json``:
    it writes NaN and infinities as no JSON reader does); deeper than ``depth`` counts as not plain."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if depth == 0:
        return False
    if kind is dict:
        return all(type(k) is str and _is_plain(v, depth - 1) for k, v in value.items())
    if kind is list:
        return all(_is_plain(v, depth - 1) for v in value)
    return False


def _new_entry(
    event_type: str, actor: str, target: str | None, details: dict[str, Any] | None, result: str
) -> tuple[AuditEntry, str]:
    fields = _new_fields(event_type, actor, target, details, result)
    return AuditEntry.model_validate(fields), canonical_json(fields)


def _check_stream_info(checker: _ChainChecker, info: Any) -> VerifyReport | None:
    """Redis 7 stream bookkeeping: XDEL leaves ``max-deleted-entry-id``; trimming never does."""
    if not isinstance(info, dict):
        return None
    deleted = str(info.get("max-deleted-entry-id", "0-0"))
    if deleted != "0-0":
        return checker.bad(
            None, f"entries were deleted from the audit stream with XDEL (the latest was {deleted})", deleted
        )
    added, length = info.get("entries-added"), info.get("length")
    first = checker.first
    if first is not None and first.prev_hash and added is not None and added == length:
        return checker.bad(
            first, f"entries before {first.entry_id} are missing although retention never trimmed the stream"
        )
    return None


def _stream_key(stream_id: str) -> tuple[int, int]:
    millis, _, sequence = stream_id.partition("-")
    return int(millis or 0), int(sequence or 0)


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch, never below 0 (stream ids cannot be negative; nothing is older anyway)."""
    return max(0, int(as_utc(moment).timestamp() * 1000))


def measure_append(redis: Redis, n: int = 2000) -> float:
    """Seconds per audit append on ``redis`` (for ``itom-orch bench``); uses throw-away keys it removes."""
    scratch = keys.audit_scratch_stream(uuid4().hex)
    log = AuditLog(redis, max_entries=max(n, 1000), stream_key=scratch, head_key=f"{scratch}:head")
    try:
        log.append("bench_warmup", "bench")
        started = time.perf_counter()
        for index in range(n):
            log.append("bench_append", "bench", target="audit", details={"i": index})
        return (time.perf_counter() - started) / n
    finally:
        redis.delete(scratch, f"{scratch}:head")
