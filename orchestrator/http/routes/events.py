"""Events: live Server-Sent Events (resumable with ``Last-Event-ID``, a run's replayed from its start) and history.

Why the stream ids: each SSE id is the event's Redis stream id, so a client that reconnects with
``Last-Event-ID`` gets exactly what it missed, then the live feed, with nothing lost in between. Live events
come from the process's one event reader (``orchestrator.state.event_hub``); a connection first subscribes, then
catches up from the stream (after ``Last-Event-ID``) or from the run's event index (``run_id``), then
follows the live feed, skipping what the catch-up already sent. A client too slow for its buffer gets an
``overflow`` event whose ``id`` is the last event it received (reconnect with it) and is disconnected.
The body is written directly (not through an SSE library) so that one write carries every frame waiting for a
client: fan-out to hundreds of clients costs one send per client per burst, not one per event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from orchestrator import bounds, keys
from orchestrator.http.deps import AUTHENTICATED, PrincipalDep, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.state.event_hub import CLOSED, OVERFLOW, Delivery, EventHub, Subscription, delivery, sse_frame
from orchestrator.state.events import event_json, stream_id_key, type_matches, type_of

router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["events"], dependencies=AUTHENTICATED)
CATCH_UP_BATCH = 500
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "Connection": "keep-alive"}

RunIdQuery = Annotated[str | None, Query(description="Only events of this run (correlation id)")]
TypesQuery = Annotated[str | None, Query(description="Comma-separated event types; 'workflow.step.*' matches a prefix")]


def _types(raw: str | None) -> list[str] | None:
    types = [t.strip() for t in (raw or "").split(",") if t.strip()]
    return types or None


async def _catch_up(
    hub: EventHub, run_id: str | None, types: list[str] | None, after: str | None, limit: int
) -> AsyncIterator[tuple[str, str]]:
    """Stored events after ``after`` (a run's from its event index when ``run_id`` is given), oldest first."""
    client = hub.client()
    if run_id:
        ids: list[str] = await client.lrange(keys.event_index_key(run_id), -limit, -1)
        floor = stream_id_key(after) if after else (-1, -1)
        ids = [i for i in ids if stream_id_key(i) > floor]
        for start in range(0, len(ids), CATCH_UP_BATCH):
            pipe = client.pipeline(transaction=False)
            for stream_id in ids[start : start + CATCH_UP_BATCH]:
                pipe.xrange(keys.EVENTS_STREAM, min=stream_id, max=stream_id, count=1)
            for entries in await pipe.execute():
                for stream_id, fields in entries:
                    if not types or type_matches(type_of(fields["e"]), types):
                        yield stream_id, fields["e"]
        return
    if after is None:
        return
    cursor, sent = f"({after}", 0
    while sent < limit:
        batch = await client.xrange(keys.EVENTS_STREAM, min=cursor, max="+", count=CATCH_UP_BATCH)
        if not batch:
            return
        for stream_id, fields in batch:
            raw = fields["e"]
            sent += 1
            if not types or type_matches(type_of(raw), types):
                yield stream_id, raw
        cursor = f"({batch[-1][0]}"


async def _feed(
    hub: EventHub,
    sub: Subscription,
    run_id: str | None,
    types: list[str] | None,
    after: str | None,
    *,
    limit: int,
    ping_seconds: float,
) -> AsyncIterator[bytes]:
    """The SSE body. Each write carries every frame waiting in the client's queue: under load one send covers many
    events (the frames themselves were encoded once per event by the hub, not once per client)."""
    last = after
    try:
        yield b": connected\n\n"
        async with hub.gate:  # the catch-up holds one pooled connection at most
            caught_up = [entry async for entry in _catch_up(hub, run_id, types, after, limit)]
        if caught_up:
            last = caught_up[-1][0]
            yield b"".join(delivery(stream_id, raw).frame for stream_id, raw in caught_up)
        floor: tuple[int, int] | None = stream_id_key(last) if last else None
        while True:
            items = await sub.drain(ping_seconds)
            if not items:
                yield b": ping\n\n"
                continue
            marker = items.pop() if not isinstance(items[-1], Delivery) else None  # markers only come last
            live: list[Delivery] = items  # type: ignore[assignment]
            if floor is not None and live:  # until the live feed passes what the catch-up sent
                live = [item for item in live if stream_id_key(item.stream_id) > floor]
                floor = None if live else floor
            if live:
                last = live[-1].stream_id
            frames = [item.frame for item in live]
            if marker is not None:
                reason = "server shutting down" if marker == CLOSED else "client too slow for its buffer"
                data = {"reason": reason, "resume_after": last, "hint": "reconnect with Last-Event-ID"}
                frames.append(sse_frame(last, "closed" if marker == CLOSED else OVERFLOW, json.dumps(data)))
            if frames:
                yield b"".join(frames)
            if marker is not None:
                return
    finally:
        hub.unsubscribe(sub)


@router.get(
    "",
    summary="Live events as Server-Sent Events (id = stream id, event = type, data = JSON envelope)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": "The event stream"}
    },
)
async def stream_events(
    service: ServiceDep,
    principal: PrincipalDep,
    run_id: Annotated[
        str | None, Query(description="Only events of this run, replayed from its start unless resuming")
    ] = None,
    types: TypesQuery = None,
    last_event_id_query: Annotated[
        str | None, Query(alias="last_event_id", description="Resume after this event id")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="Sent by EventSource on reconnect")] = None,
) -> StreamingResponse:
    after = bounds.stream_id(last_event_id, "Last-Event-ID") or bounds.stream_id(last_event_id_query, "last_event_id")
    service.identifier(run_id, "run_id")
    door = service.settings.frontdoor
    type_list = _types(types)
    sub = await service.hub.open(run_id=run_id, types=type_list, principal=principal.actor)
    feed = _feed(
        service.hub, sub, run_id, type_list, after, limit=door.replay_max_events, ping_seconds=door.stream_ping_seconds
    )
    return StreamingResponse(feed, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/history", summary="Stored events, oldest first, strictly after the id 'after'")
def event_history(
    service: ServiceDep,
    run_id: RunIdQuery = None,
    types: TypesQuery = None,
    after: Annotated[str | None, Query(description="Only events after this event id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    events = service.event_history(run_id=run_id, types=_types(types), after=after, limit=limit)
    return {
        "events": [event_json(e) for e in events],
        "count": len(events),
        "last_id": events[-1].stream_id if events else bounds.stream_id(after, "after"),
    }
