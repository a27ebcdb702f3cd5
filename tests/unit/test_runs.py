"""Run state on fakeredis: the status machine, step moves, completion, triggers, retention."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import keys
from orchestrator.errors import InvalidStateTransitionError, WorkflowNotFoundError
from orchestrator.models.common import Priority, RunStatus, StepStatus
from orchestrator.models.run import ErrorInfo
from orchestrator.models.workflow import PlannedStep, WorkflowPlan
from orchestrator.state.runs import Records, RunStore, cap_result
from orchestrator.workflows.spec import Chain, Step
from orchestrator.workflows.triggers import TriggerTable
from tests.plans import planned_step


def planned(step_id: str, deps: list[str] | None = None) -> PlannedStep:
    return planned_step(step_id, deps or ())


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


def test_cancel_marks_waiting_steps_and_reports_running_ones(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    result = store.cancel(run_id, actor="ann", audit_template="", event_template="")
    assert result.previous == RunStatus.RUNNING and result.cancelled == ["b"] and result.running == ["a"]
    view = store.get(run_id)
    assert view.status == RunStatus.CANCELLED and view.cancelled_by == "ann" and view.error is None
    assert [s.status for s in view.steps] == [StepStatus.RUNNING, StepStatus.CANCELLED]
    assert store.begin_step(run_id, "b").verdict == "cancelled"
    with pytest.raises(InvalidStateTransitionError):
        store.cancel(run_id, actor="ann", audit_template="", event_template="")


def test_triggers_fire_once_when_all_their_steps_are_done(store: RunStore) -> None:
    canvas = Chain((Step("c"), Step("d")))
    # One multi-step trigger "t1" (its canvas spec stored) waiting for steps 0 and 1 ("a" and "b").
    triggers = TriggerTable(["a", "b", "c", "d"], ["t1"], [0, 2], [0, 1], {0: canvas})
    store.create("run-t", make_plan("a", "b", "c", "d"), created_by="t", triggers=triggers)
    store.transition("run-t", RunStatus.RUNNING)
    store.begin_step("run-t", "a")
    assert store.finish_step("run-t", "a", StepStatus.COMPLETED, effect="done", started=0.0).fired == []
    store.begin_step("run-t", "b")
    fired = store.finish_step("run-t", "b", StepStatus.COMPLETED, effect="done", started=0.0).fired
    assert fired == ["t1"]
    assert store.outbox("run-t") == {"fire:0:t1": "1"}  # written with the state change, drained after it
    assert store.trigger_canvases("run-t", ["t1", "nope"]) == {"t1": (canvas, Priority.HIGH.broker_priority)}
    assert store.confirm_outbox("run-t", ["fire:0:t1"]) == 0


def _redispatch(store: RunStore, run_id: str, redo: list[str], *, mode: str = "resume", gen: int = 0) -> Any:
    return store.redispatch(
        run_id,
        mode=mode,
        expected_generation=gen,
        redo=redo,
        canvas={"task": "x"},
        triggers=None,
        audit_body="",
        event="",
        lease_ttl=10,
    )


def test_resume_resets_what_did_not_complete(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0)
    store.begin_step(run_id, "b")
    err = ErrorInfo(code="ORCH_3003", message="x")
    store.finish_step(run_id, "b", StepStatus.FAILED, effect="stop", started=0.0, error=err, run_error=err)
    assert _redispatch(store, run_id, ["b"]) == ("ok", "1", "1")
    view = store.get(run_id)
    assert view.status == RunStatus.RUNNING and view.error is None and view.generation == 1
    assert [s.status for s in view.steps] == [StepStatus.COMPLETED, StepStatus.PENDING]
    assert store.outbox(run_id) == {"start:1": '{"task": "x"}'}
    assert store.begin_step(run_id, "b", generation=0).verdict == "stale"  # the old generation's message
    assert store.begin_step(run_id, "b", generation=1).verdict == "run"


def test_two_resumes_of_one_generation_cannot_both_win(store: RunStore) -> None:
    run_id = started(store, "a")
    store.begin_step(run_id, "a")
    err = ErrorInfo(code="ORCH_3003", message="x")
    store.finish_step(run_id, "a", StepStatus.FAILED, effect="stop", started=0.0, error=err, run_error=err)
    assert _redispatch(store, run_id, ["a"])[0] == "ok"
    assert _redispatch(store, run_id, ["a"])[0] == "illegal"  # it is running again


def test_resume_waits_while_a_live_worker_still_runs_an_old_step(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.state.runs import Lease

    run_id = started(store, "a")
    fake_redis.zadd(keys.WORKERS, {"w1@h:1": 9e12})
    store.begin_step(run_id, "a", lease=Lease("w1@h:1", 7, "tag"))
    store.cancel(run_id, actor="ann", audit_template="", event_template="")
    verdict, step, owner = _redispatch(store, run_id, ["a"])
    assert (verdict, step, owner) == ("busy", "a", "w1@h:1/7/tag")
    fake_redis.zadd(keys.WORKERS, {"w1@h:1": 0})  # the worker died: its lease no longer holds anything
    assert _redispatch(store, run_id, ["a"])[0] == "ok"


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
    from orchestrator.models.events import Event
    from orchestrator.state.events import EventBus, encode

    run_id = started(store, "a")
    bus = EventBus(fake_redis)
    started_event = Event(event_type="workflow.step.started", payload={"step_id": "a", "attempt": "@@attempt@@"})
    begin = store.begin_step(run_id, "a", encode(started_event))
    assert begin.attempt == 1
    store.finish_step(
        run_id,
        "a",
        StepStatus.COMPLETED,
        effect="done",
        started=None,
        event=encode(Event(event_type="workflow.step.completed", payload={"step_id": "a"})),
    )
    history = bus.history()
    assert [e.event_type for e in history] == [
        "workflow.step.started",
        "workflow.step.completed",
        "workflow.completed",  # the closing event comes from the finish script itself
    ]
    assert history[0].payload == {"step_id": "a", "attempt": 1}
    assert history[2].payload["steps_completed"] == ["a"] and history[2].payload["steps_failed"] == []
    # a duplicate finish emits nothing more
    store.finish_step(
        run_id,
        "a",
        StepStatus.COMPLETED,
        effect="done",
        started=None,
        event=encode(Event(event_type="workflow.step.completed", payload={"step_id": "a"})),
    )
    assert len(bus.history()) == 3


def test_the_run_index_forgets_runs_older_than_retention(store: RunStore, fake_redis: Any) -> None:
    fake_redis.zadd(keys.RUNS_INDEX, {"ancient": 1.0})
    store.create("run-new", make_plan("a"), created_by="t")
    assert fake_redis.zscore(keys.RUNS_INDEX, "ancient") is None
    assert fake_redis.zscore(keys.RUNS_INDEX, "run-new") is not None


# -- leases, deliveries and the trail written with every outcome -------------------------------------------


def test_a_live_holder_keeps_its_step_and_a_dead_one_loses_it(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.state.runs import Lease

    run_id = started(store, "a")
    fake_redis.zadd(keys.WORKERS, {"w1@h:1": 9e12, "w2@h:2": 9e12})
    first = Lease("w1@h:1", 11, "t1")
    assert store.begin_step(run_id, "a", lease=first).verdict == "run"
    assert store.begin_step(run_id, "a", lease=first).attempt == 1  # the same delivery asking again: no new attempt
    other = store.begin_step(run_id, "a", lease=Lease("w2@h:2", 22, "t2"))
    assert (other.verdict, other.detail) == ("busy", first.token)
    sibling = store.begin_step(run_id, "a", lease=Lease("w1@h:1", 12, "t3"))
    assert (sibling.verdict, sibling.detail) == ("mine", first.token)  # same instance: the worker checks the pid
    fake_redis.zadd(keys.WORKERS, {"w1@h:1": 0})
    taken = store.begin_step(run_id, "a", lease=Lease("w2@h:2", 22, "t2"))
    assert (taken.verdict, taken.attempt) == ("run", 2)
    assert fake_redis.smembers(keys.worker_leases_key("w2@h:2")) == {f"{run_id}|a|0"}


def test_a_step_that_never_finishes_is_poison_after_the_delivery_cap(store: RunStore) -> None:
    from orchestrator.state.runs import Lease

    run_id = started(store, "a")
    verdicts = [store.begin_step(run_id, "a", lease=Lease(f"w{i}@h:{i}", i), max_deliveries=3) for i in range(4)]
    assert [v.verdict for v in verdicts] == ["run", "run", "run", "poison"]
    assert verdicts[-1].detail == "4"


def test_a_duplicate_message_cannot_start_a_step_before_its_dependencies(store: RunStore) -> None:
    run_id = started(store, "a", "b")
    early = store.begin_step(run_id, "b")
    assert (early.verdict, early.detail) == ("early", "a")


def test_a_join_on_more_dependencies_than_one_read_batch_names_the_first_unfinished(store: RunStore) -> None:
    parents = [f"p{i}" for i in range(1200)]
    steps = [planned(p) for p in parents] + [planned("join", parents)]
    store.create("run-1", WorkflowPlan(template_id=None, name="t", priority=Priority.HIGH, steps=steps), created_by="t")
    store.transition("run-1", RunStatus.RUNNING)
    for parent in parents[:1100]:
        store.begin_step("run-1", parent)
        store.finish_step("run-1", parent, StepStatus.COMPLETED, effect="done", started=0.0)
    early = store.begin_step("run-1", "join")
    assert (early.verdict, early.detail) == ("early", "p1100")
    for parent in parents[1100:]:
        store.begin_step("run-1", parent)
        store.finish_step("run-1", parent, StepStatus.COMPLETED, effect="done", started=0.0)
    assert store.begin_step("run-1", "join").verdict == "run"
    store.finish_step("run-1", "join", StepStatus.COMPLETED, effect="done", started=0.0)
    assert store.get("run-1").status == RunStatus.COMPLETED


def wide_run(store: RunStore, count: int, run_id: str = "run-1") -> list[str]:
    """A running run of ``count`` independent steps (more than one of the scripts' 500-step read batches)."""
    ids = [f"s{i}" for i in range(count)]
    plan = WorkflowPlan(template_id=None, name="wide", priority=Priority.HIGH, steps=[planned(s) for s in ids])
    store.create(run_id, plan, created_by="t")
    store.transition(run_id, RunStatus.RUNNING)
    return ids


def test_cancelling_a_run_larger_than_one_read_batch_marks_every_waiting_step(store: RunStore, fake_redis: Any) -> None:
    ids = wide_run(store, 1003)
    store.begin_step("run-1", "s0")  # running
    store.begin_step("run-1", "s700")
    store.finish_step("run-1", "s700", StepStatus.FAILED, effect="retry", started=0.0, retry_at=1.0)  # retrying
    store.begin_step("run-1", "s900")
    store.finish_step("run-1", "s900", StepStatus.COMPLETED, effect="done", started=0.0)
    assert fake_redis.zrange(keys.RETRIES, 0, -1) == ["run-1|s700|0"]
    result = store.cancel("run-1", actor="ann", audit_template="", event_template="")
    assert result.running == ["s0"]
    assert result.cancelled == [s for s in ids if s not in ("s0", "s900")]  # in plan order, across the batches
    assert fake_redis.zrange(keys.RETRIES, 0, -1) == []  # the retrying step will not be re-sent
    statuses = {s.step_id: s.status for s in store.get("run-1").steps}
    assert statuses.pop("s0") == StepStatus.RUNNING and statuses.pop("s900") == StepStatus.COMPLETED
    assert set(statuses.values()) == {StepStatus.CANCELLED} and len(statuses) == 1001


def test_resuming_a_run_larger_than_one_read_batch_resets_every_step_that_did_not_complete(
    store: RunStore, fake_redis: Any
) -> None:
    ids = wide_run(store, 1003)
    run_key = keys.run_key("run-1")
    for sid in ("s10", "s600", "s1002"):  # a retry that never came back, across the batches
        store.begin_step("run-1", sid)
        store.finish_step("run-1", sid, StepStatus.FAILED, effect="retry", started=0.0, retry_at=1.0)
    fake_redis.hset(run_key, mapping={f"st:{s}": "completed" for s in ids[:500]})  # s10 among them
    fake_redis.hset(run_key, mapping={f"st:{s}": "failed" for s in ids[700:900]})
    store.begin_step("run-1", "s650")  # its worker died mid-step: it holds no live lease
    assert fake_redis.zrange(keys.LEASES, 0, -1) == ["run-1|s650|0"]
    fake_redis.hset(run_key, "status", "failed")
    assert _redispatch(store, "run-1", ids[1:]) == ("ok", "1", str(1003 - 500))
    assert fake_redis.zrange(keys.LEASES, 0, -1) == []
    view = store.get("run-1")
    statuses = [s.status for s in view.steps]
    assert statuses[:500] == [StepStatus.COMPLETED] * 500 and statuses[500:] == [StepStatus.PENDING] * 503
    assert view.steps[600].result is None and view.steps[600].error is None  # its failed attempt is gone
    assert fake_redis.hget(run_key, "r:s10") is not None  # a completed step keeps its outcome
    assert fake_redis.zrange(keys.RETRIES, 0, -1) == ["run-1|s10|0"]  # only completed steps' entries stay


def test_the_closing_summary_of_a_run_larger_than_one_read_batch_lists_every_step_in_order(
    store: RunStore, fake_redis: Any
) -> None:
    ids = wide_run(store, 1003)
    ended = {f"st:{s}": "completed" for s in ids[:-1]}
    ended.update({"st:s5": "failed", "st:s501": "skipped"})  # s5 failed under the skip policy
    fake_redis.hset(keys.run_key("run-1"), mapping={**ended, "done": len(ids) - 1})
    store.begin_step("run-1", ids[-1])
    last = store.finish_step("run-1", ids[-1], StepStatus.COMPLETED, effect="done", started=0.0)
    assert last.run_ended == RunStatus.COMPLETED
    assert last.summary == {
        "steps_completed": [s for s in ids if s not in ("s5", "s501")],
        "steps_remaining": [],
        "steps_failed": ["s5"],
    }


def test_begin_counts_attempts_and_keeps_the_first_start(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.state.runs import Lease

    run_id = started(store, "a")
    first = store.begin_step(run_id, "a", lease=Lease("w1@h:1", 1))
    t0 = fake_redis.hget(keys.run_key(run_id), "t0:a")
    store.finish_step(run_id, "a", StepStatus.RETRYING, effect="retry", started=0.0, retry_at=0.0)
    again = store.begin_step(run_id, "a", lease=Lease("w1@h:1", 2))
    assert (first.attempt, again.attempt) == (1, 2)
    assert fake_redis.hmget(keys.run_key(run_id), ["at:a", "dv:a", "t0:a"]) == ["2", "1", t0]


def test_a_late_finish_never_recreates_an_expired_run(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a")
    store.begin_step(run_id, "a")
    fake_redis.delete(keys.run_key(run_id))
    result = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0)
    assert result.duplicate and result.verdict == "missing"
    assert not fake_redis.exists(keys.run_key(run_id))


def test_a_hash_without_its_plan_reads_as_a_clear_error(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.errors import StateCorruptedError

    fake_redis.hset(keys.run_key("run-x"), mapping={"st:a": "completed", "status": "running"})
    with pytest.raises(StateCorruptedError, match="no record of its plan"):
        store.get("run-x")


def test_the_closing_audit_entry_written_by_the_script_verifies(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.state.audit import AuditLog, audit_body

    audit = AuditLog(fake_redis, max_entries=1000)
    run_id = started(store, "a", "b")
    for step_id in ("a", "b"):
        store.begin_step(run_id, step_id)
        body = audit_body("task_executed", "worker:x", f"{run_id}/{step_id}", {"attempt": 1})
        store.finish_step(
            run_id, step_id, StepStatus.COMPLETED, effect="done", started=0.0, records=Records(audit=body), actor="w"
        )
    entries = audit.query(limit=10)
    assert [e.event_type for e in entries] == ["workflow_completed", "task_executed", "task_executed"]
    closing = entries[0]
    assert closing.details == {
        "status": "completed",
        "steps_completed": ["a", "b"],
        "steps_failed": [],
        "steps_remaining": [],
    }
    assert closing.actor == "w" and closing.target == run_id
    assert audit.verify().ok


def test_a_runs_last_step_indexes_its_event_and_the_runs_closing_one_in_order(store: RunStore, fake_redis: Any) -> None:
    """The finish writes the step's event and the run's closing event in one script: both are in the stream, in
    that order, and the run's event index lists exactly their stream ids (one push for the two), with its expiry."""
    from orchestrator.state import step_records
    from orchestrator.state.events import EventBus

    run_id = started(store, "a")
    store.begin_step(run_id, "a")
    spec = store.plan(run_id).steps[0]
    recs = step_records.completed("w", run_id, spec, 1, 0.001)
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, records=recs, actor="w")
    bus = EventBus(fake_redis)
    history = bus.history(run_id=run_id)
    assert [e.event_type for e in history][-2:] == ["workflow.step.completed", "workflow.completed"]
    stream_ids = [stream_id for stream_id, _ in fake_redis.xrange(keys.EVENTS_STREAM)]
    assert bus.run_event_ids(run_id) == stream_ids  # every event of the stream is this run's, each indexed once
    assert 0 < fake_redis.ttl(keys.event_index_key(run_id)) <= keys.EVENT_INDEX_TTL_SECONDS


def test_a_start_chains_its_audit_entries_with_one_read_of_the_head(store: RunStore, fake_redis: Any) -> None:
    """The announce writes the permission check and the start in one script: they link to each other and to the
    entry before them, and the head moves to the last one."""
    from orchestrator.state.audit import AuditLog, audit_body

    audit = AuditLog(fake_redis, max_entries=1000)
    audit.append("agent_registered", "ops", "cmdb-agent")
    bodies = [audit_body("permission_check", "ann", "run-2"), audit_body("workflow_started", "ann", "run-2")]
    store.create("run-2", make_plan("a"), created_by="ann", audit_bodies=bodies, started_event="")
    entries = audit.query(limit=10)
    assert [e.event_type for e in entries] == ["workflow_started", "permission_check", "agent_registered"]
    assert entries[0].prev_hash == entries[1].hash and entries[1].prev_hash == entries[2].hash
    assert fake_redis.get(keys.AUDIT_HEAD) == entries[0].hash
    assert audit.verify().ok


def test_a_failing_run_gets_its_closing_records_with_the_summary_filled_in(store: RunStore, fake_redis: Any) -> None:
    from orchestrator.errors import TaskExecutionError
    from orchestrator.state import step_records
    from orchestrator.state.audit import AuditLog
    from orchestrator.state.events import EventBus

    run_id = started(store, "a", "b")
    spec = store.plan(run_id).steps[0]
    store.begin_step(run_id, "a")
    error = TaskExecutionError("boom")
    run_error = step_records.run_error_for(spec, error)
    recs = step_records.failed("w", run_id, spec, 1, error, run_error=run_error, dead_letter_reason="retries_exhausted")
    store.finish_step(
        run_id, "a", StepStatus.FAILED, effect="stop", started=0.0, run_error=run_error, records=recs, actor="w"
    )
    closing = EventBus(fake_redis).history(types=["workflow.failed"])[0]
    assert closing.payload["steps_failed"] == ["a"] and closing.payload["steps_remaining"] == ["b"]
    assert closing.payload["error"]["code"] == "ORCH_3003"
    assert AuditLog(fake_redis, max_entries=1000).verify().ok
    letter = fake_redis.xrange(keys.DLQ_STREAM)[0][1]
    assert '"reason": "retries_exhausted"' in letter["d"]


def test_creation_prunes_expired_index_entries_at_most_once_a_minute(store: RunStore, fake_redis: Any) -> None:
    import time

    from orchestrator.state.run_listing import PruneClock

    long_ago = time.time() - store.ttl - 2 * 86400  # past the TTL and the day of slack
    fake_redis.zadd(keys.RUNS_INDEX, {"gone-1": long_ago})
    store.create("run-a", make_plan("a"), created_by="t")
    assert fake_redis.zscore(keys.RUNS_INDEX, "gone-1") is None  # the first creation prunes
    fake_redis.zadd(keys.RUNS_INDEX, {"gone-2": long_ago})
    store.create("run-b", make_plan("a"), created_by="t")
    assert fake_redis.zscore(keys.RUNS_INDEX, "gone-2") is not None  # not again within the minute
    clock = PruneClock()
    assert clock.due("", 1000.0) and not clock.due("", 1000.0 + PruneClock.EVERY_SECONDS - 1)
    assert clock.due("", 1000.0 + PruneClock.EVERY_SECONDS) and clock.due("t:x", 1000.0)
    assert fake_redis.zscore(keys.RUNS_INDEX, "run-b") is not None  # the new run is indexed all the same


# -- the next chain link pushed by the finish script (workers.chain_handoff) ------------------------------------

NEXT = [("LPUSH", "agent.cmdb-agent:3", '{"next": 1}'), ("PEXPIRE", "agent.cmdb-agent:3", 60000)]


def test_a_completion_pushes_the_next_link_in_its_script_and_still_counts(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=NEXT)
    assert fake_redis.lrange("agent.cmdb-agent:3", 0, -1) == ['{"next": 1}']
    assert 0 < fake_redis.pttl("agent.cmdb-agent:3") <= 60000
    assert store.get(run_id).steps_completed == ["a"]
    assert any(field.startswith("step_attempts|") for field in fake_redis.hkeys(keys.METRICS))  # metrics still last


def test_a_repeated_finish_pushes_nothing_again(store: RunStore, fake_redis: Any) -> None:
    """A durable retry after a lost reply runs the script again: its early return skips the push."""
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=NEXT[:1])
    again = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=NEXT[:1])
    assert again.duplicate and fake_redis.llen("agent.cmdb-agent:3") == 1


def test_no_push_for_a_run_no_longer_running_or_an_older_generation(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    store.transition(run_id, RunStatus.CANCELLED)
    done = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=NEXT[:1])
    assert not done.duplicate and store.get(run_id).steps_completed == ["a"]  # recorded, nothing pushed
    stale = started(store, "a", "b", run_id="run-2")
    store.begin_step(stale, "a")
    old = store.finish_step(
        stale, "a", StepStatus.COMPLETED, effect="done", started=0.0, generation=7, publishes=NEXT[:1]
    )
    assert old.verdict == "stale"
    assert not fake_redis.exists("agent.cmdb-agent:3")


def test_only_a_completion_pushes(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b")
    store.begin_step(run_id, "a")
    error = ErrorInfo(code="ORCH_3003", message="boom")
    store.finish_step(run_id, "a", StepStatus.FAILED, effect="done", started=0.0, error=error, publishes=NEXT[:1])
    assert not fake_redis.exists("agent.cmdb-agent:3")
    with pytest.raises(ValueError, match="only LPUSH"):
        store.finish_step(run_id, "b", StepStatus.COMPLETED, effect="done", started=0.0, publishes=[("DEL", "x", 1)])


# -- a chord header part counted by the finish script (workers.chord_handoff) -----------------------------------

SIZE_KEY = "celery-taskset-meta-g1.s"


def join(body: str = '{"task": "orch.run_step"}') -> list[tuple[str, str, str]]:
    return [("JOIN", SIZE_KEY, f"g1\n{body}")]


def test_the_part_that_completes_a_chord_writes_its_body_into_the_outbox(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b", "c")
    fake_redis.set(SIZE_KEY, 2)  # what Celery's canvas stores when it applies the chord
    store.begin_step(run_id, "a")
    first = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=join())
    assert first.joined == [] and not fake_redis.exists(keys.run_outbox_key(run_id))
    store.begin_step(run_id, "b")
    last = store.finish_step(run_id, "b", StepStatus.COMPLETED, effect="done", started=0.0, publishes=join())
    assert last.joined == ["join:0:g1"] and last.fired == []
    assert fake_redis.hgetall(keys.run_outbox_key(run_id)) == {"join:0:g1": '{"task": "orch.run_step"}'}
    assert fake_redis.zscore(keys.OUTBOX_INDEX, run_id) is not None  # the reconciler finds it after a crash
    assert not fake_redis.exists(SIZE_KEY)  # Celery's cleanup never runs for a chord counted here
    assert store.get(run_id).steps_completed == ["a", "b"]


def test_a_repeated_or_failed_part_is_not_counted(store: RunStore, fake_redis: Any) -> None:
    run_id = started(store, "a", "b", "c")
    fake_redis.set(SIZE_KEY, 2)
    store.begin_step(run_id, "a")
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=join())
    again = store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=join())
    assert again.duplicate and again.joined == []
    store.begin_step(run_id, "b")
    error = ErrorInfo(code="ORCH_3003", message="boom")
    failed = store.finish_step(
        run_id, "b", StepStatus.FAILED, effect="done", started=0.0, error=error, publishes=join()
    )
    assert failed.joined == [] and not fake_redis.exists(keys.run_outbox_key(run_id))
    assert fake_redis.hget(keys.run_key(run_id), "jn:0:g1") == "1"


