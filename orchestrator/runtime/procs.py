"""Start, supervise and stop agent worker processes (one Celery worker per agent, each with its own role).

Why subprocesses: each agent's worker must have its role from its own configuration, and a Ctrl-C must
leave nothing behind. Each worker gets its own session so the whole pool can be stopped as a group.
Why supervision: a worker process can die (killed, out of memory, or kombu exiting on a Redis restart while
a task is in flight); ``itom-orch up`` restarts it with backoff, marks its instance gone at once (so the
reconciler repairs its leases on its next pass) and reports the agent ``degraded`` while it restarts. (The beat
``itom-orch up`` runs is a supervised thread of its own process: ``schedules.embedded``.)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator import keys
from orchestrator.errors import AgentUnavailableError
from orchestrator.runtime.redis_client import get_redis

log = logging.getLogger(__name__)

BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a process that ran this long starts its backoff over

SUPERVISE_POLL_SECONDS = 0.2


def restart_delay(failures: int) -> float:
    """Seconds to wait before restart number ``failures`` since the last stable run: 0.5 s, doubling to 30 s."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2.0 ** (failures - 1))


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


def instance_of(agent_id: str, pid: int) -> str:
    """The instance id a worker started here gives itself (see ``workers.instance``)."""
    return f"{agent_id}@{socket.gethostname()}:{pid}"


