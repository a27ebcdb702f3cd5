"""The MCP bridge: run an action as a tool call on a real agent's MCP server (streamable HTTP).

Why a background event loop: Celery step tasks are synchronous, fastmcp's ``Client`` is async, and a
new connection (and a throw-away event loop) for every call would cost more than the call. Here each worker process
keeps ONE event-loop thread holding one open client session per server URL; calls are submitted to it
with ``run_coroutine_threadsafe`` and waited on with the step's timeout. The thread, its loop and its
sessions belong to the process that made them: after ``fork()`` the child starts its own, and a session
that hit a connection error is dropped and re-opened on the next call.

Errors map onto the ORCH tree: no answer in time -> ``TaskTimeoutError`` (ORCH_7002); connection refused
or reset before a response -> ``RetryableTaskError`` (ORCH_7006, retryable); the tool reported an error,
as an MCP error or inside a normal reply (``toolresults``) -> ``TaskExecutionError`` (ORCH_7001) with the
server's message, retryable when the server calls it passing; no such tool, or arguments the tool's
``inputSchema`` refuses (``toolschema``) -> ``TaskInvalidError`` (ORCH_7003) before anything is sent.

A server that restarted no longer knows our session and answers every call "Session not found" (HTTP 404):
the bridge then opens a new session and sends the call once more (the server refused it unseen, so a
second send cannot repeat an effect).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import os
import threading
import time
from collections.abc import Coroutine, Generator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types
from fastmcp import Client
from mcp import MCPError

from orchestrator.errors import (
    OrchestratorError,
    RetryableTaskError,
    TaskExecutionError,
    TaskInvalidError,
    TaskTimeoutError,
)
from workers.toolresults import reported_error
from workers.toolschema import check_arguments

T = TypeVar("T")
SessionKey = tuple[str, str | None]
_CLOSE_TIMEOUT = 3.0
_SESSION_LOST = ("session not found", "session terminated", "no valid session")
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    httpx2.TransportError,
    ConnectionError,
    OSError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the members of exception groups (breadth-first, bounded)."""
    seen: list[BaseException] = []
    queue = [exc]
    while queue and len(seen) < 32:
        current = queue.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        queue.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return seen


def _status_error(exc: BaseException) -> httpx2.HTTPStatusError | None:
    return next((e for e in _causes(exc) if isinstance(e, httpx2.HTTPStatusError)), None)


class _BearerAuth(httpx2.Auth):
    """Sends the agent's token (if any) and remembers the last HTTP status.

    The MCP client reports a rejected token only as "Server returned an error response"; the status seen
    here is how the bridge tells a credentials problem (not retryable) from anything else.
    """

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.last_status = 0

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        self.last_status = response.status_code

    @property
    def rejected(self) -> bool:
        return self.last_status in (401, 403)


def _client(url: str, token: str | None) -> tuple[Client[Any], _BearerAuth]:
    auth = _BearerAuth(token)
    return Client(url, auth=auth), auth


def _credentials_error(url: str, tool: str | None, status: int) -> TaskExecutionError:
    return TaskExecutionError(
        f"MCP server {url} refused the credentials (HTTP {status}); set the agent's ORCH_AGENTS__<AGENT>__MCP_TOKEN.",
        {"url": url, "tool": tool, "http_status": status},
    )


def session_lost(exc: BaseException) -> bool:
    """The server no longer knows our session (it restarted, or dropped it): a new session will do."""
    for cause in _causes(exc):
        text = (cause.message if isinstance(cause, MCPError) else str(cause)).lower()
        if any(marker in text for marker in _SESSION_LOST):
            return True
    return False


def _translate(exc: Exception, url: str, tool: str | None, auth: _BearerAuth | None = None) -> OrchestratorError:
    """Map a client-side failure to the ORCH error a worker can act on (retry or not)."""
    if isinstance(exc, OrchestratorError):
        return exc
    details = {"url": url, "tool": tool, "exception": type(exc).__name__}
    if auth is not None and auth.rejected:
        return _credentials_error(url, tool, auth.last_status)
    status = _status_error(exc)
    if status is not None:
        code = status.response.status_code
        if code in (401, 403):
            return _credentials_error(url, tool, code)
        if code == 429 or code >= 500:
            return RetryableTaskError(f"MCP server {url} is failing (HTTP {code}); the call may be retried.", details)
        return TaskExecutionError(f"MCP server {url} answered HTTP {code}; check the agent's MCP_URL.", details)
    if any(isinstance(e, _CONNECTION_ERRORS) for e in _causes(exc)) or "failed to connect" in str(exc).lower():
        return RetryableTaskError(f"MCP server {url} is unreachable or dropped the connection: {exc}", details)
    if isinstance(exc, MCPError) and exc.code in (mcp_types.INVALID_PARAMS, mcp_types.METHOD_NOT_FOUND):
        return TaskInvalidError(f"MCP server {url} rejected the call to '{tool}': {exc.message}", details)
    if isinstance(exc, MCPError):
        return TaskExecutionError(f"MCP call '{tool}' on {url} failed: {exc.message}", {**details, "code": exc.code})
    return TaskExecutionError(f"MCP call '{tool}' on {url} failed: {type(exc).__name__}: {exc}", details)


