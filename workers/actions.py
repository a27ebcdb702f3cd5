"""``execute_action``: the one entry the step task calls to run an action on this agent.

Why one entry: the step task should not care whether an action runs on the bundled sample instance or on
a real agent's MCP server. An agent with ``ORCH_AGENTS__<AGENT>__MCP_URL`` set is bridged (see
``bridge.py``); otherwise the built-in handler runs against this process's ``SampleInstance``.
Parameters are checked against the catalog here, so handlers and tools see bound, typed values.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from typing import Any

from orchestrator.catalog import ActionSpec, get_action, validate_params
from orchestrator.errors import TaskInvalidError
from orchestrator.settings import get_settings
from workers import bridge
from workers.context import ActionContext
from workers.handlers import HANDLERS
from workers.sample import SampleInstance


class _Holder:
    """The process's one ``SampleInstance`` (module state in one object instead of ``global`` rebinding)."""

    def __init__(self) -> None:
        self.instance: SampleInstance | None = None
        self.lock = threading.Lock()

    def after_fork(self) -> None:
        """A lock held by another thread at fork time would stay held in the child (the instance is fork-safe)."""
        self.lock = threading.Lock()


_holder = _Holder()
os.register_at_fork(after_in_child=_holder.after_fork)


def get_instance() -> SampleInstance:
    """This process's sample instance, created on first use (opening it costs nothing until it is read)."""
    with _holder.lock:
        if _holder.instance is None:
            _holder.instance = SampleInstance()
        return _holder.instance


def reset_instance(instance: SampleInstance | None = None) -> None:
    """Replace (or forget) the process's instance: tests, and after settings change ``data_dir``."""
    with _holder.lock:
        previous, _holder.instance = _holder.instance, instance
    if previous is not None and previous is not instance:
        previous.close()


def _bind(spec: ActionSpec, params: dict[str, Any], *, allow_extra: bool) -> dict[str, Any]:
    try:
        return validate_params(spec.params, params or {}, where=f"action '{spec.name}'", allow_extra=allow_extra)
    except ValueError as exc:
        raise TaskInvalidError(str(exc), {"action": spec.name}) from None


def execute_action(ctx: ActionContext) -> dict[str, Any]:
    """Run ``ctx.action`` (catalog or legacy name) for ``ctx.agent_id``; returns a JSON-serialisable dict."""
    spec = get_action(ctx.action)
    if spec.agent_id != ctx.agent_id:
        raise TaskInvalidError(
            f"Action '{spec.name}' belongs to agent '{spec.agent_id}', not '{ctx.agent_id}'.",
            {"action": spec.name, "agent_id": ctx.agent_id},
        )
    agent = get_settings().agent(spec.agent_id)
    if agent.mcp_url and spec.mcp_tool:
        _bind(spec, ctx.params, allow_extra=True)  # type errors fail here, before any network call
        return bridge.call_tool(
            agent.mcp_url,
            spec.mcp_tool,
            dict(ctx.params or {}),
            token=agent.mcp_token,
            timeout=ctx.timeout_seconds,
            idempotency_key=ctx.idempotency_key,
        )
    handler = HANDLERS.get(spec.name)
    if handler is None:
        raise TaskInvalidError(
            f"Action '{spec.name}' has no built-in handler and agent '{spec.agent_id}' has no MCP_URL to bridge to.",
            {"action": spec.name},
        )
    bound = replace(ctx, action=spec.name, params=_bind(spec, ctx.params, allow_extra=False))
    result = handler(bound, get_instance())
    result.setdefault("action", spec.name)
    return result
