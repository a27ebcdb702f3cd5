"""The event bus: one publish puts an event on Redis pub/sub (live) and on a capped stream (history).

Why both: pub/sub is instant but forgets; the stream lets an SSE client resume with ``Last-Event-ID``
without losing what it missed. Events only report; nothing uses them to drive control flow.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import redis.asyncio as aioredis

from orchestrator import keys
from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import RedisClient

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


def decode(raw: str, stream_id: str | None = None) -> Event:
    event = Event.model_validate_json(raw)
    event.stream_id = stream_id
    return event


def _matches(event: Event, run_id: str | None, types: Iterable[str] | None) -> bool:
    if run_id and event.correlation_id != run_id:
        return False
    if types:
        wanted = set(types)
        return event.event_type in wanted or any(
            t.endswith(".*") and event.event_type.startswith(t[:-1]) for t in wanted
        )
    return True


class EventBus:
    """Publish and read events on one Redis (sync client; an async subscribe for SSE)."""

    def __init__(self, client: RedisClient, *, max_len: int = 100_000, url: str | None = None) -> None:
        self.redis = client
        self.max_len = max_len
        self.url = url

    def publish(self, event: Event) -> Event:
        """Append to the stream and publish live, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self.publish_to(pipe, event)
        pipe.execute()
        return event

    def publish_many(self, events: Iterable[Event]) -> int:
        """Publish a batch in one round trip (bulk emitters: imports, replays, high-rate sources)."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for event in events:
            self.publish_to(pipe, event)
            count += 1
        pipe.execute()
        return count

    def publish_to(self, pipe: Any, event: Event) -> None:
        """Queue the two writes on a caller's pipeline (batched with its own writes)."""
        data = encode(event)
        pipe.xadd(keys.EVENTS_STREAM, {"e": data}, maxlen=self.max_len, approximate=True)
        pipe.publish(keys.EVENTS_CHANNEL, data)

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
        """Events oldest first, strictly after stream id ``after`` (``Last-Event-ID``), filtered."""
        found: list[Event] = []
        start = f"({after}" if after else "-"
        type_list = list(types) if types else None
        while len(found) < limit:
            batch = self.redis.xrange(keys.EVENTS_STREAM, min=start, max="+", count=max(500, limit))
            if not batch:
                break
            for stream_id, fields in batch:
                event = decode(fields["e"], stream_id)
                if _matches(event, run_id, type_list):
                    found.append(event)
                    if len(found) >= limit:
                        break
            start = f"({batch[-1][0]}"
        return found

    def last_id(self) -> str:
        """The newest stream id (or ``0-0``): live listeners start after it."""
        newest = self.redis.xrevrange(keys.EVENTS_STREAM, count=1)
        return str(newest[0][0]) if newest else "0-0"

    def listen(
        self, *, run_id: str | None = None, types: Iterable[str] | None = None, timeout: float = 1.0
    ) -> Iterator[Event | None]:
        """Blocking live iterator (yields None on idle ``timeout`` so callers can check deadlines)."""
        type_list = list(types) if types else None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(keys.EVENTS_CHANNEL)
        try:
            while True:
                message = pubsub.get_message(timeout=timeout)
                if message is None:
                    yield None
                    continue
                event = decode(message["data"])
                if _matches(event, run_id, type_list):
                    yield event
        finally:
            pubsub.close()

    async def stream(
        self,
        *,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        after: str | None = None,
        block_ms: int = 15_000,
    ) -> AsyncIterator[Event | None]:
        """Async live feed for SSE, read from the stream so nothing between reconnects is lost.

        Yields None after ``block_ms`` of silence (a keep-alive opportunity).
        """
        if self.url is None:
            raise RuntimeError("EventBus.stream needs the Redis URL")
        client: Any = aioredis.Redis.from_url(self.url, decode_responses=True)
        type_list = list(types) if types else None
        cursor = after or self.last_id()
        try:
            while True:
                batch = await client.xread({keys.EVENTS_STREAM: cursor}, count=500, block=block_ms)
                if not batch:
                    yield None
                    continue
                for stream_id, fields in batch[0][1]:
                    cursor = stream_id
                    event = decode(fields["e"], stream_id)
                    if _matches(event, run_id, type_list):
                        yield event
        finally:
            await client.aclose()


def event_json(event: Event) -> dict[str, Any]:
    """The public JSON shape (with stream id as ``id`` for resuming)."""
    data: dict[str, Any] = json.loads(encode(event))
    data["id"] = event.stream_id
    return data
