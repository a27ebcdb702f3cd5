"""Integration fixtures: the real local Redis (own db) and real agent workers (one process per agent).

Skips without a Redis on a laptop; under CI (``CI=true``) a missing Redis is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orchestrator.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings

TEST_REDIS_URL = os.environ.get("ORCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

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
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no Redis at {url}: {exc}")
        pytest.skip(f"no Redis at {url}")
    return client


@pytest.fixture(scope="session")
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def integration_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integration-data")


@pytest.fixture(scope="session")
def worker_pool(redis_url: str, integration_data_dir: Path) -> Iterator[WorkerPool]:
    """All six agent workers on the test db, started once per session."""
    client = _redis_or_skip(redis_url)
    client.flushdb()
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
