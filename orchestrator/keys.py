"""Every Redis key, channel, stream, queue and Celery task name, in one place.

Why one module: a key typo between a writer and a reader is a silent bug; here both import the same name.
"""

from __future__ import annotations

from urllib.parse import quote

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
RUNS_INDEXED_MARK = f"{PREFIX}:runs:indexed:v1"  # set once the indexes cover runs created before they existed
ACTIVE_RUNS = f"{PREFIX}:runs:active"  # set of run ids pending/running
# Listing indexes, each a sorted set run_id -> created epoch, kept by the scripts that change a run's status
# (run hash fields ``ct`` = created epoch, ``tpl`` = template id), so a page is one range read.
RUNS_BY_STATUS_PREFIX = f"{PREFIX}:runs:st:"  # + status
RUNS_BY_TEMPLATE_PREFIX = f"{PREFIX}:runs:t:"  # + template id
RUNS_BY_TEMPLATE_STATUS_PREFIX = f"{PREFIX}:runs:ts:"  # + status + ":" + template id


def runs_by_status(status: str) -> str:
    return f"{RUNS_BY_STATUS_PREFIX}{status}"


def runs_by_template(template_id: str) -> str:
    return f"{RUNS_BY_TEMPLATE_PREFIX}{template_id}"


def runs_by_template_status(template_id: str, status: str) -> str:
    return f"{RUNS_BY_TEMPLATE_STATUS_PREFIX}{status}:{template_id}"


def run_key(run_id: str) -> str:
    """Hash: ``meta`` (JSON), ``plan`` (JSON), ``step:<id>`` (JSON per step), counters."""
    return f"{PREFIX}:run:{run_id}"


def run_cancel_key(run_id: str) -> str:
    return f"{PREFIX}:run:{run_id}:cancel"


def run_triggers_key(run_id: str) -> str:
    """Hash of gated joins: ``wait:<trigger>`` counters and ``sig:<trigger>`` canvases."""
    return f"{PREFIX}:run:{run_id}:triggers"


def run_outbox_key(run_id: str) -> str:
    """Hash of effects a state change implies and that must still take effect (``start:<gen>`` canvases,
    ``fire:<gen>:<trigger>`` released joins); entries are removed only once they took effect."""
    return f"{PREFIX}:run:{run_id}:outbox"


def run_staged_triggers_key(run_id: str) -> str:
    """New triggers written before a resume or repair swaps them in atomically."""
    return f"{PREFIX}:run:{run_id}:triggers:next"


OUTBOX_INDEX = f"{PREFIX}:outbox"  # sorted set run_id -> epoch of its oldest unconfirmed outbox entry
RUNS_TOUCHED = f"{PREFIX}:runs:touched"  # sorted set of running runs -> epoch of their last progress
LEASES = f"{PREFIX}:leases"  # sorted set "<run>|<step>|<generation>" -> hard deadline (epoch) of a running step
RETRIES = f"{PREFIX}:retries"  # sorted set "<run>|<step>|<generation>" -> when the next attempt is due (epoch)
REPAIRS = f"{PREFIX}:repairs"  # sorted set run_id -> epoch: runs whose messages were lost, to re-dispatch


def parse_lease_member(member: str) -> tuple[str, str, int]:
    """``<run>|<step>|<generation>``, as the run scripts write lease members."""
    run_id, step_id, generation = member.split("|")
    return run_id, step_id, int(generation)


# Worker instances (one per worker process tree) and their leases
WORKERS = f"{PREFIX}:workers"  # sorted set instance -> epoch of its last heartbeat


def worker_key(instance: str) -> str:
    """JSON record of one worker instance (agent, host, pid, role, MCP probe); expires with its heartbeat."""
    return f"{PREFIX}:worker:{instance}"


def worker_leases_key(instance: str) -> str:
    """Set of ``<run>|<step>|<generation>`` leases a worker instance holds."""
    return f"{PREFIX}:worker:{instance}:leases"


def supervisor_key(agent_id: str) -> str:
    """What ``itom-orch up`` knows of an agent's worker process (restarting, backoff), for health."""
    return f"{PREFIX}:supervisor:{agent_id}"


# Outcome metrics (``outcome_metrics``): one hash of counters, written where each state change happens
METRICS = f"{PREFIX}:metrics"

