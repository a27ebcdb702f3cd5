"""The bench's private world: its own embedded Redis and one cmdb-agent worker, torn down on any exit.

Why private: figures must never mix with other traffic, and a bench must leave nothing running behind it
(Ctrl-C and errors included). Redis snapshots are switched off for the run so a background save (a fork of
the server) cannot land inside one variant's timing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from orchestrator.bench.config import BenchConfig
from orchestrator.bench.orchestrated import AGENT_ID
from orchestrator.runtime.embedded import RedisHandle, start_embedded
from orchestrator.runtime.procs import WorkerPool
from orchestrator.runtime.redis_client import RedisClient, get_redis
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.settings import RedisSettings, Settings

WORKER_CONCURRENCY = 2
# The worker inherits the caller's environment; these keep it on the bench Redis with no test switches.
WORKER_ENV = {"ORCH_BROKER_URL": "", "ORCH_FAULT_INJECTION": "false"}
BENCH_PRINCIPAL = Principal("bench", "operator")


@dataclass
class BenchEnv:
    """What every measurement needs."""

    config: BenchConfig
    redis_url: str
    client: RedisClient
    orch: Orchestrator
    principal: Principal
    pool: WorkerPool | None = None

    @property
    def app(self) -> Celery:
        return self.orch.app

    def worker_pid(self) -> int | None:
        """The bench worker's main process (its pool processes are its children)."""
        processes = self.pool.processes if self.pool is not None else {}
        process = processes.get(AGENT_ID)
        return process.pid if process is not None else None


def release_result_subscriptions(app: Celery) -> None:
    """Close the client's result pub/sub connection between measurements (outside any timing).

    Every ``apply_async`` subscribes this client to its task's result channel. Nobody reads that connection
    during a bench, so replies would pile up in Redis' output buffer for it until Redis drops the client
    mid-measurement; closing it discards them. The next ``apply_async`` reconnects.
    """
    consumer = getattr(app.backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
        consumer.subscribed_to.clear()


@contextmanager
def bench_environment(config: BenchConfig) -> Iterator[BenchEnv]:
    data_dir = Path(tempfile.mkdtemp(prefix="itom-orch-bench-"))
    handle: RedisHandle | None = None
    pool: WorkerPool | None = None
    orch: Orchestrator | None = None
    client: RedisClient | None = None
    try:
        handle = start_embedded(data_dir)
        client = get_redis(handle.url)
        client.config_set("save", "")
        settings = Settings(redis=RedisSettings(url=handle.url), broker_url=None, data_dir=data_dir)
        pool = WorkerPool(handle.url)
        pool.start([AGENT_ID], concurrency=WORKER_CONCURRENCY, extra_env={**WORKER_ENV, "ORCH_DATA_DIR": str(data_dir)})
        pool.wait_ready(timeout=90)
        orch = Orchestrator(settings, redis=client)
        yield BenchEnv(config, handle.url, client, orch, BENCH_PRINCIPAL, pool)
    finally:
        if orch is not None:
            with suppress(Exception):  # best effort: Redis may be gone already (Ctrl-C)
                orch.dispatcher.outbox.pending.close()  # confirm the last starts while Redis is up
            with suppress(Exception):
                release_result_subscriptions(orch.app)
            orch.app.close()
        if pool is not None:
            pool.stop()
        if client is not None:
            client.close()
        if handle is not None:
            handle.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
