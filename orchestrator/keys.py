"""Every Redis key, channel, stream, queue and Celery task name, in one place.

Why one module: a key typo between a writer and a reader is a silent bug; here both import the same name.
"""

from __future__ import annotations

PREFIX = "orch"

# Celery queues and task names
AGENT_QUEUE_PREFIX = "agent."
ORCHESTRATOR_QUEUE = "orchestrator"
TASK_RUN_STEP = "orch.run_step"
TASK_DELIVER_MESSAGE = "orch.deliver_message"
TASK_NOOP = "orch.bench_noop"


def agent_queue(agent_id: str) -> str:
    """The queue an agent's worker consumes."""
    return f"{AGENT_QUEUE_PREFIX}{agent_id}"


def step_task_id(run_id: str, step_id: str, generation: int) -> str:
    """Deterministic Celery task id: lets cancel revoke queued steps without a lookup table."""
    return f"{run_id}.{generation}.{step_id}"


# Run state
RUNS_INDEX = f"{PREFIX}:runs"  # sorted set run_id -> created_at
ACTIVE_RUNS = f"{PREFIX}:runs:active"  # set of run ids pending/running


def run_key(run_id: str) -> str:
    """Hash: ``meta`` (JSON), ``plan`` (JSON), ``step:<id>`` (JSON per step), counters."""
    return f"{PREFIX}:run:{run_id}"


def run_cancel_key(run_id: str) -> str:
    return f"{PREFIX}:run:{run_id}:cancel"


def run_triggers_key(run_id: str) -> str:
    """Hash of gated joins: ``wait:<trigger>`` counters and ``sig:<trigger>`` canvases."""
    return f"{PREFIX}:run:{run_id}:triggers"


def idempotency_key(run_id: str, step_id: str) -> str:
    return f"{PREFIX}:idem:{run_id}:{step_id}"


def start_idempotency_key(key: str) -> str:
    """Maps a caller's idempotency key for ``start_workflow`` to its run id."""
    return f"{PREFIX}:startkey:{key}"


def fault_key(step_id: str) -> str:
    """Fault-injection plan for steps with this id (honoured only when ORCH_FAULT_INJECTION is on)."""
    return f"{PREFIX}:fault:{step_id}"


# Event bus
EVENTS_CHANNEL = f"{PREFIX}:events"
EVENTS_STREAM = f"{PREFIX}:events:stream"

# Audit log
AUDIT_STREAM = f"{PREFIX}:audit"
AUDIT_HEAD = f"{PREFIX}:audit:head"

# Dead letters and agent messaging
DLQ_STREAM = f"{PREFIX}:dlq"


def message_key(message_id: str) -> str:
    return f"{PREFIX}:msg:{message_id}"


def inbox_key(agent_id: str) -> str:
    """Messages delivered to an agent (a stream the agent reads)."""
    return f"{PREFIX}:inbox:{agent_id}"


# Chat
def clarification_key(token: str) -> str:
    return f"{PREFIX}:clarify:{token}"


def session_key(session_id: str) -> str:
    return f"{PREFIX}:session:{session_id}"


ROUTING_HISTORY = f"{PREFIX}:routing:history"
EXECUTION_HISTORY = f"{PREFIX}:exec:history"


# Agents
def agent_health_key(agent_id: str) -> str:
    return f"{PREFIX}:agent:{agent_id}:health"


# Sample instance (the built-in handlers' ServiceNow-like data)
SAMPLE_PREFIX = f"{PREFIX}:sample"


# Agents bridged to an MCP server, and the chat log the worklog reads (issue 13)
def agent_mcp_failure_key(agent_id: str) -> str:
    """The last failed MCP call of a bridged agent, while calls keep failing (expires on its own)."""
    return f"{PREFIX}:agent:{agent_id}:mcp:failure"


CHAT_LOG = f"{PREFIX}:chat:log"
