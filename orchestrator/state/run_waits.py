"""Waiting for a run without a thread: ``wait=true`` on the HTTP and MCP doors, and MCP progress.

Why async: a waiting request that holds a worker thread starves every other sync route once enough of them
pile up (45 waits froze the API). A wait here is a coroutine with a subscription to the process's event hub,
made *before* the run is first read, so its closing event cannot slip between the read and the subscription.
The deadline is the coroutine's own timer, whatever passes on the bus; the run is re-read on its closing
event and at least every ``RECHECK_SECONDS`` (a closing event can be lost when a worker dies in between).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from orchestrator import keys
from orchestrator.errors import ShuttingDownError, WorkflowNotFoundError, WorkflowTimeoutError
from orchestrator.models.events import Event
from orchestrator.models.run import RunView
from orchestrator.state.event_hub import CLOSED, Delivery, EventHub
from orchestrator.state.events import decode
from orchestrator.state.run_views import view_from_hash

RUN_CLOSING_EVENTS = frozenset({"workflow.completed", "workflow.failed", "workflow.cancelled"})
CLOSING_GRACE_SECONDS = 1.0
RECHECK_SECONDS = 1.0


def settled(view: RunView) -> bool:
    """Terminal long enough that its closing event, if any, has been published."""
    if not view.status.is_terminal:
        return False
    if view.finished_at is None:
        return True
    finished = datetime.fromisoformat(view.finished_at).timestamp()
    return time.time() - finished > CLOSING_GRACE_SECONDS


async def read_run(hub: EventHub, run_id: str) -> RunView:
    async with hub.gate:
        data = await hub.client().hgetall(keys.run_key(run_id))
    if not data:
        raise WorkflowNotFoundError(f"Run '{run_id}' not found (unknown id or expired)", {"run_id": run_id})
    return view_from_hash(data, run_id)


async def wait_for_run(
    hub: EventHub,
    run_id: str,
    *,
    timeout: float,
    on_event: Callable[[Event], Awaitable[None]] | None = None,
    on_start: Callable[[RunView], Awaitable[None]] | None = None,
) -> RunView:
    """The run once it ended (and its closing event is out); ORCH_3004 at the deadline, ORCH_8007 on shutdown.

    ``on_start`` sees the run as first read, after the subscription: what it misses, ``on_event`` gets.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sub = await hub.open(run_id=run_id)
    try:
        view = await read_run(hub, run_id)
        if on_start is not None:
            await on_start(view)
        while not settled(view):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WorkflowTimeoutError(
                    f"Run '{run_id}' still {view.status.value} after {timeout:g}s (it keeps running)",
                    {"run_id": run_id, "status": view.status.value},
                )
            items = await sub.drain(min(remaining, RECHECK_SECONDS))
            if not items:
                view = await read_run(hub, run_id)
                continue
            closing = False
            for item in items:
                if item == CLOSED:
                    raise ShuttingDownError(
                        f"The server is shutting down; run '{run_id}' keeps running (read it with GET "
                        f"/api/workflows/{run_id})",
                        {"run_id": run_id},
                    )
                if not isinstance(item, Delivery):  # overflow: this wait fell behind; follow the run afresh
                    hub.unsubscribe(sub)
                    sub = await hub.open(run_id=run_id)
                    closing = True
                    break
                if on_event is not None:
                    await on_event(decode(item.data, item.stream_id))  # the extra "id" field is ignored
                closing = closing or item.event_type in RUN_CLOSING_EVENTS
            if closing:
                view = await read_run(hub, run_id)
                if view.status.is_terminal:
                    return view
        return view
    finally:
        hub.unsubscribe(sub)
