"""Error translation for MCP tools: every failure is a ``ToolError`` whose text starts with ``[ORCH_xxxx]``.

Why a context manager rather than a decorator: FastMCP builds each tool's input schema from the function's
own signature and annotations; wrapping functions would hide them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mcp.types as mt
from fastmcp.exceptions import ToolError
from fastmcp.exceptions import ValidationError as ArgumentsInvalid
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from kombu.exceptions import OperationalError as BrokerOperationalError
from pydantic import ValidationError
from redis.exceptions import RedisError

from orchestrator.bounds import clip
from orchestrator.errors import BrokerUnavailableError, InputInvalidError, OrchestratorError, RedisUnavailableError
from orchestrator.metrics.prometheus import MCP_TOOL_CALLS


def tool_error(error: OrchestratorError) -> ToolError:
    return ToolError(f"[{error.code}] {clip(error.message, 2000)}")


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Run a tool body: ORCH errors, invalid input, Redis and broker failures become ``[ORCH_xxxx] message``."""
    try:
        yield
    except OrchestratorError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(exc) from exc
    except ValidationError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(InputInvalidError(f"Invalid input: {exc}")) from exc
    except RedisError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(RedisUnavailableError(f"Redis did not answer ({type(exc).__name__}); retry later")) from exc
    except BrokerOperationalError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(BrokerUnavailableError(f"The broker did not answer ({type(exc).__name__}); retry")) from exc
    MCP_TOOL_CALLS.labels(tool, "ok").inc()


class ArgumentErrors(Middleware):
    """Arguments a tool's signature refuses get ``[ORCH_8003]`` naming each field, like every other tool error.

    Why: FastMCP checks the arguments before the tool body (and ``tool_errors``) runs, and answers with pydantic's
    own text ("1 validation error for call[...]" and a link), which no client can tell from a server bug."""

    async def on_call_tool(
        self, context: MiddlewareContext[mt.CallToolRequestParams], call_next: CallNext[mt.CallToolRequestParams, Any]
    ) -> ToolResult:
        try:
            result: ToolResult = await call_next(context)
        except ArgumentsInvalid as exc:
            tool = context.message.name
            MCP_TOOL_CALLS.labels(tool, "error").inc()
            raise tool_error(InputInvalidError(f"Invalid arguments for {tool}: {_fields(exc)}")) from exc
        return result


def _fields(exc: ArgumentsInvalid) -> str:
    """``field: why`` for each refused argument (pydantic's summary when the cause is not pydantic's)."""
    cause = exc.__cause__
    if not isinstance(cause, ValidationError):
        return str(exc)
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in cause.errors(include_url=False)[:20]
    )
