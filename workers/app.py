"""The Celery app the agent workers run: ``celery -A workers.app worker -Q agent.<agent-id>``.

``itom-orch worker --agent X`` starts exactly this with ``ORCH_WORKER_AGENT=X`` so the worker's role comes
from its own configuration.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import setup_logging, worker_process_shutdown, worker_ready, worker_shutdown

from orchestrator.runtime.celery_app import create_celery
from orchestrator.runtime.procs import die_with_parent
from orchestrator.settings import get_settings

log = logging.getLogger(__name__)
die_with_parent(get_settings().worker_parent_pid)  # started by a WorkerPool (demo, up, bench): stop when it dies
app = create_celery(get_settings(), name="itom-orchestrator-worker")
app.conf.worker_consumer = "workers.consumer:GuardedConsumer"  # a malformed message never stops the worker

import workers.control  # noqa: E402  - registers the stop-a-step control command
import workers.messages  # noqa: E402  - registers message delivery
import workers.tasks  # noqa: E402,F401  - registers the step task


@setup_logging.connect
def _json_logging(loglevel: Any = None, **_: Any) -> None:
    """Connecting this signal stops Celery from installing its own handlers: workers log JSON like the API.

    The worker's ``-l`` level wins over ``ORCH_LOG_LEVEL`` (a quiet worker does not format a line per task).
    """
    import logging

    from orchestrator.runtime.logging_config import configure_logging

    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
    configure_logging(str(level or get_settings().log_level))


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    from workers import heartbeat

    heartbeat.start(getattr(sender, "hostname", None))


@worker_shutdown.connect
def _clear_heartbeat(**_: Any) -> None:
    from workers import heartbeat

    try:
        heartbeat.clear()
    except Exception:  # Redis may already be gone at shutdown
        log.debug("heartbeat not cleared at shutdown", exc_info=True)
    _shutdown_bridge()


@worker_process_shutdown.connect
def _close_bridge(**_: Any) -> None:
    """Prefork children do not run atexit: close their MCP sessions here."""
    _shutdown_bridge()


def _shutdown_bridge() -> None:
    """Close MCP sessions if this process opened any (the bridge is imported only by bridged agents)."""
    import sys

    bridge = sys.modules.get("workers.bridge")
    if bridge is not None:
        bridge.shutdown()
