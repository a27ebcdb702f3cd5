"""RabbitMQ as the broker (ORCH_BROKER_URL=amqp://...), Redis still the state store and event bus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from orchestrator.models.common import RunStatus
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings
from tests.integration.conftest import DB_RABBIT, _redis_or_skip, db_url
from tests.integration.helpers import OPERATOR
from tests.servers import need, private_vhost

pytestmark = pytest.mark.integration


def _reachable(amqp_url: str) -> None:
    try:
        with Connection(amqp_url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except OSError as exc:
        need(False, f"no RabbitMQ at {amqp_url}: {exc}")


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    """A vhost of the suite's own (created and deleted here): the default vhost is never touched."""
    with private_vhost() as url:
        _reachable(url)
        yield url


@pytest.fixture(scope="module")
def rabbit_orch(amqp_url: str, redis_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrator]:
    redis_url = db_url(redis_base, DB_RABBIT)
    _redis_or_skip(redis_url)
    data_dir: Path = tmp_path_factory.mktemp("rabbit")
    pool = WorkerPool(redis_url)
    pool.start(
        AGENT_IDS,
        extra_env={"ORCH_BROKER_URL": amqp_url, "ORCH_DATA_DIR": str(data_dir)},
        quiet=os.environ.get("ORCH_TEST_WORKER_LOGS") != "1",
    )
    try:
        pool.wait_ready(timeout=90)
        yield Orchestrator(Settings(redis={"url": redis_url}, broker_url=amqp_url, data_dir=data_dir))
    finally:
        pool.stop()


def test_incident_response_runs_over_rabbitmq(rabbit_orch: Orchestrator) -> None:
    started = rabbit_orch.start_workflow(
        OPERATOR, template_id="incident-response", parameters={"ci_id": "web-prod-01"}, priority="high"
    )
    view = rabbit_orch.wait_for_run(started.run_id, timeout=60)
    assert view.status == RunStatus.COMPLETED, view.error
    assert [s.agent_id for s in view.steps] == ["cmdb-agent", "csa-agent", "csa-agent"]
    completed = rabbit_orch.event_history(run_id=view.run_id, types=["workflow.completed"])
    assert len(completed) == 1
