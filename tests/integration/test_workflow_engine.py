"""The workflow engine on real Redis and real agent workers: order, parallelism, failure policies, cancel, resume."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import keys
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.service import Orchestrator
from orchestrator.workflows import subplan
from orchestrator.workflows.compiler import compile_plan
from orchestrator.workflows.spec import Chain, Group, Step
from tests.integration.helpers import (
    OPERATOR,
    definition,
    inject,
    planned,
    release,
    run_and_wait,
    step,
    step_of,
    ts,
    uid,
    wait_until,
)

pytestmark = pytest.mark.integration


def _ci_name(orch: Orchestrator) -> str:
    found = orch.wait_for_run(
        orch.execute_task(OPERATOR, action="cmdb.query", parameters={"environment": "Production", "limit": 3}).run_id,
        timeout=30,
    )
    assert found.status == RunStatus.COMPLETED, found.error
    from orchestrator.cli.demo import first_ci_name

    name = first_ci_name(found.steps[0].result)
    assert name
    return name


def test_incident_response_runs_three_steps_in_order_on_their_agent_queues(orch: Orchestrator, rclient: Any) -> None:
    ci = _ci_name(orch)
    started = orch.start_workflow(OPERATOR, template_id="incident-response", parameters={"ci_id": ci})
    view = orch.wait_for_run(started.run_id, timeout=60)

    assert view.status == RunStatus.COMPLETED, view.error
    assert [s.step_id for s in view.steps] == ["assess-impact", "route-to-agent", "create-ticket"]
    assert [s.agent_id for s in view.steps] == ["cmdb-agent", "csa-agent", "csa-agent"]
    for earlier, later in zip(view.steps, view.steps[1:], strict=False):
        assert ts(later.started_at) >= ts(earlier.finished_at)
    for s in view.steps:
        assert s.status == StepStatus.COMPLETED and s.attempts == 1 and s.result
        assert s.queue == keys.agent_queue(s.agent_id)  # the queue the broker delivered it on
    executed = orch.audit_query(OPERATOR, event_type="task_executed", limit=200)
    actors = {e.target: e.actor for e in executed if e.target and e.target.startswith(view.run_id)}
    assert actors == {f"{view.run_id}/{s.step_id}": f"worker:{s.agent_id}" for s in view.steps}


def test_a_twenty_step_chain_runs_every_step_once_in_order(orch: Orchestrator, rclient: Any) -> None:
    """Each link is pushed by the finish script of the step before it (the broker is the state Redis): none is
    lost, none comes twice."""
    ids = [uid(f"c{i}") for i in range(20)]
    view = run_and_wait(orch, definition(*[step(s, deps=[ids[i - 1]] if i else []) for i, s in enumerate(ids)]))
    assert view.status == RunStatus.COMPLETED, view.error
    assert [s.step_id for s in view.steps] == ids
    assert all(s.status == StepStatus.COMPLETED and s.attempts == 1 for s in view.steps)
    for earlier, later in zip(view.steps, view.steps[1:], strict=False):
        assert ts(later.started_at) >= ts(earlier.finished_at)
    executed = orch.audit_query(OPERATOR, event_type="task_executed", limit=500)
    targets = [e.target for e in executed if e.target and e.target.startswith(view.run_id + "/")]
    assert sorted(targets) == sorted(f"{view.run_id}/{s}" for s in ids)  # each step executed exactly once


def test_fan_out_runs_branches_concurrently_and_join_waits_for_both(orch: Orchestrator, rclient: Any) -> None:
    z, x, y, j = uid("z"), uid("x"), uid("y"), uid("j")
    inject(rclient, x, sleep=1.0)
    inject(rclient, y, sleep=1.0)
    view = run_and_wait(
        orch, definition(step(z), step(x, "discovery.status", [z]), step(y, "asset.query", [z]), step(j, deps=[x, y]))
    )
    assert view.status == RunStatus.COMPLETED, view.error
    sx, sy, sj = step_of(view, x), step_of(view, y), step_of(view, j)
    assert ts(sx.started_at) < ts(sy.finished_at) and ts(sy.started_at) < ts(sx.finished_at)  # overlapped
    assert ts(sj.started_at) >= max(ts(sx.finished_at), ts(sy.finished_at))


def test_a_fan_out_start_is_built_without_celerys_chord_apply(
    orch: Orchestrator, rclient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that is one chord (branches on three agents' queues, then a join) is pushed by the start's own
    transaction from directly built messages (``step_push.chord_pushes``); Celery's chord apply, made to
    fail here, is never called, and the join still waits for every branch."""
    from celery import canvas

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Celery's chord apply was used for a fan-out start")

    monkeypatch.setattr(canvas._chord, "run", refuse)
    x, y, w, j = uid("x"), uid("y"), uid("w"), uid("j")
    inject(rclient, x, sleep=0.5)
    view = run_and_wait(
        orch, definition(step(x, "discovery.status"), step(y, "asset.query"), step(w), step(j, deps=[x, y, w]))
    )
    assert view.status == RunStatus.COMPLETED, view.error
    assert all(s.status == StepStatus.COMPLETED and s.attempts == 1 for s in view.steps)
    assert [step_of(view, s).agent_id for s in (x, y, w)] == ["discovery-agent", "asset-agent", "cmdb-agent"]
    assert ts(step_of(view, j).started_at) >= max(ts(step_of(view, s).finished_at) for s in (x, y, w))


