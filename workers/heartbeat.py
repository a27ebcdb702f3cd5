"""Worker heartbeat: every few seconds each worker instance says it is alive, for itself only.

Why per instance: a running step's lease belongs to the worker instance that runs it, so the instance's beat
is what keeps its leases valid; two workers of one agent never overwrite each other's beat. The beat is a
score in ``orch:workers`` (read by the reconciler and the begin script) plus a record with the details health
shows (expiring on its own, so a dead worker turns its agent offline without anyone noticing). When bridged,
the MCP server is probed on a slower cadence so a slow probe never delays a beat.
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
from orchestrator.runtime.redis_client import get_redis
from orchestrator.settings import get_settings
from workers.instance import instance_id

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 10.0


def _agent() -> str | None:
    settings = get_settings()
    return settings.worker_agent or settings.worker_role


def beat(hostname: str, mcp: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write this instance's beat and record (one round trip)."""
    settings = get_settings()
    agent_id = _agent()
    if not agent_id:
        return {}
    instance = instance_id(agent_id)
    now = time.time()
    record: dict[str, Any] = {
        "agent_id": agent_id,
        "instance": instance,
        "hostname": hostname,
        "pid": os.getpid(),
        "role": settings.worker_role or agent_id,
        "queue": keys.agent_queue(agent_id),
        "at": iso_now(),
        "ts": now,
        "mcp": mcp,
    }
    ttl = max(1, int(settings.reliability.lease_ttl_seconds * 3))
    pipe = get_redis(settings.redis_url).pipeline(transaction=False)
    pipe.zadd(keys.WORKERS, {instance: now})
    pipe.set(keys.worker_key(instance), json.dumps(record, default=str), ex=ttl)
    pipe.execute()
    return record


def _probe() -> dict[str, Any] | None:
    agent_id = _agent()
    if not agent_id:
        return None
    agent = get_settings().agent(agent_id)
    if not agent.mcp_url:
        return None
    from workers.bridge import probe

    return probe(agent.mcp_url, agent.mcp_token, timeout=3.0)


def start(hostname: str | None = None) -> threading.Thread:
    """Start the heartbeat thread (daemon: it dies with the worker) and its slower MCP probe."""
    name = hostname or socket.gethostname()
    interval = get_settings().reliability.heartbeat_interval_seconds
    state: dict[str, Any] = {"mcp": _probe_safely()}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                beat(name, state["mcp"])
            except Exception:  # a missed beat only makes the instance look older for a moment
                log.warning("heartbeat failed", exc_info=True)
            stop.wait(interval)

    def probe_loop() -> None:
        while not stop.wait(PROBE_INTERVAL_SECONDS):
            state["mcp"] = _probe_safely()

    threading.Thread(target=probe_loop, name="itom-mcp-probe", daemon=True).start()
    thread = threading.Thread(target=loop, name="itom-heartbeat", daemon=True)
    thread.start()
    return thread


def _probe_safely() -> dict[str, Any] | None:
    try:
        return _probe()
    except Exception:
        log.warning("MCP probe failed", exc_info=True)
        return {"reachable": False, "error": "probe failed"}


def clear() -> None:
    """At shutdown: mark this instance gone at once, so its agent shows offline and any lease it still holds
    is repaired on the reconciler's next pass instead of after the lease expires."""
    settings = get_settings()
    agent_id = _agent()
    if agent_id:
        instance = instance_id(agent_id)
        pipe = get_redis(settings.redis_url).pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {instance: 0})
        pipe.delete(keys.worker_key(instance))
        pipe.execute()
