"""``execute_action``: the one entry the step task calls to run an action on this agent.

Why one entry: the step task should not care whether an action runs on the bundled sample instance or on
a real agent's MCP server. An agent with ``ORCH_AGENTS__<AGENT>__MCP_URL`` set is bridged: the action
becomes the sibling tool call ``toolcalls`` maps it to, sent over ``bridge.py``; an action with no sibling
tool is refused there rather than run on sample data (``cmdb.ping``, which touches nothing, still runs).
Otherwise the built-in handler runs against this process's ``SampleInstance``. Parameters are checked
against the catalog here, so handlers and tools see bound, typed values.

A bridged call that fails for a reason on the server's side (unreachable, timing out, failing) is
recorded in Redis for a minute, so the agent's health shows it degraded while its calls fail.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from typing import Any

from orchestrator import keys
from orchestrator.catalog import ActionSpec, get_action, validate_params
from orchestrator.errors import OrchestratorError, TaskInvalidError, TaskTimeoutError
from orchestrator.runtime.redis_client import get_redis
from orchestrator.settings import AgentSettings, get_settings
from workers.context import ActionContext
from workers.handlers import HANDLERS
from workers.sample import SampleInstance
from workers.toolcalls import tool_call

log = logging.getLogger(__name__)
MCP_FAILURE_TTL_SECONDS = 60


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
    if agent.mcp_url and not spec.local:
        return _bridged(spec, agent, ctx)
    handler = HANDLERS.get(spec.name)
    if handler is None:
        raise TaskInvalidError(
            f"Action '{spec.name}' has no built-in handler and agent '{spec.agent_id}' has no MCP_URL to bridge to.",
            {"action": spec.name},
        )
    bound = replace(ctx, action=spec.name, params=_bind(spec, ctx.params, allow_extra=False))
    if bound.params.get("tool_args"):
        raise TaskInvalidError(
            f"'tool_args' go to a bridged agent's MCP tool, but agent '{spec.agent_id}' runs built-in handlers "
            f"(set ORCH_AGENTS__{spec.agent_id.upper().replace('-', '_')}__MCP_URL to bridge it); leave them out.",
            {"action": spec.name, "parameter": "tool_args"},
        )
    result = handler(bound, get_instance())
    result.setdefault("action", spec.name)
    return result


def _bridged(spec: ActionSpec, agent: AgentSettings, ctx: ActionContext) -> dict[str, Any]:
    """Run ``spec`` as its sibling tool call on the agent's MCP server (checked before anything is sent)."""
    assert agent.mcp_url is not None
    from workers import bridge  # only bridged agents pay for the MCP client (fastmcp is a heavy import)

    call = tool_call(spec, _bind(spec, ctx.params, allow_extra=False), ctx.earlier_results)
    try:
        result = bridge.call_tool(
            agent.mcp_url,
            call.tool,
            call.arguments,
            token=agent.mcp_token,
            timeout=ctx.timeout_seconds,
            idempotency_key=ctx.idempotency_key,
        )
    except OrchestratorError as exc:
        if exc.retryable or isinstance(exc, TaskTimeoutError):
            _note_mcp_health(spec.agent_id, {"tool": call.tool, "error": exc.message, "code": exc.code})
        raise
    _note_mcp_health(spec.agent_id, None)
    return result


def _note_mcp_health(agent_id: str, failure: dict[str, Any] | None) -> None:
    """Record (or clear) a bridged agent's failing calls for its health view; never fails the step."""
    url = get_settings().redis.url
    if not url:  # no Redis configured for this process (a bare library call): nothing to report to
        return
    try:
        client = get_redis(url)
        if failure is None:
            client.delete(keys.agent_mcp_failure_key(agent_id))
        else:
            record = json.dumps({**failure, "ts": time.time()})
            client.set(keys.agent_mcp_failure_key(agent_id), record, ex=MCP_FAILURE_TTL_SECONDS)
    except Exception:  # health bookkeeping must never turn a result into a failure
        log.warning("could not record the MCP call health of %s", agent_id, exc_info=True)
