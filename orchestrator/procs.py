"""Start and stop agent worker processes (one Celery worker per agent, each with its own role).

Why subprocesses: each agent's worker must have its role from its own configuration, and a Ctrl-C must
leave nothing behind. Each worker gets its own session so the whole pool can be stopped as a group.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator import keys
from orchestrator.errors import AgentUnavailableError
from orchestrator.redis_client import get_redis


def worker_command(
    agent_id: str, *, concurrency: int = 1, loglevel: str = "warning", pool: str = "prefork"
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "worker",
        "-Q",
        keys.agent_queue(agent_id),
        "-n",
        f"{agent_id}@%h",
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-O",
        "fair",
        "--without-gossip",
        "--without-mingle",
        "-l",
        loglevel,
    ]


def worker_env(agent_id: str, redis_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ORCH_REDIS__URL": redis_url, "ORCH_WORKER_AGENT": agent_id, "ORCH_WORKER_ROLE": agent_id})
    env.update(extra or {})
    return env


@dataclass
class WorkerPool:
    """A set of running agent workers."""

    redis_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(
        self,
        agent_ids: Iterable[str],
        *,
        concurrency: int = 1,
        loglevel: str = "warning",
        extra_env: dict[str, str] | None = None,
        quiet: bool = True,
    ) -> None:
        client = get_redis(self.redis_url)
        for agent_id in agent_ids:
            client.delete(keys.agent_health_key(agent_id))
            self.processes[agent_id] = subprocess.Popen(
                worker_command(agent_id, concurrency=concurrency, loglevel=loglevel),
                env=worker_env(agent_id, self.redis_url, extra_env),
                stdout=subprocess.DEVNULL if quiet else None,
                stderr=subprocess.DEVNULL if quiet else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one async-signal-safe libc call
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll the workers' heartbeats (written when each worker is ready) until all are there."""
        client = get_redis(self.redis_url)
        deadline = time.monotonic() + timeout
        missing = list(self.processes)
        while time.monotonic() < deadline:
            missing = [a for a in self.processes if not _fresh(client.get(keys.agent_health_key(a)))]
            if not missing:
                return
            dead = [a for a, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise AgentUnavailableError(f"Worker(s) exited at start: {', '.join(dead)}", {"agents": dead})
            time.sleep(0.1)  # bounded poll of worker start-up
        raise AgentUnavailableError(f"Workers not ready after {timeout:g}s: {', '.join(missing)}", {"agents": missing})

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown: TERM to each worker's main process (it stops its own pool), then KILL what is left."""
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGKILL)  # pool children that outlived their parent
        self.processes.clear()

    def kill(self, agent_id: str) -> None:
        """SIGKILL a worker and its pool (fault tests)."""
        proc = self.processes.pop(agent_id)
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)


PR_SET_PDEATHSIG = 1
try:  # resolved now, so the child between fork and exec only makes one libc call (no imports, no locks)
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: stop() still stops the pool on every normal exit
    _LIBC = None


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM (warm shutdown) if the process that started it dies without stopping it."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _fresh(raw: str | None) -> bool:
    return bool(raw) and time.time() - float(json.loads(raw or "{}").get("ts", 0)) < 30


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
