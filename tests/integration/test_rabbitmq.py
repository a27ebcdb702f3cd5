"""RabbitMQ as the broker (ORCH_BROKER_URL=amqp://...), Redis still the state store and event bus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from orchestrator import keys
from orchestrator.models.common import RunStatus
from orchestrator.procs import WorkerPool
from orchestrator.service import Orchestrator
from orchestrator.settings import AGENT_IDS, Settings
from tests.integration.conftest import TEST_REDIS_URL, _redis_or_skip
from tests.integration.helpers import OPERATOR

pytestmark = pytest.mark.integration

AMQP_URL = os.environ.get("ORCH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/12"


def _fresh_queues() -> None:
    """Drop our queues so they are declared again with priority support (x-max-priority)."""
    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            channel = connection.channel()
            for name in [keys.agent_queue(a) for a in AGENT_IDS] + [keys.ORCHESTRATOR_QUEUE]:
                channel.queue_delete(name)
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no RabbitMQ at {AMQP_URL}: {exc}")
        pytest.skip(f"no RabbitMQ at {AMQP_URL}")


@pytest.fixture(scope="module")
def rabbit_orch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrator]:
    _fresh_queues()
    _redis_or_skip(REDIS_URL).flushdb()
    data_dir: Path = tmp_path_factory.mktemp("rabbit")
    pool = WorkerPool(REDIS_URL)
    pool.start(
        AGENT_IDS,
        extra_env={"ORCH_BROKER_URL": AMQP_URL, "ORCH_DATA_DIR": str(data_dir)},
        quiet=os.environ.get("ORCH_TEST_WORKER_LOGS") != "1",
    )
    try:
        pool.wait_ready(timeout=90)
        yield Orchestrator(Settings(redis={"url": REDIS_URL}, broker_url=AMQP_URL, data_dir=data_dir))
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
