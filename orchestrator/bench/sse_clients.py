"""Many SSE clients in one process of their own: ``python -m orchestrator.bench.sse_clients BASE TOKEN N``.

Why a separate process: the front-door bench measures the API with N live streams attached; clients that share
the load generator's interpreter would slow the generator instead. Protocol on stdout: ``ready`` once every
stream answered 200, then (when stdin closes) one JSON line ``{"events": total, "streams": n, "dropped": k}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx2 as httpx


async def run(base: str, token: str, count: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    headers = {"Authorization": f"Bearer {token}"}
    received = [0] * count
    dropped = [0]
    opened = asyncio.Event()
    open_count = [0]

    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=None) as client:

        async def listen(index: int) -> None:
            try:
                async with client.stream("GET", "/api/events") as response:
                    response.raise_for_status()
                    open_count[0] += 1
                    if open_count[0] == count:
                        opened.set()
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            received[index] += 1
                        elif line.startswith("event: overflow"):
                            dropped[0] += 1
                            return
            except (httpx.HTTPError, asyncio.CancelledError):
                return

        tasks = [asyncio.create_task(listen(i)) for i in range(count)]
        await asyncio.wait_for(opened.wait(), 60)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"events": sum(received), "streams": count, "dropped": dropped[0]}


def main(argv: list[str]) -> int:
    try:
        outcome = asyncio.run(run(argv[0], argv[1], int(argv[2])))
    except Exception as exc:  # reported to the bench, which raises an OrchestratorError with it
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