def test_non_series_parallel_dag_does_not_make_d_wait_for_a(orch: Orchestrator, rclient: Any) -> None:
    a, b, c, d = uid("a"), uid("b"), uid("c"), uid("d")
    inject(rclient, a, sleep=2.0)
    view = run_and_wait(
        orch,
        definition(
            step(a, "discovery.status"), step(b, "asset.query"), step(c, deps=[a, b]), step(d, "audit.drift", [b])
        ),
    )
    assert view.status == RunStatus.COMPLETED, view.error
    assert ts(step_of(view, d).finished_at) < ts(step_of(view, a).finished_at)
    assert ts(step_of(view, c).started_at) >= ts(step_of(view, a).finished_at)


def test_a_multi_step_trigger_runs_its_canvas_built_when_it_fires(orch: Orchestrator, rclient: Any) -> None:
    """c waits for a and b, then e and f follow c: a trigger holding the canvas c -> [e | f], stored as its spec and
    built from the steps' specs when it fires; t joins e, f and d through a one-step trigger."""
    x, a, b, c, d, e, f, t = (uid(n) for n in "xabcdeft")
    steps = [step(x), step(a, deps=[x]), step(b, deps=[x]), step(c, deps=[a, b]), step(d, deps=[b])]
    steps += [step(e, deps=[c]), step(f, deps=[c]), step(t, deps=[e, f, d])]
    compiled = compile_plan(planned(*steps), "r")
    assert compiled.triggers.canvas_spec(c) == Chain((Step(c), Group((Step(e), Step(f)))))
    inject(rclient, a, sleep=1.0)
    view = run_and_wait(orch, definition(*steps))
    assert view.status == RunStatus.COMPLETED, view.error
    assert all(s.status == StepStatus.COMPLETED and s.attempts == 1 for s in view.steps)
    for later, earlier in ((c, a), (c, b), (e, c), (f, c), (t, e), (t, f), (t, d)):
        assert ts(step_of(view, later).started_at) >= ts(step_of(view, earlier).finished_at), (later, earlier)


def test_stop_policy_fails_the_run_and_later_steps_never_run(orch: Orchestrator, rclient: Any) -> None:
    one, two, three = uid("one"), uid("two"), uid("three")
    inject(rclient, two, fail_times=5, retryable=False)
    view = run_and_wait(orch, definition(step(one), step(two, deps=[one]), step(three, deps=[two])))
    assert view.status == RunStatus.FAILED
    assert view.error is not None and view.error.code == "ORCH_3003" and two in view.error.message
    assert step_of(view, three).attempts == 0 and step_of(view, three).status == StepStatus.PENDING
    failed = orch.event_history(run_id=view.run_id, types=["workflow.failed"])
    assert failed and failed[0].payload["steps_completed"] == [one]
    assert set(failed[0].payload["steps_remaining"]) == {three}


