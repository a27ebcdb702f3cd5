"""The event-bus figure's consumer, run in its own process: ``python -m orchestrator.bench.stream_consumer``.

Why a separate process: in production the SSE consumer (``EventBus.stream()`` in the API process) never
shares an interpreter with the publishers (workers, dispatch); in one process the two would fight over the
GIL and the figure would measure that fight. Protocol on stdout: ``ready`` once connected, then one JSON line
``{"received": n, "last_at": <time.monotonic() of the last event>}`` (or ``{"error": "..."}``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import get_redis
from orchestrator.state.events import EventBus


async def consume(url: str, run_id: str, after: str, expected: int, timeout: float) -> dict[str, Any]:
    bus = EventBus(get_redis(url), url=url)
    feed = cast(AsyncGenerator[Event | None, None], bus.stream(run_id=run_id, after=after, block_ms=100))
    deadline = time.monotonic() + timeout
    received, last_at = 0, 0.0
    print("ready", flush=True)
    try:
        async for event in feed:
            if event is not None:
                received += 1
                last_at = time.monotonic()
                if received >= expected:
                    break
            elif time.monotonic() > deadline:
                break
    finally:
        await feed.aclose()
    return {"received": received, "last_at": last_at}


def main(argv: list[str]) -> int:
    url, run_id, after, expected, timeout = argv[0], argv[1], argv[2], int(argv[3]), float(argv[4])
    try:
        outcome = asyncio.run(consume(url, run_id, after, expected, timeout))
    except Exception as exc:  # reported to the bench, which raises an OrchestratorError with it
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
