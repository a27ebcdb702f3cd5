"""Worker heartbeat: every few seconds the worker writes its agent's health to Redis.

Why from the worker: only the process that consumes the queue (and holds the MCP bridge) can say the agent
is really there. The key expires on its own, so a dead worker turns an agent offline without anyone noticing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any

from orchestrator import keys
from orchestrator.models.common import iso_now
from orchestrator.redis_client import get_redis
from orchestrator.settings import get_settings

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 10.0
TTL_SECONDS = 35


def beat(hostname: str) -> dict[str, Any]:
    settings = get_settings()
    agent_id = settings.worker_agent or settings.worker_role
    if not agent_id:
        return {}
    record: dict[str, Any] = {
        "agent_id": agent_id,
        "hostname": hostname,
        "pid": os.getpid(),
        "role": settings.worker_role or agent_id,
        "queue": keys.agent_queue(agent_id),
        "at": iso_now(),
        "ts": time.time(),
        "mcp": None,
    }
    agent = settings.agent(agent_id)
    if agent.mcp_url:
        from workers.bridge import probe

        record["mcp"] = probe(agent.mcp_url, agent.mcp_token, timeout=3.0)
    get_redis(settings.redis_url).set(keys.agent_health_key(agent_id), json.dumps(record, default=str), ex=TTL_SECONDS)
    return record


def start(hostname: str | None = None) -> threading.Thread:
    """Start the heartbeat thread (daemon: it dies with the worker)."""
    name = hostname or socket.gethostname()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                beat(name)
            except Exception:  # a missed beat only makes the agent look offline for a moment
                log.warning("heartbeat failed", exc_info=True)
            stop.wait(INTERVAL_SECONDS)

    thread = threading.Thread(target=loop, name="itom-heartbeat", daemon=True)
    thread.start()
    return thread


def clear() -> None:
    """Remove the heartbeat at shutdown so the agent shows offline at once."""
    settings = get_settings()
    agent_id = settings.worker_agent or settings.worker_role
    if agent_id:
        get_redis(settings.redis_url).delete(keys.agent_health_key(agent_id))
