"""The event bus on fakeredis: one publish reaches the stream and live subscribers; history resumes by id."""

from __future__ import annotations

import threading
from typing import Any

from orchestrator.models.events import Event
from orchestrator.state.events import EventBus, event_json


def test_publish_appends_history_and_filters(fake_redis: Any) -> None:
    bus = EventBus(fake_redis, max_len=1000)
    bus.emit("workflow.started", {"n": 1}, run_id="r1")
    bus.emit("workflow.step.completed", {"n": 2}, run_id="r1")
    bus.emit("workflow.started", {"n": 3}, run_id="r2")
    assert [e.payload["n"] for e in bus.history()] == [1, 2, 3]
    assert [e.payload["n"] for e in bus.history(run_id="r1")] == [1, 2]
    assert [e.payload["n"] for e in bus.history(types=["workflow.step.*"])] == [2]
    first = bus.history()[0]
    assert [e.payload["n"] for e in bus.history(after=first.stream_id)] == [2, 3]
    assert event_json(first)["id"] == first.stream_id


def test_live_listeners_receive_published_events(fake_redis: Any) -> None:
    bus = EventBus(fake_redis)
    received: list[Event] = []
    ready = threading.Event()

    def listen() -> None:
        for event in bus.listen(run_id="r9", timeout=0.05):
            ready.set()
            if event is not None:
                received.append(event)
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(5)
    bus.emit("task.routed", {}, run_id="other")
    bus.emit("workflow.completed", {"ok": True}, run_id="r9")
    thread.join(5)
    assert [e.event_type for e in received] == ["workflow.completed"]


def test_stream_is_capped(fake_redis: Any) -> None:
    bus = EventBus(fake_redis, max_len=100)
    for i in range(500):
        bus.emit("x.y", {"i": i})
    assert fake_redis.xlen("orch:events:stream") < 500


def test_publish_many_writes_a_batch_in_order(fake_redis: Any) -> None:
    bus = EventBus(fake_redis)
    assert bus.publish_many(Event(event_type="bulk.item", payload={"i": i}) for i in range(5)) == 5
    assert [e.payload["i"] for e in bus.history(types=["bulk.item"])] == [0, 1, 2, 3, 4]


def test_publish_many_across_script_calls_keeps_order_and_every_runs_index(fake_redis: Any, monkeypatch: Any) -> None:
    from orchestrator.state import events as events_module

    monkeypatch.setattr(events_module, "EVENTS_PER_SCRIPT", 3)  # 8 events: three script calls
    bus = EventBus(fake_redis)
    batch = [Event(event_type="bulk.item", correlation_id=f"run-{i % 2}", payload={"i": i}) for i in range(8)]
    assert bus.publish_many(batch) == 8
    assert [e.payload["i"] for e in bus.history(types=["bulk.item"])] == list(range(8))
    assert [e.payload["i"] for e in bus.history(run_id="run-1")] == [1, 3, 5, 7]
    assert [e.payload["i"] for e in bus.history(run_id="run-0")] == [0, 2, 4, 6]
    assert bus.publish_many([]) == 0


def test_a_run_start_event_written_by_hand_is_the_models_own_text() -> None:
    """Dispatch writes ``workflow.started`` with ``new_event_json`` (no model per start): the text must be exactly
    what ``encode(Event(...))`` gives for it, so every reader sees one format."""
    from orchestrator.models.events import ORCHESTRATOR_SOURCE
    from orchestrator.state.events import decode, encode, new_event_json

    payload = {"template_id": None, "name": "task é", "steps": ["a", "b"], "priority": "medium", "source": "api"}
    raw = new_event_json("workflow.started", "run-1", payload, ORCHESTRATOR_SOURCE)
    event = decode(raw)
    assert encode(event) == raw
    assert (event.source, event.correlation_id, event.payload) == ("orchestrator", "run-1", payload)
