"""Events: live Server-Sent Events (resumable with ``Last-Event-ID``) and the stored history.

Why the stream and not pub/sub for SSE: each event's id is its Redis stream id, so a client that reconnects
with ``Last-Event-ID`` gets exactly what it missed, then the live feed, with nothing lost in between.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from orchestrator.errors import InputInvalidError
from orchestrator.http.deps import AUTHENTICATED, ServiceDep
from orchestrator.http.routes import API_PREFIX
from orchestrator.service import Orchestrator
from orchestrator.state.events import event_json

router = APIRouter(prefix=f"{API_PREFIX}/events", tags=["events"], dependencies=AUTHENTICATED)
PING_SECONDS = 15
_STREAM_ID = re.compile(r"^\d+(-\d+)?$")

RunIdQuery = Annotated[str | None, Query(description="Only events of this run (correlation id)")]
TypesQuery = Annotated[str | None, Query(description="Comma-separated event types; 'workflow.step.*' matches a prefix")]


def _types(raw: str | None) -> list[str] | None:
    types = [t.strip() for t in (raw or "").split(",") if t.strip()]
    return types or None


def _stream_id(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not _STREAM_ID.match(value):
        raise InputInvalidError(f"'{name}' must be an event id such as '1700000000000-0', got '{value}'", {name: value})
    return value


async def _feed(
    service: Orchestrator, run_id: str | None, types: list[str] | None, after: str | None
) -> AsyncIterator[ServerSentEvent]:
    async for event in service.event_stream(run_id=run_id, types=types, after=after, block_ms=PING_SECONDS * 1000):
        if event is None:
            continue  # idle: sse-starlette sends the keep-alive pings
        yield ServerSentEvent(data=json.dumps(event_json(event)), id=event.stream_id, event=event.event_type)


@router.get(
    "",
    summary="Live events as Server-Sent Events (id = stream id, event = type, data = JSON envelope)",
    response_class=EventSourceResponse,
)
def stream_events(
    service: ServiceDep,
    run_id: RunIdQuery = None,
    types: TypesQuery = None,
    last_event_id_query: Annotated[
        str | None, Query(alias="last_event_id", description="Resume after this event id")
    ] = None,
    last_event_id: Annotated[str | None, Header(description="Sent by EventSource on reconnect")] = None,
) -> EventSourceResponse:
    after = _stream_id(last_event_id, "Last-Event-ID") or _stream_id(last_event_id_query, "last_event_id")
    # Fix the starting point now, not when the body starts streaming: nothing published after the request
    # arrived can be missed.
    after = after or service.last_event_id()
    return EventSourceResponse(_feed(service, run_id, _types(types), after), ping=PING_SECONDS)


@router.get("/history", summary="Stored events, oldest first, strictly after the id 'after'")
def event_history(
    service: ServiceDep,
    run_id: RunIdQuery = None,
    types: TypesQuery = None,
    after: Annotated[str | None, Query(description="Only events after this event id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    events = service.event_history(run_id=run_id, types=_types(types), after=_stream_id(after, "after"), limit=limit)
    return {
        "events": [event_json(e) for e in events],
        "count": len(events),
        "last_id": events[-1].stream_id if events else _stream_id(after, "after"),
    }
