"""Who this worker is: one identity per worker instance (the Celery main process and its pool), and leases.

Why an instance identity: leases and heartbeats must be per worker instance, so two workers of one agent
never overwrite each other's liveness, and a dead instance's leases are found without scanning every run.
The identity is fixed in the main process at import (``<agent>@<host>:<main pid>``), before the pool forks,
so every pool process carries it; ``itom-orch up`` can compute it from the process it started.
"""

from __future__ import annotations

import os
import socket
import threading

from orchestrator.state.runs import Lease

_MAIN_PID = os.getpid()
_HOST = socket.gethostname()
_running: set[str] = set()  # lease tokens being executed in this process (thread pools run several)
_lock = threading.Lock()


def instance_id(agent_id: str | None, pid: int | None = None, host: str | None = None) -> str:
    """``<agent>@<host>:<pid>`` of a worker's main process."""
    return f"{agent_id or 'unassigned'}@{host or _HOST}:{pid or _MAIN_PID}"


def lease_for(agent_id: str | None, delivery_tag: str | None) -> Lease:
    """The lease a delivery executing in this process takes."""
    return Lease(instance_id(agent_id), os.getpid(), str(delivery_tag or ""))


def holder_alive(owner: Lease) -> bool:
    """Is the holder of a lease of *this* instance still executing it (same host, so the pid is checkable)?"""
    if owner.pid == os.getpid():
        with _lock:
            return owner.token in _running
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Executing:
    """Marks a lease token as being executed by this process (context manager)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __enter__(self) -> Executing:
        with _lock:
            _running.add(self.token)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _running.discard(self.token)