def test_a_chord_after_a_step_gets_its_size_from_the_finish_script(store: RunStore, fake_redis: Any) -> None:
    """The step's chain goes on with a chord: its header messages and its size (as Celery's backend would write
    them, counter reset included) ride on the script that records the step completed."""
    run_id = started(store, "a", "b", "c")
    fake_redis.set("celery-taskset-meta-g2.c", 5)  # a counter left by an earlier apply of the same group
    store.begin_step(run_id, "a")
    publishes = [("LPUSH", "agent.cmdb-agent:3", '{"x": 1}'), ("CHORDSIZE", "celery-taskset-meta-g2.s", 2, 3600)]
    store.finish_step(run_id, "a", StepStatus.COMPLETED, effect="done", started=0.0, publishes=publishes)
    assert fake_redis.get("celery-taskset-meta-g2.s") == "2"
    assert 0 < fake_redis.ttl("celery-taskset-meta-g2.s") <= 3600
    assert not fake_redis.exists("celery-taskset-meta-g2.c")
    assert fake_redis.llen("agent.cmdb-agent:3") == 1


def test_a_start_whose_canvas_is_a_chord_writes_its_size_in_the_creating_transaction(
    store: RunStore, fake_redis: Any
) -> None:
    publishes = [("LPUSH", "agent.cmdb-agent:3", '{"x": 1}'), ("CHORDSIZE", "celery-taskset-meta-g3.s", 3, 0)]
    store.create("run-chord", make_plan("a", "b"), created_by="t", start=True, publishes=publishes)
    assert fake_redis.get("celery-taskset-meta-g3.s") == "3" and fake_redis.ttl("celery-taskset-meta-g3.s") == -1
