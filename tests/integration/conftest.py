"""Integration fixtures: a redis-server of the suite's own and real agent workers (one process per agent).

The suite never uses the machine's Redis (see ``tests/servers.py``): databases of its private server are
handed out per purpose (workers, demo, bridge, RabbitMQ, canvas tests) so tests never see each other's keys.
Skips without a redis-server binary on a laptop; under CI (``CI=true``) that is a failure.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings
from tests.servers import check_empty, external_redis_url, need, private_redis

# Databases of the private server, one per purpose.
DB_WORKERS, DB_DEMO, DB_BRIDGE, DB_RABBIT, DB_CANVAS, DB_SIBLINGS, DB_FRONTDOOR, DB_NO_WORKERS = 0, 1, 2, 3, 4, 5, 6, 7
ALL_DBS = (DB_WORKERS, DB_DEMO, DB_BRIDGE, DB_RABBIT, DB_CANVAS, DB_SIBLINGS, DB_FRONTDOOR, DB_NO_WORKERS)

SERIAL_AGENT = "itom-documentator"

WORKER_ENV = {
    "ORCH_FAULT_INJECTION": "true",
    "ORCH_RETRY_BACKOFF_BASE_SECONDS": "0.05",
    "ORCH_RETRY_BACKOFF_MAX_SECONDS": "0.2",
}


def _redis_or_skip(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        need(False, f"no Redis at {url}: {exc}")
    return client


@pytest.fixture(autouse=True)
def _collect_garbage_between_tests() -> Iterator[None]:
    """Collect what threads and event loops of a test left behind now, not during a later import.

    On Python 3.11 a finalizer that runs while pytest compiles a module it imports lazily can abort that
    compile ("AST constructor recursion depth mismatch"); collecting between tests keeps finalizers out of it.
    """
    yield
    gc.collect()


@pytest.fixture(scope="session")
def redis_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://host:port`` of the suite's Redis: a private redis-server, or ORCH_TEST_REDIS_URL (must be empty)."""
    external = external_redis_url()
    if external is not None:
        base = external.rstrip("/")
        for db in ALL_DBS:
            check_empty(db_url(base, db))
        yield base
        return
    with private_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url().rsplit("/", 1)[0]


def db_url(base: str, db: int) -> str:
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def redis_url(redis_base: str) -> str:
    return db_url(redis_base, DB_WORKERS)


@pytest.fixture(scope="session")
def integration_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integration-data")


@pytest.fixture(scope="session")
def worker_pool(redis_url: str, integration_data_dir: Path) -> Iterator[WorkerPool]:
    """All six agent workers on the test db, started once per session."""
    _redis_or_skip(redis_url)
    pool = WorkerPool(redis_url)
    env = {**WORKER_ENV, "ORCH_DATA_DIR": str(integration_data_dir)}
    quiet = os.environ.get("ORCH_TEST_WORKER_LOGS") != "1"
    # Two pool processes per agent (parallel branches on one agent), except the documentator: one process, so
    # message-ordering tests see the broker's delivery order.
    pool.start([a for a in AGENT_IDS if a != SERIAL_AGENT], concurrency=2, extra_env=env, quiet=quiet)
    pool.start([SERIAL_AGENT], concurrency=1, extra_env=env, quiet=quiet)
    try:
        pool.wait_ready(timeout=90)
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def settings(redis_url: str, integration_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ORCH_REDIS__URL", redis_url)
    monkeypatch.setenv("ORCH_DATA_DIR", str(integration_data_dir))
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.fixture
def orch(worker_pool: WorkerPool, settings: Settings) -> Orchestrator:
    return Orchestrator(settings)


@pytest.fixture
def rclient(redis_url: str) -> Any:
    return _redis_or_skip(redis_url)
