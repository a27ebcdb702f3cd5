"""Shared helpers for the front-door unit tests (HTTP and MCP): a service on fakeredis with an in-memory
Celery broker nobody consumes, bearer tokens per role, and a fake worker that finishes runs in-process.

Holds no tests itself; the other ``test_http_*`` / ``test_mcp_*`` modules import from here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest

from orchestrator import keys
from orchestrator.models.common import StepStatus
from orchestrator.runtime.celery_app import create_celery
from orchestrator.service import Orchestrator
from orchestrator.settings import Settings
from orchestrator.state import event_hub as event_hub_module
from orchestrator.state import step_records as records
from tests.unit.conftest import make_fake_server

ADMIN_TOKEN = "tok-admin"
OPERATOR_TOKEN = "tok-operator"
VIEWER_TOKEN = "tok-viewer"
TOKENS = {
    ADMIN_TOKEN: {"principal": "ada", "role": "admin"},
    OPERATOR_TOKEN: {"principal": "otto", "role": "operator"},
    VIEWER_TOKEN: {"principal": "vera", "role": "viewer"},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN, OPERATOR, VIEWER = bearer(ADMIN_TOKEN), bearer(OPERATOR_TOKEN), bearer(VIEWER_TOKEN)
ACTOR = "worker:fake"  # how the fake worker appears in the audit log


def build_service(server: fakeredis.FakeServer | None = None, **overrides: Any) -> Orchestrator:
    """An Orchestrator on fakeredis whose Celery app publishes to an in-memory broker.

    The broker is set in the settings, not on the app afterwards: ``create_celery`` picks kombu's transport from
    the broker URL it is given (our Redis transport for a ``redis://`` URL), and a ``memory://`` URL under the
    Redis transport would publish to the default Redis on 127.0.0.1:6379, the developer's own."""
    settings = Settings(auth={"tokens": TOKENS}, **{"broker_url": "memory://", **overrides})
    app = create_celery(settings)
    app.conf.result_backend = "cache+memory://"
    redis = fakeredis.FakeRedis(server=server or make_fake_server(), decode_responses=True)
    return Orchestrator(settings, redis=redis, app=app)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Orchestrator:
    """The service, with the event bus's async client (SSE) pointed at the same fake server."""
    fake_server = make_fake_server()

    def fake_from_url(url: str, **kwargs: Any) -> Any:
        return fakeredis.FakeAsyncRedis(server=fake_server, **kwargs)

    monkeypatch.setattr(event_hub_module.aioredis.Redis, "from_url", fake_from_url)
    return build_service(fake_server)


def complete_run(service: Orchestrator, run_id: str, result: Any = None) -> None:
    """Do what the agent worker's step task does when every action succeeds: begin each step in order and
    record its end with the same records (audit entry, ``workflow.step.completed``), so the run scripts emit
    exactly the events a real worker causes (``tests/unit/test_step_task.py`` runs the real task)."""
    view = service.get_run(run_id)
    for step in view.steps:
        begun = service.runs.begin_step(run_id, step.step_id)
        assert begun.verdict == "run" and begun.spec is not None, begun
        service.runs.finish_step(
            run_id,
            step.step_id,
            StepStatus.COMPLETED,
            effect="done",
            records=records.completed(ACTOR, run_id, begun.spec, begun.attempt, 1.0),
            actor=ACTOR,
            started=None,
            result=result if result is not None else {"ok": True},
        )


class FakeWorker:
    """A thread finishing each run that becomes active, once someone listens for events (so waits see them)."""

    def __init__(self, service: Orchestrator, result: Any = None) -> None:
        self.service = service
        self.result = result
        self.stopped = threading.Event()
        self.done: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _listening(self) -> bool:
        """A waiter is subscribed: on the event hub (async waits) or on pub/sub (the sync wait of chat)."""
        hub = self.service.__dict__.get("hub")
        if hub is not None and hub.subscribers > 0:
            return True
        counts = self.service.redis.pubsub_numsub(keys.EVENTS_CHANNEL)
        return bool(counts and int(counts[0][1]) > 0)

    def _loop(self) -> None:
        while not self.stopped.is_set():
            pending = sorted(set(self.service.redis.smembers(keys.ACTIVE_RUNS)) - set(self.done))
            if pending and self._listening():
                for run_id in pending:
                    complete_run(self.service, run_id, self.result)
                    self.done.append(run_id)
            self.stopped.wait(0.01)  # polling interval of the simulated worker, not a wait in a test


@contextmanager
def fake_worker(service: Orchestrator, result: Any = None) -> Iterator[FakeWorker]:
    worker = FakeWorker(service, result)
    worker.thread.start()
    try:
        yield worker
    finally:
        worker.stopped.set()
        worker.thread.join(timeout=5)
