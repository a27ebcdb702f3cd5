"""Error translation for MCP tools: every failure is a ``ToolError`` whose text starts with ``[ORCH_xxxx]``.

Why a context manager rather than a decorator: FastMCP builds each tool's input schema from the function's
own signature and annotations; wrapping functions would hide them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastmcp.exceptions import ToolError
from pydantic import ValidationError

from orchestrator.errors import InputInvalidError, OrchestratorError
from orchestrator.metrics.prometheus import MCP_TOOL_CALLS


def tool_error(error: OrchestratorError) -> ToolError:
    return ToolError(f"[{error.code}] {error.message}")


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Run a tool body: ORCH errors (and invalid input) become ``[ORCH_xxxx] message`` tool errors."""
    try:
        yield
    except OrchestratorError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(exc) from exc
    except ValidationError as exc:
        MCP_TOOL_CALLS.labels(tool, "error").inc()
        raise tool_error(InputInvalidError(f"Invalid input: {exc}")) from exc
    MCP_TOOL_CALLS.labels(tool, "ok").inc()