# The reconciler
RECONCILER_LEADER = f"{PREFIX}:reconciler:leader"  # lock: the token of the one process that reconciles
RECONCILER_BEAT = f"{PREFIX}:reconciler:beat"  # JSON of the leader's last pass (health)


def idempotency_key(run_id: str, step_id: str) -> str:
    return f"{PREFIX}:idem:{run_id}:{step_id}"


def start_idempotency_key(actor: str, key: str) -> str:
    """Maps one caller's idempotency key for ``start_workflow`` to its run id (each caller has its own keys)."""
    return f"{PREFIX}:startkey:{quote(actor, safe='')}:{key}"


def fault_key(step_id: str) -> str:
    """Fault-injection plan for steps with this id (honoured only when ORCH_FAULT_INJECTION is on)."""
    return f"{PREFIX}:fault:{step_id}"


def fault_mark_key(step_id: str, mark: str) -> str:
    """What a fault-injected step leaves for its test: ``pid`` (the process running it), ``deliveries`` (a count),
    ``after`` (its effect happened), ``crashed`` (it crashed once), and ``release`` (set by the test to let a held
    step go on)."""
    return f"{fault_key(step_id)}:{mark}"


# Event bus
EVENTS_CHANNEL = f"{PREFIX}:events"
EVENTS_STREAM = f"{PREFIX}:events:stream"
# Per correlation id (run id), a list of its events' stream ids, appended by every publisher in the same
# pipeline or script as the event itself: a run's events are read without scanning the whole stream.
EVENT_INDEX_PREFIX = f"{PREFIX}:evidx:"
EVENT_INDEX_MAX = 10_000  # entries kept per run (its newest)
EVENT_INDEX_TTL_SECONDS = 8 * 24 * 3600  # refreshed on every event; outlives the run's own retention


def event_index_key(correlation_id: str) -> str:
    return f"{EVENT_INDEX_PREFIX}{correlation_id}"


# Audit log
AUDIT_STREAM = f"{PREFIX}:audit"
AUDIT_HEAD = f"{PREFIX}:audit:head"


def audit_scratch_stream(token: str) -> str:
    """A throw-away audit stream the bench appends to (never the real log)."""
    return f"{AUDIT_STREAM}:bench:{token}"


# Dead letters and agent messaging
DLQ_STREAM = f"{PREFIX}:dlq"
DLQ_REDRIVEN = f"{DLQ_STREAM}:redriven"  # hash: dead-letter id -> who re-drove it, when, and the outcome


def inbox_key(agent_id: str) -> str:
    """Messages delivered to an agent (a stream the agent reads)."""
    return f"{PREFIX}:inbox:{agent_id}"


# Chat
def clarification_key(token: str) -> str:
    return f"{PREFIX}:clarify:{token}"


# Agents
def agent_health_key(agent_id: str) -> str:
    return f"{PREFIX}:agent:{agent_id}:health"


def agent_health_history_key(agent_id: str) -> str:
    """The agent's recent health checks, newest first (a capped list)."""
    return f"{agent_health_key(agent_id)}:history"


# Browser sessions of the workflow view (/ui): a bearer token exchanged for an HttpOnly cookie
def ui_session_key(digest: str) -> str:
    """Hash of a session id -> the session (token digest, CSRF token); the raw id lives only in the cookie."""
    return f"{PREFIX}:uisession:{digest}"


# Schedules (Celery beat through celery-redbeat): entries live under this prefix, one hash per schedule
SCHEDULE_PREFIX = f"{PREFIX}:schedule:"
SCHEDULE_INDEX = f"{SCHEDULE_PREFIX}:schedule"  # redbeat's sorted set of entries by next due time


def schedule_key(schedule_id: str) -> str:
    """One schedule's redbeat entry (a hash)."""
    return f"{SCHEDULE_PREFIX}{schedule_id}"


TASK_SCHEDULED_START = "orch.scheduled_start"  # names beat entries; the beat starts runs itself, nothing consumes it


# Agents bridged to an MCP server, and the chat log the worklog reads (issue 13)
def agent_mcp_failure_key(agent_id: str) -> str:
    """The last failed MCP call of a bridged agent, while calls keep failing (expires on its own)."""
    return f"{PREFIX}:agent:{agent_id}:mcp:failure"


CHAT_LOG = f"{PREFIX}:chat:log"
