"""The real step task (``workers.tasks.run_step``) in a Celery worker, without servers.

Celery's own test worker (``celery.contrib.testing.worker.start_worker``) consumes the agent's queue on the
in-memory broker and runs the task in-process; run state, events and the audit log live on fakeredis through
the same stores the service uses. No eager mode: each step travels through the broker as a message.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from celery.exceptions import DuplicateTaskNameWarning

from orchestrator import keys
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.settings import reset_settings
from orchestrator.state import events as ev
from tests.unit.test_http_fixtures import build_service
from workers import runtime as worker_runtime
from workers.actions import reset_instance
from workers.runtime import WorkerRuntime

OTTO = Principal("otto", "operator")
WAIT_SECONDS = 30.0


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Orchestrator]:
    """A service on fakeredis whose workers may inject faults and retry at once (the sample data in tmp_path)."""
    monkeypatch.setenv("ORCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ORCH_AGENTS__CMDB_AGENT__MCP_URL", raising=False)
    reset_settings()
    reset_instance()
    yield build_service(
        data_dir=tmp_path, fault_injection=True, retry_backoff_base_seconds=0.01, retry_backoff_max_seconds=0.05
    )
    reset_instance()
    reset_settings()


@contextmanager
def worker(service: Orchestrator, *, serves: str, role: str | None = None) -> Iterator[None]:
    """The agent worker for ``serves``: the real step task, with the role from its own configuration."""
    with warnings.catch_warnings():
        # Importing the task module registers the step task on every live Celery app; an app another test built
        # with a stand-in task of the same name keeps its own (Celery warns about that app, not this one).
        warnings.simplefilter("ignore", DuplicateTaskNameWarning)
        import workers.tasks  # noqa: F401

    assert service.app.tasks[keys.TASK_RUN_STEP].run.__module__ == "workers.tasks"  # the real task, nothing else
    rt = WorkerRuntime(
        settings=service.settings,
        redis=service.redis,
        runs=service.runs,
        events=service.events,
        audit=service.audit,
        gate=service.gate,
        agent_id=role or serves,
        role=role or serves,
    )
    saved = worker_runtime._runtime
    worker_runtime._runtime = (os.getpid(), rt)
    try:
        with start_worker(
            service.app, pool="solo", perform_ping_check=False, queues=[keys.agent_queue(serves)], loglevel="WARNING"
        ):
            yield
    finally:
        worker_runtime._runtime = saved


def event_types(service: Orchestrator, run_id: str) -> list[str]:
    return [e.event_type for e in service.events.history(run_id=run_id, limit=1000)]


def test_a_step_runs_through_the_broker_and_leaves_the_real_events(service: Orchestrator) -> None:
    with worker(service, serves="cmdb-agent"):
        started = service.execute_task(OTTO, action="cmdb.ping", agent_id="cmdb-agent")
        view = service.wait_for_run(started.run_id, timeout=WAIT_SECONDS)
    assert view.status == RunStatus.COMPLETED, view.error
    step = view.steps[0]
    assert step.status == StepStatus.COMPLETED and step.attempts == 1 and isinstance(step.result, dict)
    assert event_types(service, view.run_id) == [
        ev.WORKFLOW_STARTED,
        ev.STEP_STARTED,
        ev.STEP_COMPLETED,
        ev.WORKFLOW_COMPLETED,
    ]
    closing = service.events.history(run_id=view.run_id, types=[ev.WORKFLOW_COMPLETED])[0]
    assert closing.payload["steps_completed"] == [step.step_id] and closing.payload["steps_remaining"] == []
    executed = [
        e for e in service.audit.query(target=f"{view.run_id}/{step.step_id}") if e.event_type == "task_executed"
    ]
    assert [e.actor for e in executed] == ["worker:cmdb-agent"]


def test_a_retryable_failure_is_retried_and_then_completes(service: Orchestrator) -> None:
    definition = {
        "name": "flaky",
        "steps": [{"step_id": "flaky", "action": "cmdb.ping", "on_failure": "retry", "max_retries": 2}],
    }
    service.redis.set(keys.fault_key("flaky"), json.dumps({"fail_times": 1, "retryable": True}))
    with worker(service, serves="cmdb-agent"):
        started = service.start_workflow(OTTO, definition=definition)
        view = service.wait_for_run(started.run_id, timeout=WAIT_SECONDS)
    assert view.status == RunStatus.COMPLETED, view.error
    assert view.steps[0].attempts == 2
    retrying = service.events.history(run_id=view.run_id, types=[ev.STEP_RETRYING])
    assert [e.payload["error"]["code"] for e in retrying] == ["ORCH_7006"]


def test_a_failure_under_stop_fails_the_run_naming_the_step(service: Orchestrator) -> None:
    definition = {"name": "broken", "steps": [{"step_id": "broken", "action": "cmdb.ping"}]}
    service.redis.set(keys.fault_key("broken"), json.dumps({"fail_times": 1, "retryable": False}))
    with worker(service, serves="cmdb-agent"):
        started = service.start_workflow(OTTO, definition=definition)
        view = service.wait_for_run(started.run_id, timeout=WAIT_SECONDS)
    assert view.status == RunStatus.FAILED
    assert view.error is not None and view.error.code == "ORCH_3003" and "broken" in view.error.message
    assert view.steps[0].error is not None and view.steps[0].error.code == "ORCH_7001"
    failed = service.events.history(run_id=view.run_id, types=[ev.WORKFLOW_FAILED])[0]
    assert failed.payload["steps_completed"] == [] and failed.payload["steps_failed"] == ["broken"]


def test_a_worker_refuses_a_step_of_another_agent(service: Orchestrator) -> None:
    """The worker checks with its own role: a cmdb-agent worker handed a discovery step never runs it."""
    with worker(service, serves="discovery-agent", role="cmdb-agent"):
        started = service.execute_task(OTTO, action="discovery.status", agent_id="discovery-agent")
        view = service.wait_for_run(started.run_id, timeout=WAIT_SECONDS)
    assert view.status == RunStatus.FAILED
    assert view.steps[0].status == StepStatus.DENIED
    assert view.steps[0].error is not None and view.steps[0].error.code == "ORCH_6001"
    assert view.steps[0].error.details["role"] == "cmdb-agent" and "discovery.status" in view.steps[0].error.message