@dataclass
class _Session:
    """An open client and the ``inputSchema`` of each of the server's tools."""

    client: Client[Any]
    auth: _BearerAuth
    tools: dict[str, dict[str, Any]]


def _tool_schemas(tools: list[mcp_types.Tool]) -> dict[str, dict[str, Any]]:
    return {t.name: dict(t.input_schema or {}) for t in tools}


def _json_object(text: str) -> dict[str, Any] | None:
    """A reply sent as JSON text (servers that return ``json.dumps(...)``) read as the object it is."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tool_result(result: mcp_types.CallToolResult, url: str, tool: str) -> dict[str, Any]:
    texts = [block.text for block in result.content if isinstance(block, mcp_types.TextContent)]
    if result.is_error:
        message = "\n".join(texts) or f"tool '{tool}' reported an error"
        if message.lower().startswith("unknown tool"):
            raise TaskInvalidError(f"MCP server {url} has no tool '{tool}': {message}", {"tool": tool})
        raise TaskExecutionError(f"Tool '{tool}' failed: {message}", {"tool": tool, "url": url})
    structured = result.structured_content
    if isinstance(structured, dict) and set(structured) == {"result"} and isinstance(structured["result"], str):
        content = _json_object(structured["result"]) or dict(structured)  # a JSON reply returned as a string
    elif isinstance(structured, dict):
        content = dict(structured)
    else:
        content = _json_object("\n".join(texts)) or {"text": "\n".join(texts)}
    error = reported_error(content)
    if error is not None:
        details = {"tool": tool, "url": url, "server_error_code": error.code}
        message = f"Tool '{tool}' reported an error: {error.message}"
        raise RetryableTaskError(message, details) if error.transient else TaskExecutionError(message, details)
    return content


class _Runtime:
    """One event-loop thread per process and the sessions it holds, by (url, token)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[SessionKey, _Session] = {}
        self.locks: dict[SessionKey, asyncio.Lock] = {}
        self.sessions_opened = 0
        self.sessions_recovered = 0
        self.thread = threading.Thread(target=self._run, name="itom-mcp-bridge", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run ``coro`` on the loop; give up (and cancel it) after ``timeout`` seconds."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            done, _ = concurrent.futures.wait([future], timeout=timeout)
        except BaseException:  # e.g. Celery's soft time limit fires while we wait
            future.cancel()
            raise
        if not done:
            future.cancel()
            raise TaskTimeoutError(f"{what} did not answer within {timeout:g}s", {"timeout_seconds": timeout})
        return future.result()

    async def session(self, key: SessionKey) -> _Session:
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self.sessions.get(key)
            if found is not None:
                return found
            client, auth = _client(*key)
            try:
                await client.__aenter__()  # type: ignore[no-untyped-call]
                tools = await client.list_tools()
            except Exception as exc:
                await self._close(client)
                raise _translate(exc, key[0], None, auth) from exc
            except BaseException:
                await self._close(client)
                raise
            self.sessions[key] = found = _Session(client, auth, _tool_schemas(tools))
            self.sessions_opened += 1
            return found

    async def discard(self, key: SessionKey) -> None:
        found = self.sessions.pop(key, None)
        if found is not None:
            await self._close(found.client)

    @staticmethod
    async def _close(client: Client[Any]) -> None:
        with suppress(Exception), anyio.move_on_after(_CLOSE_TIMEOUT):
            await client.close()  # type: ignore[no-untyped-call]

    async def call(
        self, key: SessionKey, tool: str, arguments: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        """One tool call; a session the server lost is re-opened and the call sent once more."""
        try:
            return await self._call_once(key, tool, arguments, idempotency_key)
        except OrchestratorError as exc:
            if not session_lost(exc):
                raise
        self.sessions_recovered += 1
        try:
            return await self._call_once(key, tool, arguments, idempotency_key)
        except OrchestratorError as exc:
            if not session_lost(exc):
                raise
            message = f"MCP server {key[0]} lost a brand-new session too (restarting?); the call may be retried."
            raise RetryableTaskError(message, {"url": key[0], "tool": tool}) from exc

    async def _call_once(
        self, key: SessionKey, tool: str, arguments: dict[str, Any], idempotency_key: str | None
    ) -> dict[str, Any]:
        url = key[0]
        session: _Session | None = None
        try:
            session = await self.session(key)
            if tool not in session.tools:
                session.tools = _tool_schemas(await session.client.list_tools())
            if tool not in session.tools:
                raise TaskInvalidError(
                    f"MCP server {url} has no tool '{tool}'. It offers: {', '.join(sorted(session.tools)) or 'none'}. "
                    f"Point the agent's MCP_URL at the right server.",
                    {"tool": tool, "url": url},
                )
            schema = session.tools[tool]
            args = {k: v for k, v in arguments.items() if v is not None}
            if idempotency_key and "idempotency_key" in (schema.get("properties") or {}):
                args["idempotency_key"] = idempotency_key
            check_arguments(tool, schema, args)
            result = await session.client.call_tool_mcp(tool, args)
        except Exception as exc:
            error = _translate(exc, url, tool, session.auth if session else None)
            if error.retryable or session_lost(exc) or (session is not None and session.auth.rejected):
                await self.discard(key)
            if error is exc:
                raise
            raise error from exc
        return _tool_result(result, url, tool)

    async def close_all(self) -> None:
        for key in list(self.sessions):
            await self.discard(key)


class _PerProcess:
    """This process's runtime (module state kept in one object instead of ``global`` rebinding)."""

    def __init__(self) -> None:
        self.runtime: _Runtime | None = None
        self.lock = threading.Lock()

    def reset(self) -> None:
        """After ``fork()``: the parent's loop thread does not exist here; never touch its sessions."""
        self.runtime, self.lock = None, threading.Lock()

    def get(self) -> _Runtime:
        with self.lock:
            if self.runtime is None or not self.runtime.alive():
                self.runtime = _Runtime()
            return self.runtime

    def take(self) -> _Runtime | None:
        with self.lock:
            runtime, self.runtime = self.runtime, None
            return runtime


_process = _PerProcess()
os.register_at_fork(after_in_child=_process.reset)


def call_tool(
    url: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    token: str | None = None,
    timeout: float = 30.0,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Call ``tool`` on the MCP server at ``url`` over this process's pooled session.

    ``None`` arguments are dropped; ``idempotency_key`` is sent only if the tool's input schema declares it.
    Returns the structured content, or ``{"text": ...}`` for text-only results.
    """
    runtime = _process.get()
    return runtime.submit(
        runtime.call((url, token), tool, arguments, idempotency_key), timeout, f"MCP tool '{tool}' on {url}"
    )


def sessions_opened() -> int:
    """How many sessions this process has opened (diagnostics: it should not grow with every call)."""
    runtime = _process.runtime
    return runtime.sessions_opened if runtime is not None and runtime.alive() else 0


def sessions_recovered() -> int:
    """How many calls this process re-sent on a new session after the server lost the old one."""
    runtime = _process.runtime
    return runtime.sessions_recovered if runtime is not None and runtime.alive() else 0


async def _probe(url: str, token: str | None) -> list[str]:
    client, auth = _client(url, token)
    try:
        async with client:
            return sorted(t.name for t in await client.list_tools())
    except Exception as exc:
        raise _translate(exc, url, None, auth) from exc


def probe(url: str, token: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """Agent health: open a fresh session, list the tools, close. Never raises.

    ``tool_names`` lets the health view name the mapped tools a server lacks.
    """
    started = time.perf_counter()
    runtime = _process.get()
    try:
        names = runtime.submit(_probe(url, token), timeout, f"MCP server {url}")
    except Exception as exc:
        error = exc if isinstance(exc, OrchestratorError) else _translate(exc, url, None)
        return {
            "reachable": False,
            "tools": 0,
            "tool_names": [],
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "error": error.message,
        }
    return {
        "reachable": True,
        "tools": len(names),
        "tool_names": names,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": None,
    }


def shutdown(timeout: float = 5.0) -> None:
    """Close this process's sessions and stop its loop thread (tests, worker shutdown)."""
    runtime = _process.take()
    if runtime is None or not runtime.alive():
        return
    with suppress(Exception):
        asyncio.run_coroutine_threadsafe(runtime.close_all(), runtime.loop).result(timeout)
    runtime.loop.call_soon_threadsafe(runtime.loop.stop)
    runtime.thread.join(timeout)
    if not runtime.thread.is_alive():
        runtime.loop.close()


atexit.register(shutdown)