@dataclass
class _Worker:
    agent_id: str
    command: list[str]
    env: dict[str, str]
    quiet: bool
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    recovering: bool = False  # restarted, and health still says so until its new instance beats

    def spawn(self) -> None:
        """Start the worker; it stops itself when this process dies (``die_with_parent``, called by the worker).

        No ``preexec_fn``: with one, ``subprocess`` forks with Python's at-fork hooks running in this process, and
        a Ctrl-C that lands inside one is reported as "Exception ignored" and lost (the demo then ran to its end).
        """
        self.process = subprocess.Popen(
            self.command,
            env={**self.env, PARENT_PID_ENV: str(os.getpid())},
            stdout=subprocess.DEVNULL if self.quiet else None,
            stderr=subprocess.DEVNULL if self.quiet else None,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        self.restart_at = None


@dataclass
class WorkerPool:
    """A set of running agent workers; ``supervise=True`` restarts the ones that die."""

    redis_url: str
    supervise: bool = False
    workers: dict[str, _Worker] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _monitor: threading.Thread | None = None

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        """The running worker process of each agent (the bench reads their CPU time)."""
        return {a: w.process for a, w in self.workers.items() if w.process is not None}

    def start(
        self,
        agent_ids: Iterable[str],
        *,
        concurrency: int = 1,
        loglevel: str = "warning",
        extra_env: dict[str, str] | None = None,
        quiet: bool = True,
        pool: str = "prefork",
    ) -> None:
        for agent_id in agent_ids:
            worker = _Worker(
                agent_id,
                worker_command(agent_id, concurrency=concurrency, loglevel=loglevel, pool=pool),
                worker_env(agent_id, self.redis_url, extra_env),
                quiet,
            )
            worker.spawn()
            self.workers[agent_id] = worker
        self._start_monitor()

    def _start_monitor(self) -> None:
        if self.supervise and self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="itom-supervisor", daemon=True)
            self._monitor.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until every worker's own instance has beaten (written once the worker is ready)."""
        client = get_redis(self.redis_url)
        deadline = time.monotonic() + timeout
        missing = list(self.workers)
        while time.monotonic() < deadline:
            missing = [a for a, w in self.workers.items() if not self._beating(client, a, w)]
            if not missing:
                return
            dead = [a for a, w in self.workers.items() if w.process is not None and w.process.poll() is not None]
            if dead and not self.supervise:
                raise AgentUnavailableError(f"Worker(s) exited at start: {', '.join(dead)}", {"agents": dead})
            time.sleep(0.1)  # bounded poll of worker start-up
        raise AgentUnavailableError(f"Workers not ready after {timeout:g}s: {', '.join(missing)}", {"agents": missing})

    @staticmethod
    def _beating(client: object, agent_id: str, worker: _Worker) -> bool:
        if worker.process is None or worker.process.poll() is not None:
            return False
        score = client.zscore(keys.WORKERS, instance_of(agent_id, worker.process.pid))  # type: ignore[attr-defined]
        return score is not None and float(score) > time.time() - 30

    def _watch(self) -> None:
        """Restart dead workers with exponential backoff until the pool stops."""
        while not self._stopping.wait(SUPERVISE_POLL_SECONDS):
            for worker in list(self.workers.values()):
                try:
                    self._check(worker)
                except Exception:  # Redis may be restarting too: keep supervising
                    log.warning("supervising %s failed", worker.agent_id, exc_info=True)

    def _check(self, worker: _Worker) -> None:
        process = worker.process
        now = time.monotonic()
        if worker.restart_at is not None:
            if now >= worker.restart_at and not self._stopping.is_set():
                worker.spawn()
                log.warning("restarted the %s worker (restart %d)", worker.agent_id, worker.restarts)
            return
        if process is None or process.poll() is None:
            if worker.recovering and self._beating(get_redis(self.redis_url), worker.agent_id, worker):
                get_redis(self.redis_url).delete(keys.supervisor_key(worker.agent_id))
                worker.recovering = False
            if worker.restarts and now - worker.started_at > STABLE_AFTER_SECONDS:
                worker.restarts = 0
            return
        code = process.returncode
        worker.restarts += 1
        worker.recovering = True
        delay = restart_delay(worker.restarts)
        worker.restart_at = now + delay
        _signal_group(process, signal.SIGKILL)  # pool children that outlived their parent
        log.warning("the %s worker exited (code %s); restarting in %.1fs", worker.agent_id, code, delay)
        client = get_redis(self.redis_url)
        pipe = client.pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {instance_of(worker.agent_id, process.pid): 0})  # gone now: repair its leases
        state = {"state": "restarting", "restarts": worker.restarts, "exit_code": code, "next_in_seconds": delay}
        pipe.set(keys.supervisor_key(worker.agent_id), json.dumps(state), ex=int(delay + 60))
        pipe.execute()

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown: TERM to each worker's main process (it stops its own pool), then KILL what is left."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None
        procs = [w.process for w in self.workers.values() if w.process is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)  # pool children that outlived their parent
        with contextlib.suppress(Exception):
            client = get_redis(self.redis_url)
            for agent_id in self.workers:
                client.delete(keys.supervisor_key(agent_id))
        self.workers.clear()

    def kill(self, agent_id: str) -> int:
        """SIGKILL a worker and its pool (fault tests); supervised pools restart it. Returns its pid."""
        worker = self.workers[agent_id]
        assert worker.process is not None
        _signal_group(worker.process, signal.SIGKILL)
        worker.process.wait(timeout=10)
        if not self.supervise:
            del self.workers[agent_id]
        return worker.process.pid

    def pid(self, agent_id: str) -> int | None:
        worker = self.workers.get(agent_id)
        return worker.process.pid if worker is not None and worker.process is not None else None


PR_SET_PDEATHSIG = 1
PARENT_PID_ENV = "ORCH_WORKER_PARENT_PID"
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: stop() still stops the pool on every normal exit
    _LIBC = None


def die_with_parent(parent_pid: int | None) -> None:
    """Linux: this worker gets SIGTERM (a warm shutdown) when ``parent_pid``, the process that started it, dies
    without stopping it; if that process is gone already, the worker does not start.

    Called by the worker itself at start (``workers.app``) with ``ORCH_WORKER_PARENT_PID``, which ``WorkerPool``
    sets (a worker started on its own has none). Asked for first, then checked: a parent that dies after the
    ``prctl`` sends the signal, one that died before it is no longer this process' parent.
    """
    os.environ.pop(PARENT_PID_ENV, None)  # read already: a process the worker starts must not take it as its own
    if parent_pid is None or _LIBC is None:
        return
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        raise SystemExit(f"the process that started this worker ({parent_pid}) is gone: not starting")


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
