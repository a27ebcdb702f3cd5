"""Small ASGI middlewares: a request-size limit, a limit on path and query values, and request metrics.

Why pure ASGI: the size limit must see the raw byte stream (a chunked upload has no Content-Length), and
neither may buffer or wrap streaming responses such as SSE, which ``BaseHTTPMiddleware`` would.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.errors import InputInvalidError, PayloadTooLargeError
from orchestrator.http.errors import error_response
from orchestrator.metrics.prometheus import HTTP_LATENCY, HTTP_REQUESTS


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Request body is larger than {limit} bytes (ORCH_MAX_REQUEST_BYTES); send less", {"max_request_bytes": limit}
    )


class InputLimitMiddleware:
    """ORCH_8003 (400) for a path segment or query value over ``max_chars``, or not valid UTF-8 text.

    Why before routing: every id in a path or query is looked up, stored or echoed; one check here bounds them
    all (``ORCH_FRONTDOOR__MAX_IDENTIFIER_CHARS``) whatever route or dependency reads them.
    """

    def __init__(self, app: ASGIApp, max_chars: int) -> None:
        self.app = app
        self.max_chars = max_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope)
            if problem is not None:
                await error_response(InputInvalidError(problem))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
        values = [("path", unquote_to_bytes(part)) for part in raw_path.split(b"/")]
        query = scope.get("query_string", b"")
        if query:
            values += [
                (name, value.encode("latin-1"))
                for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
            ]
        for name, value in values:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                return f"'{name[:64]}' is not valid UTF-8 text (e.g. an encoded lone surrogate); send UTF-8"
            if len(text) > self.max_chars:
                return (
                    f"'{name[:64]}' is {len(text)} characters; path and query values are limited to "
                    f"{self.max_chars} (ORCH_FRONTDOOR__MAX_IDENTIFIER_CHARS)"
                )
        return None


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: by Content-Length up front, else by counting the streamed bytes.

    The body is read (at most ``max_bytes`` + one chunk) before the app runs, so an over-size stream is refused
    before any handler sees it; the app then receives the same bytes as one message.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await error_response(_too_large(self.max_bytes))(scope, receive, send)
            return
        if scope.get("method") in {"GET", "HEAD", "OPTIONS", "DELETE"} and declared in (None, 0):
            await self.app(scope, receive, send)  # no body to count; keeps SSE's disconnect watch untouched
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await error_response(_too_large(self.max_bytes))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A receive that first hands back what was read, then defers to the server's receive."""
    state: dict[str, Any] = {"sent": False}

    async def replayed() -> Message:
        if not state["sent"]:
            state["sent"] = True
            if pending is not None:
                return pending
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await receive()

    return replayed


class MetricsMiddleware:
    """Counts requests and times responses by route template (``/api/workflows/{run_id}``), never raw paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, route, str(status["code"])).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The matched route's template; under a mount (``/mcp``) prefixed with the mount's path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return f"{scope.get('root_path', '')}{path}" or "/"
