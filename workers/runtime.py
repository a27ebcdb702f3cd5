"""Per-process worker state: settings, Redis, run store, event bus, audit log, policy gate, own role.

Why lazy and per pid: Celery's prefork children must open their own Redis connections after the fork.
The role comes from the worker's configuration (``ORCH_WORKER_ROLE`` / ``--agent``), never from a message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from orchestrator.dispatch.outbox import Outbox
from orchestrator.runtime import redis_client
from orchestrator.runtime.redis_client import RedisClient, get_redis
from orchestrator.security.policy import PolicyGate, load_table
from orchestrator.settings import Settings, get_settings
from orchestrator.state.audit import AuditLog
from orchestrator.state.events import EventBus
from orchestrator.state.runs import RunStore


@dataclass
class WorkerRuntime:
    settings: Settings
    redis: RedisClient
    runs: RunStore
    events: EventBus
    audit: AuditLog
    gate: PolicyGate
    agent_id: str | None
    role: str | None

    @property
    def actor(self) -> str:
        return f"worker:{self.agent_id or 'unassigned'}"

    _outbox: Outbox | None = field(default=None, init=False, repr=False)

    @property
    def outbox(self) -> Outbox:
        """The outbox on the app running this worker (Celery's current app: the tasks' own app in a worker), kept
        while that app is current, so what it works out once (``shares_state_redis``) is not worked out per step."""
        from celery import current_app

        app = current_app._get_current_object()
        if self._outbox is None or self._outbox.app is not app:
            self._outbox = Outbox(self.runs, app)
        return self._outbox

    def outbox_drain(self, run_id: str, only: list[str] | None = None) -> None:
        """Apply outbox entries now; a broker error leaves them to the reconciler instead of failing the step."""
        try:
            self.outbox.drain(run_id, only)
        except Exception:
            import logging

            logging.getLogger(__name__).warning("run %s: outbox left to the reconciler", run_id, exc_info=True)


_runtime: tuple[int, WorkerRuntime] | None = None


def build_runtime(settings: Settings) -> WorkerRuntime:
    redis_client.configure(
        socket_timeout=settings.redis.socket_timeout,
        connect_timeout=settings.redis.connect_timeout,
        retries=settings.redis.retries,
    )
    client = get_redis(settings.redis_url)
    retention = settings.retention
    agent_id = settings.worker_agent or settings.worker_role
    return WorkerRuntime(
        settings=settings,
        redis=client,
        runs=RunStore(
            client,
            ttl_seconds=retention.run_ttl_seconds,
            result_max_bytes=retention.result_max_bytes,
            events_max=retention.events_max,
            audit_max=retention.audit_max,
            dlq_max=retention.dlq_max,
        ),
        events=EventBus(client, max_len=retention.events_max, url=settings.redis_url),
        audit=AuditLog(client, max_entries=retention.audit_max),
        gate=PolicyGate(load_table(settings)),
        agent_id=agent_id,
        role=settings.worker_role or agent_id,
    )


def runtime() -> WorkerRuntime:
    """The runtime for this process (rebuilt after fork)."""
    global _runtime  # noqa: PLW0603 - one per process by design
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), build_runtime(get_settings()))
    return _runtime[1]
