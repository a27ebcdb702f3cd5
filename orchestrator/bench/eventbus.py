"""Event bus throughput with a live consumer on the SSE code path, in another process.

Why ``EventBus.stream()``: it is exactly what ``/api/events`` iterates, so "delivered per second" is what an
SSE client can see. The consumer runs in its own process (see ``stream_consumer``) while this process
publishes with ``EventBus.publish`` (stream + pub/sub in one round trip, the call every component makes).
Events are built before the clock starts; publishing includes their encoding. Both processes read
``time.monotonic()``, one system-wide clock, so delivery is timed from the first publish to the last event
the consumer saw. Two figures: one event per call (a single caller is bound by the round trip) and
batches through ``EventBus.publish_many`` (bulk emitters); the target is checked on the batched one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from orchestrator.errors import EventDispatchError
from orchestrator.models.events import Event
from orchestrator.state.events import EventBus

EVENT_BATCH = 200  # events per publish_many call in the batched measurement


@dataclass(frozen=True)
class EventBusFigure:
    events: int
    published_per_s: float
    delivered_per_s: float
    publish_seconds: float
    deliver_seconds: float


def _start_consumer(url: str, run_id: str, after: str, events: int, timeout: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "orchestrator.bench.stream_consumer", url, run_id, after, str(events)]
    # Own session: a Ctrl-C reaches the bench, which then stops the consumer itself.
    consumer = subprocess.Popen([*command, str(timeout)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert consumer.stdout is not None
    if consumer.stdout.readline().strip() != "ready":
        consumer.kill()
        consumer.wait(timeout=10)
        raise EventDispatchError("bench: the event stream consumer process did not start; run it alone to see why")
    return consumer


def _outcome(consumer: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    try:
        out, _ = consumer.communicate(timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        consumer.kill()
        consumer.communicate()
        raise EventDispatchError(f"bench: the event stream consumer did not finish within {timeout:g}s") from None
    lines = out.strip().splitlines()
    outcome: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no output"}
    if "error" in outcome:
        raise EventDispatchError(f"bench: the event stream consumer failed: {outcome['error']}")
    return outcome


def measure_event_bus(bus: EventBus, events: int, *, batch: int = 1, timeout: float = 120.0) -> EventBusFigure:
    """Publish ``events`` (one per call, or ``batch`` per ``publish_many``) while the SSE path consumes them."""
    if bus.url is None:
        raise EventDispatchError("bench: the event bus needs its Redis URL for the stream consumer")
    run_id = f"bench-events-{uuid4().hex[:12]}"
    prepared = [
        Event(event_type="bench.event", correlation_id=run_id, source="bench", payload={"i": i}) for i in range(events)
    ]
    consumer = _start_consumer(bus.url, run_id, bus.last_id(), events, timeout)
    try:
        started = time.monotonic()
        if batch <= 1:
            for event in prepared:
                bus.publish(event)
        else:
            for offset in range(0, len(prepared), batch):
                bus.publish_many(prepared[offset : offset + batch])
        published = time.monotonic()
        outcome = _outcome(consumer, timeout)
    finally:
        if consumer.poll() is None:  # interrupted or failed: never leave the consumer behind
            consumer.kill()
            consumer.communicate()
    if outcome["received"] < events:
        raise EventDispatchError(
            f"bench: only {outcome['received']} of {events} events reached the stream consumer within {timeout:g}s",
            {"received": outcome["received"], "published": events},
        )
    publish_seconds = published - started
    deliver_seconds = max(float(outcome["last_at"]) - started, publish_seconds)
    return EventBusFigure(events, events / publish_seconds, events / deliver_seconds, publish_seconds, deliver_seconds)
