"""A control command to stop one step's process: how a cancel reaches a step that is already running.

Why not Celery's ``revoke(terminate=True)``: a revoked request leaves the worker's active list at the first
signal, so a second, harder signal can no longer find it. This command names the worker instance and the pool
process from the step's lease; only that instance acts, and only on one of its own pool processes (never on
itself). ``SIGUSR1`` interrupts the step inside Python (it records itself cancelled); ``SIGKILL`` ends a step
that does not listen.
"""

from __future__ import annotations

import logging
import os
import signal as signals
from typing import Any

from celery.worker.control import control_command

from orchestrator.settings import get_settings
from workers.instance import instance_id

log = logging.getLogger(__name__)

ALLOWED = {"SIGUSR1": signals.SIGUSR1, "SIGKILL": signals.SIGKILL}


def _pool_pids(state: Any) -> set[int]:
    try:
        return {int(p) for p in state.consumer.pool.info.get("processes", [])}
    except Exception:
        return set()


@control_command(
    args=[("instance", str), ("pid", int), ("signal", str)],
    signature="<instance> <pid> <SIGUSR1|SIGKILL>",
)
def orch_signal_step(state: Any, instance: str, pid: int, signal: str) -> dict[str, Any]:
    """Signal the pool process ``pid`` of worker ``instance`` (ignored by every other worker)."""
    settings = get_settings()
    if instance != instance_id(settings.worker_agent or settings.worker_role):
        return {"ok": "not this instance"}
    number = ALLOWED.get(signal)
    if number is None or pid == os.getpid() or pid not in _pool_pids(state):
        return {"error": f"refused: pid {pid} is not one of this worker's pool processes, or {signal} not allowed"}
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        return {"ok": "already gone"}
    log.warning("sent %s to pool process %d (cancel)", signal, pid)
    return {"ok": f"{signal} sent to {pid}"}