def test_skip_policy_records_failure_and_dependents_still_run(orch: Orchestrator, rclient: Any) -> None:
    one, two, three = uid("one"), uid("two"), uid("three")
    inject(rclient, two, fail_times=5, retryable=False)
    view = run_and_wait(orch, definition(step(one), step(two, deps=[one], on_failure="skip"), step(three, deps=[two])))
    assert view.status == RunStatus.COMPLETED
    assert step_of(view, two).status == StepStatus.FAILED
    assert step_of(view, three).status == StepStatus.COMPLETED


def test_retry_policy_recovers_after_one_failure_with_two_attempts(orch: Orchestrator, rclient: Any) -> None:
    flaky = uid("flaky")
    inject(rclient, flaky, fail_times=1, retryable=True)
    view = run_and_wait(orch, definition(step(flaky, on_failure="retry", max_retries=3)))
    assert view.status == RunStatus.COMPLETED, view.error
    assert step_of(view, flaky).attempts == 2
    retrying = orch.event_history(run_id=view.run_id, types=["workflow.step.retrying"])
    assert len(retrying) == 1


def test_retry_exhaustion_makes_exactly_n_plus_one_attempts(orch: Orchestrator, rclient: Any) -> None:
    broken = uid("broken")
    inject(rclient, broken, fail_times=99, retryable=True)
    view = run_and_wait(orch, definition(step(broken, on_failure="retry", max_retries=2)))
    assert view.status == RunStatus.FAILED
    assert step_of(view, broken).attempts == 3
    assert view.error is not None and view.error.code == "ORCH_7004"
    assert "All 3 retry attempts exhausted" in view.error.message
    letters = orch.dlq_list(OPERATOR, limit=50)
    assert any(d["run_id"] == view.run_id and d["reason"] == "retries_exhausted" for d in letters)


def test_step_timeout_ends_the_step_with_orch_7002(orch: Orchestrator, rclient: Any) -> None:
    slow = uid("slow")
    inject(rclient, slow, sleep=5.0)
    view = run_and_wait(orch, definition(step(slow, timeout_seconds=1)))
    assert view.status == RunStatus.FAILED
    assert step_of(view, slow).error.code == "ORCH_7002"
    assert view.error is not None and view.error.code == "ORCH_7002"


def test_cancel_mid_run_stops_later_steps(orch: Orchestrator, rclient: Any) -> None:
    one, two, three = uid("one"), uid("two"), uid("three")
    inject(rclient, one, sleep=1.5)
    started = orch.start_workflow(
        OPERATOR, definition=definition(step(one), step(two, deps=[one]), step(three, deps=[two]))
    )
    wait_until(lambda: step_of(orch.get_run(started.run_id), one).status == StepStatus.RUNNING, what="step one")
    cancelled = orch.cancel_run(OPERATOR, started.run_id)
    assert cancelled.status == RunStatus.CANCELLED and cancelled.error is None  # a normal outcome, no error code
    # the running step was stopped inside its worker, and says so
    assert step_of(cancelled, one).status == StepStatus.CANCELLED
    assert step_of(cancelled, one).stopped == "interrupted"
    view = orch.get_run(started.run_id)
    assert view.status == RunStatus.CANCELLED and view.cancelled_by == OPERATOR.actor
    assert step_of(view, two).attempts == 0 and step_of(view, three).attempts == 0
    assert step_of(view, two).status == StepStatus.CANCELLED
    with pytest.raises(Exception, match=r"ORCH_3002|already cancelled"):
        orch.cancel_run(OPERATOR, started.run_id)


def test_resume_after_failure_runs_only_the_remaining_steps(orch: Orchestrator, rclient: Any) -> None:
    one, two, three = uid("one"), uid("two"), uid("three")
    inject(rclient, two, fail_times=1, retryable=False)
    failed = run_and_wait(orch, definition(step(one), step(two, deps=[one]), step(three, deps=[two])))
    assert failed.status == RunStatus.FAILED
    orch.resume_run(OPERATOR, failed.run_id)
    view = orch.wait_for_run(failed.run_id, timeout=30)
    assert view.status == RunStatus.COMPLETED, view.error
    assert (step_of(view, one).attempts, step_of(view, two).attempts, step_of(view, three).attempts) == (1, 2, 1)
    assert view.generation == 1


