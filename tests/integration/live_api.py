"""The API served by uvicorn in a thread on a free loopback port, for tests that talk to it over HTTP."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from tests.servers import free_port


@contextlib.contextmanager
def serve(app: FastAPI, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Yield the base URL while uvicorn serves ``app``; stops it (and its lifespan) afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        assert thread.is_alive(), "uvicorn exited at start"
        assert time.monotonic() < deadline, f"uvicorn did not start within {start_timeout:g}s"
        time.sleep(0.02)  # polling the server's start flag, bounded by the deadline
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        # Finalize what the server's loop left behind (streams a browser dropped) now, not inside a later
        # compile(): CPython 3.11.7 reports "AST constructor recursion depth mismatch" when such garbage is
        # collected during one.
        gc.collect()
