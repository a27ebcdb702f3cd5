"""Run state on fakeredis: the status machine, step moves, completion, triggers, retention."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import keys
from orchestrator.errors import InvalidStateTransitionError, WorkflowNotFoundError
from orchestrator.models.common import Access, FailurePolicy, Priority, RunStatus, StepStatus
from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.runs import RunStore, cap_result


def planned(step_id: str, deps: list[str] | None = None) -> PlannedStep:
    return PlannedStep(
        step_id=step_id,
        name=step_id,
        action="cmdb.ping",
        agent_id="cmdb-agent",
        domain="cmdb",
        target_domain="cmdb",
        access=Access.READ,
        idempotent=True,
        parameters={},
        depends_on=deps or [],
        on_failure=FailurePolicy.STOP,
        max_retries=0,
        timeout_seconds=5,
    )


def make_plan(*ids: str) -> WorkflowPlan:
    steps = [planned(s, [ids[i - 1]] if i else []) for i, s in enumerate(ids)]
    return WorkflowPlan(template_id=None, name="t", priority=Priority.HIGH, steps=steps)


@pytest.fixture
def store(fake_redis: Any) -> RunStore:
    return RunStore(fake_redis, ttl_seconds=600, result_max_bytes=200)


def started(store: RunStore, *ids: str, run_id: str = "run-1") -> str:
    store.create(run_id, make_plan(*ids), created_by="t")
    store.transition(run_id, RunStatus.RUNNING)
    return run_id


def test_create_records_a_pending_run_with_pending_steps(store: RunStore) -> None:
    store.create("run-1", make_plan("a", "b"), created_by="ann")
    view = store.get("run-1")
    assert view.status == RunStatus.PENDING and view.created_by == "ann" and view.priority == Priority.HIGH
    assert [(s.step_id, s.status) for s in view.steps] == [("a", StepStatus.PENDING), ("b", StepStatus.PENDING)]
    assert view.steps_remaining == ["a", "b"] and view.steps_completed == []
    assert store.active_count() == 1


def test_illegal_transition_raises_3002_naming_the_status(store: RunStore) -> None:
    run_id = started(store, "a")
    store.transition(run_id, RunStatus.CANCELLED)
    with pytest.raises(InvalidStateTransitionError, match="cancelled; it cannot become completed"):
        store.transition(run_id, RunStatus.COMPLETED)


def test_unknown_run_is_3001(store: RunStore) -> None:
    with pytest.raises(WorkflowNotFoundError):
        store.get("nope")
    with pytest.raises(WorkflowNotFoundError):
        store.transition("nope", RunStatus.RUNNING)


def test_steps_complete_the_run_and_expire_it(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b")
    begin = store.begin_step(run_id, "a")
    assert begin.verdict == "run" and begin.attempt == 1 and begin.spec is not None
    first = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, result={"n": 1})
    assert first.run_ended is None
    store.begin_step(run_id, "b")
    last = store.finish_step(run_id, "b", StepStatus.COMPLETED, effect="done", started=0.0, result={"n": 2})
    assert last.run_ended == RunStatus.COMPLETED
    assert last.summary == {"steps_completed": ["a", "b"], "steps_remaining": [], "steps_failed": []}
    view = store.get(run_id)
    assert view.status == RunStatus.COMPLETED and view.finished_at and view.steps_completed == ["a", "b"]
    assert store.results(run_id) == {"a": {"n": 1}, "b": {"n": 2}}
    assert 0 < fake_redis.ttl(keys.run_key(run_id)) <= 600
    assert store.active_count() == 0


def test_a_redelivered_finished_step_is_not_run_or_counted_twice(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0)
    assert store.begin_step(run_id, "a").verdict == "done"
    assert store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0).duplicate
    assert store.get(run_id).status == RunStatus.RUNNING


def test_stop_effect_fails_the_run_with_its_error(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    error = ErrorInfo(code="ORCH_3003", message="Step 'a' failed: boom")
    result = store.finish_step(run_id, "a", StepStatus.FAILED, effect="stop", started=0.0, error=error, run_error=error)
    assert result.run_ended == RunStatus.FAILED
    view = store.get(run_id)
    assert view.error is not None and view.error.code == "ORCH_3003"
    assert store.begin_step(run_id, "b").verdict == "failed"


def test_cancel_flag_stops_steps_before_they_start(store: RunStore) -> None:
    run_id = started(store, "a")
    store.set_cancel_flag(run_id)
    assert store.begin_step(run_id, "a").verdict == "cancelled"
    assert store.get(run_id).steps[0].status == StepStatus.CANCELLED


def test_triggers_fire_once_when_all_their_steps_are_done(store: RunStore) -> None:
    class Trig:
        waits_for = ("a", "b")
        canvas = {"task": "orch.run_step", "kwargs": {"step_id": "c"}}

    store.create(
        "run-t",
        make_plan("a", "b", "c"),
        created_by="t",
        triggers={"t1": Trig()},
        trigger_index={"a": ("t1",), "b": ("t1",)},
    )
    store.transition("run-t", RunStatus.RUNNING)
    store.begin_step("run-t", "a")
    assert store.finish_step("run-t", "a", StepStatus.COMPLETED, effect="done", started=0.0).fired == []
    store.begin_step("run-t", "b")
    fired = store.finish_step("run-t", "b", StepStatus.COMPLETED, effect="done", started=0.0).fired
    assert fired == [Trig.canvas]


def test_resume_resets_what_did_not_complete(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0)
    store.begin_step(run_id, "b")
    err = ErrorInfo(code="ORCH_3003", message="x")
    store.finish_step(run_id, "b", StepStatus.FAILED, effect="stop", started=0.0, error=err, run_error=err)
    assert store.prepare_resume(run_id, 1, {}, {}) == ["b"]
    store.transition(run_id, RunStatus.RUNNING)
    view = store.get(run_id)
    assert view.status == RunStatus.RUNNING and view.error is None and view.generation == 1
    assert [s.status for s in view.steps] == [StepStatus.COMPLETED, StepStatus.PENDING]


def test_results_are_size_capped() -> None:
    assert cap_result({"a": 1}, 100) == {"a": 1}
    capped = cap_result({"blob": "x" * 1000}, 100)
    assert capped["truncated"] is True and capped["size_bytes"] > 1000


def test_list_filters_pages_and_prunes_expired(store: RunStore, fake_redis: Any) -> None:
    for i in range(5):
        store.create(f"run-{i}", make_plan("a"), created_by="t")
    store.transition("run-0", RunStatus.CANCELLED)
    fake_redis.delete(keys.run_key("run-4"))
    views, total = store.list(status="pending", limit=2)
    assert total == 3 and len(views) == 2
    assert fake_redis.zscore(keys.RUNS_INDEX, "run-4") is None


def test_begin_and_finish_emit_their_events_in_the_same_round_trip(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.events import EventBus, encode
    from orchestrator.models.events import Event

    run_id = started(store, "a")
    bus = EventBus(fake_redis)
    begin = store.begin_step(run_id, "a", encode(Event(event_type="workflow.step.started", payload={"step_id": "a"})))
    assert begin.attempt == 1
    store.finish_step(
        run_id,
        "a",
        StepStatus.COMPLETED,
        effect="done",
        started=None,
        event=encode(Event(event_type="workflow.step.completed", payload={"step_id": "a"})),
        also=lambda pipe: pipe.set("marker", "1"),
    )
    history = bus.history()
    assert [e.event_type for e in history] == ["workflow.step.started", "workflow.step.completed"]
    assert history[0].payload == {"step_id": "a", "attempt": 1}
    assert fake_redis.get("marker") == "1"
    # a duplicate finish emits nothing more
    store.finish_step(
        run_id,
        "a",
        StepStatus.COMPLETED,
        effect="done",
        started=None,
        event=encode(Event(event_type="workflow.step.completed", payload={"step_id": "a"})),
    )
    assert len(bus.history()) == 2


def test_the_run_index_forgets_runs_older_than_retention(store: RunStore, fake_redis: Any) -> None:
    fake_redis.zadd(keys.RUNS_INDEX, {"ancient": 1.0})
    store.create("run-new", make_plan("a"), created_by="t")
    assert fake_redis.zscore(keys.RUNS_INDEX, "ancient") is None
    assert fake_redis.zscore(keys.RUNS_INDEX, "run-new") is not None
