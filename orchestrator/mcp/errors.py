"""Error translation for MCP tools: every failure is a ``ToolError`` whose text starts with ``[ORCH_xxxx]``.

Why a context manager rather than a decorator: FastMCP builds each tool's input schema from the function's
own signature and annotations; wrapping functions would hide them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastmcp.exceptions import ToolError
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
