"""The event-bus figure's consumer, run in its own process: ``python -m orchestrator.bench.stream_consumer``.

Why a separate process: in production the SSE consumer (the ``EventHub`` of the API process) never
shares an interpreter with the publishers (workers, dispatch); in one process the two would fight over the
GIL and the figure would measure that fight. Protocol on stdout: ``ready`` once connected, then one JSON line
``{"received": n, "last_at": <time.monotonic() of the last event>}`` (or ``{"error": "..."}``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from orchestrator.state.event_hub import Delivery, EventHub


async def consume(url: str, run_id: str, after: str, expected: int, timeout: float) -> dict[str, Any]:
    """Count the run's events as the API's SSE feed sees them (``after`` is kept for the protocol: live only)."""
    del after
    hub = EventHub(url, block_ms=100, queue_events=max(expected, 1000) + 10)
    sub = await hub.open(run_id=run_id)
    deadline = time.monotonic() + timeout
    received, last_at = 0, 0.0
    print("ready", flush=True)
    try:
        while received < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            items = await sub.drain(remaining)
            if not items:
                break
            got = sum(1 for item in items if isinstance(item, Delivery))
            received += got
            last_at = time.monotonic()
            if got < len(items):
                break
    finally:
        hub.unsubscribe(sub)
        hub.close()
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
