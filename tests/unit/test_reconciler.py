"""The reconciler's repairs, one kind at a time, on fakeredis with an in-memory broker.

Each test builds the state a crash leaves behind (without any worker), runs one pass, and checks the repair
and its audit entry. The end-to-end versions, with real processes killed, are in
``tests/integration/test_self_healing.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator import keys
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.models.workflow import WorkflowDefinition
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.state.runs import Lease
from tests.unit.test_http_fixtures import build_service

OPERATOR = Principal("otto", "operator")


@pytest.fixture
def service() -> Orchestrator:
    return build_service(
        reliability={"stall_seconds": 1, "outbox_grace_seconds": 0, "deadline_grace_seconds": 0, "max_repairs": 2}
    )


def chain(service: Orchestrator, *names: str) -> str:
    steps = [
        {"step_id": n, "action": "cmdb.ping", "depends_on": [names[i - 1]] if i else []} for i, n in enumerate(names)
    ]
    view = service.start_workflow(OPERATOR, definition=WorkflowDefinition.model_validate({"name": "t", "steps": steps}))
    return view.run_id


def audited(service: Orchestrator, event_type: str) -> list[Any]:
    return [e for e in service.audit.query(event_type=event_type, limit=50) if e.actor == "reconciler"]


def age(service: Orchestrator, run_id: str, seconds: float) -> None:
    """Pretend the run made its last progress ``seconds`` ago."""
    service.redis.zadd(keys.RUNS_TOUCHED, {run_id: time.time() - seconds})


def test_a_dead_workers_step_is_handed_back_with_its_deadline_kept(service: Orchestrator) -> None:
    run_id = chain(service, "a")
    service.redis.zadd(keys.WORKERS, {"w@h:1": time.time() - 60})  # stopped beating a minute ago
    lease = Lease("w@h:1", 7, "")
    assert service.runs.begin_step(run_id, "a", lease=lease, deadline=time.time() + 300).verdict == "run"
    counts = service.reconciler.tick()
    assert counts.get("lost_workers") == 1
    raw = service.redis.hgetall(keys.run_key(run_id))
    assert raw["st:a"] == "running" and "ow:a" not in raw  # no owner: the next delivery takes it over
    assert service.redis.zscore(keys.LEASES, f"{run_id}|a|0") is not None  # its deadline still holds
    assert service.redis.zscore(keys.WORKERS, "w@h:1") is None
    assert audited(service, "step_redelivered") and audited(service, "worker_lost")
    # not the Redis transport: that broker redelivers a lost consumer's messages by itself, nothing to re-dispatch
    assert service.redis.zscore(keys.REPAIRS, run_id) is None


def test_a_step_past_its_hard_deadline_fails_with_orch_7002(service: Orchestrator) -> None:
    run_id = chain(service, "a", "b")
    service.runs.begin_step(run_id, "a", deadline=time.time() - 1)
    counts = service.reconciler.tick()
    assert counts.get("deadlines") == 1
    view = service.get_run(run_id)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_7002"
    assert view.steps[0].status == StepStatus.FAILED
    closing = service.events.history(run_id=run_id, types=["workflow.failed"])
    assert closing and closing[0].source == "reconciler" and closing[0].payload["steps_remaining"] == ["b"]
    assert audited(service, "step_timed_out") and service.audit.verify().ok


def test_an_unconfirmed_outbox_entry_is_applied(service: Orchestrator) -> None:
    service.dispatcher.drain = lambda run_id, only=None: None  # type: ignore[method-assign] - crash after record
    service.dispatcher.outbox.apply_start = lambda *a, **kw: None  # type: ignore[method-assign] - (a start's seam)
    run_id = chain(service, "a")
    assert service.runs.outbox(run_id)
    counts = service.reconciler.tick()
    assert counts.get("outbox") == 1 and not service.runs.outbox(run_id)
    assert audited(service, "outbox_drained")[0].target == run_id


@pytest.fixture
def no_timer(service: Orchestrator) -> Iterator[None]:
    """Start confirmations wait for the next write or an explicit flush (the timer is stopped afterwards)."""
    service.dispatcher.outbox.pending.DELAY_SECONDS = 3600  # type: ignore[misc]
    yield
    service.dispatcher.outbox.pending.close()


@pytest.mark.usefixtures("no_timer")
def test_a_start_is_confirmed_with_the_next_creation(service: Orchestrator) -> None:
    first = chain(service, "a")
    assert "start:0" in service.runs.outbox(first)  # published, its confirmation pending
    second = chain(service, "a")
    assert not service.runs.outbox(first)  # rode on the second run's creation transaction
    assert service.redis.zscore(keys.OUTBOX_INDEX, first) is None
    assert service.runs.outbox(second)
    counts = service.reconciler.tick()  # grace 0: it confirms this process's pending entries before looking
    assert not counts.get("outbox") and not service.runs.outbox(second) and not audited(service, "outbox_drained")


def test_a_lone_start_is_confirmed_by_the_timer(service: Orchestrator) -> None:
    run_id = chain(service, "a")
    deadline = time.monotonic() + 10
    while service.runs.outbox(run_id) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the timer thread's effect, with a deadline
    assert not service.runs.outbox(run_id) and service.redis.zscore(keys.OUTBOX_INDEX, run_id) is None


@pytest.mark.usefixtures("no_timer")
def test_confirmations_a_failed_creation_took_are_kept(service: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:
    first = chain(service, "a")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis went away")

    monkeypatch.setattr(service.runs, "create", broken)
    with pytest.raises(ConnectionError):
        chain(service, "a")
    monkeypatch.undo()
    assert service.runs.outbox(first)  # not confirmed by the failed write, and not lost either
    service.dispatcher.outbox.pending.flush()
    assert not service.runs.outbox(first)


def test_a_run_whose_work_was_lost_is_redispatched_as_a_new_generation(service: Orchestrator) -> None:
    run_id = chain(service, "a", "b")
    service.runs.begin_step(run_id, "a")
    service.runs.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=None)
    age(service, run_id, 60)  # b is ready, but its message is nowhere
    service.reconciler.tick()  # diagnoses the stall and marks the run for repair
    service.reconciler.tick()  # repairs it
    view = service.get_run(run_id)
    assert view.generation == 1 and view.repairs == 1 and view.status == RunStatus.RUNNING
    assert [s.status for s in view.steps] == [StepStatus.COMPLETED, StepStatus.PENDING]
    repaired = service.events.history(run_id=run_id, types=["workflow.repaired"])
    assert repaired and repaired[0].payload["steps"] == ["b"]


def test_a_run_repaired_too_often_fails_saying_why(service: Orchestrator) -> None:
    run_id = chain(service, "a")
    service.redis.hset(keys.run_key(run_id), "regen", 2)
    service.reconciler.mark_repair(run_id)
    service.reconciler.tick()
    view = service.get_run(run_id)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_3007"
    assert "re-dispatched 2 times" in view.error.message


def test_a_run_that_can_no_longer_progress_fails_saying_why(service: Orchestrator) -> None:
    run_id = chain(service, "a", "b")
    service.redis.hset(keys.run_key(run_id), "st:a", "cancelled")  # a state no step moves on from
    age(service, run_id, 60)
    service.reconciler.tick()
    view = service.get_run(run_id)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_3007"
    assert "no step can run" in view.error.message and "b" in view.error.message
    assert service.audit.verify().ok


def test_only_the_leader_reconciles(service: Orchestrator) -> None:
    from orchestrator.runtime.leader import LeaderLock

    first = LeaderLock(service.redis, keys.RECONCILER_LEADER, ttl_seconds=5)
    second = LeaderLock(service.redis, keys.RECONCILER_LEADER, ttl_seconds=5)
    assert first.acquire() and not second.acquire()
    assert first.acquire()  # renewing keeps it
    first.release()
    assert second.acquire()
