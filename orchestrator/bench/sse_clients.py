"""Many SSE clients in one process of their own: ``python -m orchestrator.bench.sse_clients BASE TOKEN N``.

Why a separate process, and raw sockets: the front-door bench measures the API with N live streams attached;
clients that share the load generator's interpreter, or parse every line with a full HTTP client library,
would spend the machine's CPU on the measuring side (in production the clients run elsewhere). Each client
sends one GET, checks the status line, then only counts ``data:`` lines in what arrives. Protocol on stdout:
``ready`` once every stream answered 200, then (when stdin closes) one JSON line
``{"events": total, "streams": n, "dropped": k}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlsplit

READ_BYTES = 1 << 16


async def _open(host: str, port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    )
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def run(base: str, token: str, count: int) -> dict[str, Any]:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    streams = await asyncio.gather(*(_open(host, port, token) for _ in range(count)))
    received = [0] * count
    dropped = [0]

    async def listen(index: int, reader: asyncio.StreamReader) -> None:
        tail = b""
        while True:
            chunk = await reader.read(READ_BYTES)
            if not chunk:
                return
            text = tail + chunk
            received[index] += text.count(b"\ndata: ")
            if b"event: overflow" in text:
                dropped[0] += 1
                return
            tail = text[-8:]  # a marker split across two reads is counted once

    tasks = [asyncio.create_task(listen(i, reader)) for i, (reader, _) in enumerate(streams)]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _, writer in streams:
        writer.close()
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