def test_a_resumed_run_fires_a_multi_step_trigger_of_its_new_generation(orch: Orchestrator, rclient: Any) -> None:
    """z fails the run while the gate runs; on resume what is left after the gate is an N shape whose trigger holds
    c -> [e | f]: it is stored as a spec by the resume and built, for generation 1, when it fires."""
    z, gate, a, b, c, d, e, f = (uid(n) for n in ("z", "gate", "a", "b", "c", "d", "e", "f"))
    inject(rclient, z, fail_times=1, retryable=False)
    inject(rclient, gate, sleep=1.0)
    steps = [step(z), step(gate), step(a, deps=[gate]), step(b, deps=[gate]), step(c, deps=[a, b])]
    steps += [step(d, deps=[b]), step(e, deps=[c]), step(f, deps=[c])]
    failed = run_and_wait(orch, definition(*steps))
    assert failed.status == RunStatus.FAILED
    done = {s.step_id for s in failed.steps if s.status == StepStatus.COMPLETED}
    assert not done & {a, b, c, d, e, f}
    left = compile_plan(subplan(planned(*steps), done), "r", 1)
    assert left.triggers.canvas_spec(c) == Chain((Step(c), Group((Step(e), Step(f)))))
    orch.resume_run(OPERATOR, failed.run_id)
    view = orch.wait_for_run(failed.run_id, timeout=30)
    assert view.status == RunStatus.COMPLETED, view.error
    assert view.generation == 1 and step_of(view, z).attempts == 2
    assert all(step_of(view, s).attempts == 1 for s in (a, b, c, d, e, f))
    for later, earlier in ((c, a), (c, b), (e, c), (f, c)):
        assert ts(step_of(view, later).started_at) >= ts(step_of(view, earlier).finished_at), (later, earlier)


def test_cancelling_a_finished_run_is_an_error(orch: Orchestrator) -> None:
    from orchestrator.errors import InvalidStateTransitionError

    done = run_and_wait(orch, definition(step(uid("only"))))
    assert done.status == RunStatus.COMPLETED
    with pytest.raises(InvalidStateTransitionError):
        orch.cancel_run(OPERATOR, done.run_id)


def test_critical_run_overtakes_a_low_priority_backlog(orch: Orchestrator, rclient: Any) -> None:
    busy = uid("busy")
    inject(rclient, busy, hold=30)
    diagram = {"ci_id": "web-prod-01"}
    blocker = orch.start_workflow(
        OPERATOR, definition=definition(step(busy, "documentation.diagram", parameters=diagram))
    )  # the documentator has one pool process
    wait_until(lambda: rclient.get(keys.fault_mark_key(busy, "pid")), what="documentator busy")
    low = [
        orch.start_workflow(
            OPERATOR,
            definition=definition(step(uid("low"), "documentation.diagram", parameters=diagram)),
            priority="low",
        )
        for _ in range(3)
    ]
    critical = orch.start_workflow(
        OPERATOR,
        definition=definition(step(uid("crit"), "documentation.diagram", parameters=diagram)),
        priority="critical",
    )
    release(rclient, busy)  # the documentator becomes free only now, with the whole backlog queued
    views = [orch.wait_for_run(r.run_id, timeout=30) for r in [blocker, *low, critical]]
    assert all(v.status == RunStatus.COMPLETED for v in views)
    critical_start = ts(views[-1].steps[0].started_at)
    low_starts = sorted(ts(v.steps[0].started_at) for v in views[1:-1])
    # The worker may already hold one message it reserved while busy (Celery prefetch); the critical run must
    # overtake everything still waiting on the broker, i.e. at least the last two of the three low runs.
    assert critical_start < low_starts[1], (critical_start, low_starts)
