"""The event bus: one publish puts an event on Redis pub/sub (live) and on a capped stream (history).

Why both: pub/sub is instant but forgets; the stream lets an SSE client resume with ``Last-Event-ID``
without losing what it missed. Events only report; nothing uses them to drive control flow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import uuid4

from orchestrator import keys
from orchestrator.models.common import iso_now
from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import RedisClient, execute_pipeline, queue_script
from orchestrator.state import run_scripts

# Dotted names: the compatible ones (README: Compatibility) and new ones in the same style.
WORKFLOW_STARTED = "workflow.started"
WORKFLOW_COMPLETED = "workflow.completed"
WORKFLOW_FAILED = "workflow.failed"
WORKFLOW_CANCELLED = "workflow.cancelled"
WORKFLOW_RESUMED = "workflow.resumed"
WORKFLOW_REPAIRED = "workflow.repaired"
STEP_STARTED = "workflow.step.started"
STEP_COMPLETED = "workflow.step.completed"
STEP_FAILED = "workflow.step.failed"
STEP_RETRYING = "workflow.step.retrying"
STEP_DENIED = "workflow.step.denied"
STEP_CANCELLED = "workflow.step.cancelled"
STEP_REDELIVERED = "workflow.step.redelivered"
STEP_REFUSED = "workflow.step.refused"
WORKER_LOST = "worker.lost"
TASK_ROUTED = "task.routed"
POLICY_DENIED = "policy.denied"
MESSAGE_SENT = "message.sent"
MESSAGE_EXPIRED = "message.expired"
AGENT_STATUS_CHANGED = "agent.status_changed"


def encode(event: Event) -> str:
    return event.model_dump_json(exclude={"stream_id"})


def new_event_json(event_type: str, correlation_id: str | None, payload: dict[str, Any], source: str) -> str:
    """A new event's wire text without building the model (workers write two per step).

    Same fields as ``encode(Event(...))``; ``decode`` reads either. ``payload`` must be JSON-able (values that
    are not, such as a datetime, become their ``str``).
    """
    return json.dumps(
        {
            "event_id": uuid4().hex,
            "event_type": event_type,
            "source": source,
            "correlation_id": correlation_id,
            "payload": payload,
            "timestamp": iso_now(),
        },
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def decode(raw: str, stream_id: str | None = None) -> Event:
    event = Event.model_validate_json(raw)
    event.stream_id = stream_id
    return event


EVENTS_PER_SCRIPT = 500  # events one ``publish_many`` script call writes (~2 ms of Redis time on a slow VM)


class EventBus:
    """Publish and read events on one Redis (sync client; an async subscribe for SSE)."""

    def __init__(self, client: RedisClient, *, max_len: int = 100_000, url: str | None = None) -> None:
        self.redis = client
        self.max_len = max_len
        self.url = url

    def publish(self, event: Event) -> Event:
        """Append to the stream (and the run's event index) and publish live, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self.publish_to(pipe, event, by_sha=True)
        execute_pipeline(self.redis, pipe)
        return event

    def publish_many(self, events: Iterable[Event]) -> int:
        """Publish a batch in one round trip (bulk emitters: imports, replays, high-rate sources), in order.

        One script call per ``EVENTS_PER_SCRIPT`` events rather than one per event: Redis sets a script call up
        once, and each run's event index takes one push for the batch. The cap keeps any one call short, since
        Redis serves nobody else while a script runs."""
        encoded = list(map(encode, events))
        if not encoded:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        head = [keys.EVENTS_CHANNEL, self.max_len]
        for offset in range(0, len(encoded), EVENTS_PER_SCRIPT):
            batch = encoded[offset : offset + EVENTS_PER_SCRIPT]
            queue_script(pipe, run_scripts.EMIT_EVENTS, [keys.EVENTS_STREAM], [*head, *batch])
        execute_pipeline(self.redis, pipe)
        return len(encoded)

    def publish_to(self, pipe: Any, event: Event, *, by_sha: bool = False) -> None:
        """Queue the event on a caller's pipeline (batched with its own writes), by the one script every
        publisher uses, so its run's event index is written with it. ``by_sha`` only for pipelines run with
        ``execute_pipeline`` (which answers a NOSCRIPT); otherwise the script text is sent."""
        args = [keys.EVENTS_CHANNEL, self.max_len, encode(event)]
        if by_sha:
            queue_script(pipe, run_scripts.EMIT_EVENT, [keys.EVENTS_STREAM], args)
        else:
            pipe.eval(run_scripts.EMIT_EVENT, 1, keys.EVENTS_STREAM, *args)

    def emit(
        self,
        event_type: str,
        payload: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        source: str = "orchestrator",
    ) -> Event:
        return self.publish(Event(event_type=event_type, payload=payload or {}, correlation_id=run_id, source=source))

    def history(
        self,
        *,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events oldest first, strictly after stream id ``after`` (``Last-Event-ID``), filtered.

        With ``run_id`` only that run's events are read (through its event index), whatever else the stream holds.
        """
        if run_id:
            return self._run_history(run_id, types, after, limit)
        found: list[Event] = []
        start = f"({after}" if after else "-"
        type_list = list(types) if types else None
        while len(found) < limit:
            batch = self.redis.xrange(keys.EVENTS_STREAM, min=start, max="+", count=max(500, limit))
            if not batch:
                break
            for stream_id, fields in batch:
                raw = fields["e"]
                if type_list and not type_matches(type_of(raw), type_list):
                    continue
                found.append(decode(raw, stream_id))
                if len(found) >= limit:
                    break
            start = f"({batch[-1][0]}"
        return found

    def run_event_ids(self, run_id: str, after: str | None = None) -> list[str]:
        """Stream ids of one run's events, oldest first (strictly after ``after``)."""
        ids: list[str] = self.redis.lrange(keys.event_index_key(run_id), 0, -1)
        if after:
            floor = stream_id_key(after)
            ids = [i for i in ids if stream_id_key(i) > floor]
        return ids

    def _run_history(self, run_id: str, types: Iterable[str] | None, after: str | None, limit: int) -> list[Event]:
        type_list = list(types) if types else None
        found: list[Event] = []
        ids = self.run_event_ids(run_id, after)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for stream_id in chunk:
                pipe.xrange(keys.EVENTS_STREAM, min=stream_id, max=stream_id, count=1)
            for entries in pipe.execute():
                for stream_id, fields in entries:  # empty when the stream's cap trimmed it
                    raw = fields["e"]
                    if type_list and not type_matches(type_of(raw), type_list):
                        continue
                    found.append(decode(raw, stream_id))
                    if len(found) >= limit:
                        return found
        return found

    def last_id(self) -> str:
        """The newest stream id (or ``0-0``): live listeners start after it."""
        newest = self.redis.xrevrange(keys.EVENTS_STREAM, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def listen(
        self, *, run_id: str | None = None, types: Iterable[str] | None = None, timeout: float = 1.0
    ) -> Iterator[Event | None]:
        """Blocking live iterator. Yields None on an idle ``timeout`` and for every message that does not match,
        so a caller checks its deadline however busy the bus is; only matching messages are decoded."""
        type_list = list(types) if types else None
        needle = f'"correlation_id":"{run_id}"' if run_id else None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(keys.EVENTS_CHANNEL)
        try:
            while True:
                message = pubsub.get_message(timeout=timeout)
                if message is None:
                    yield None
                    continue
                raw = message["data"]
                wanted = (needle is None or needle in raw) and (not type_list or type_matches(type_of(raw), type_list))
                if not wanted:
                    yield None
                else:
                    yield decode(raw)
        finally:
            pubsub.close()


_TYPE = re.compile(r'"event_type":"([^"]*)"')
_CORRELATION = re.compile(r'"correlation_id":"([^"]*)"')


def type_of(raw: str) -> str:
    """The event type read from the encoded envelope without decoding it."""
    found = _TYPE.search(raw)
    return found.group(1) if found else ""


def correlation_of(raw: str) -> str | None:
    """The correlation (run) id read from the encoded envelope without decoding it."""
    found = _CORRELATION.search(raw)
    return found.group(1) if found else None


def type_matches(event_type: str, wanted: Iterable[str]) -> bool:
    """``wanted`` holds exact types and prefixes such as ``workflow.step.*``."""
    return any(event_type == t or (t.endswith(".*") and event_type.startswith(t[:-1])) for t in wanted)


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (``"1700000000000-3"`` -> ``(1700000000000, 3)``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def event_json(event: Event) -> dict[str, Any]:
    """The public JSON shape (with stream id as ``id`` for resuming)."""
    data: dict[str, Any] = json.loads(encode(event))
    data["id"] = event.stream_id
    return data
