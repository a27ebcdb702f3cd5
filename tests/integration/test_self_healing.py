"""Self-healing runs: whatever crashes, every accepted run finishes or fails visibly, nothing is lost, no write
runs twice.

Each test breaks a private cluster (its own redis-server with AOF, supervised workers, a reconciler; see
``cluster.py``) the way production breaks: a whole worker SIGKILLed or frozen mid-step, a step deaf to its soft
time limit, a crash between a state change and what follows it, Redis restarted under load, poison messages.
Each asserts that the run ends within a bounded time with the right status or ORCH code, that a write's effect
exists exactly once, and that the audit chain still verifies.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Producer

from orchestrator import keys
from orchestrator.errors import InvalidStateTransitionError
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.models.run import RunView
from orchestrator.service import Orchestrator
from orchestrator.workflows.compiler import compile_plan
from orchestrator.workflows.spec import Chain, Group, Step
from tests.integration.cluster import Cluster, fast_settings, running_cluster
from tests.integration.helpers import (
    ADMIN,
    OPERATOR,
    definition,
    inject,
    planned,
    release,
    step,
    step_of,
    uid,
    wait_until,
)
from workers.sample.instance import SampleInstance

pytestmark = pytest.mark.integration

RUN_BOUND = 60.0  # every run must end within this many seconds of the fault


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture
def c(cluster: Cluster) -> Cluster:
    """The cluster, with every worker beating again before the test (earlier tests kill them)."""
    cluster.healthy()
    return cluster


def ticket_step(step_id: str, **extra: Any) -> dict[str, Any]:
    return step(
        step_id, "csa.run_remediation", parameters={"summary": f"fault test {step_id}", "risk_level": "low"}, **extra
    )


def tickets(c: Cluster, run_id: str, step_id: str) -> int:
    return SampleInstance(c.data_dir / "sample-instance.sqlite").count_tickets(idempotency_key=f"{run_id}:{step_id}")


def executions(c: Cluster, run_id: str, step_id: str) -> int:
    return len(c.orch.audit_query(ADMIN, event_type="task_executed", target=f"{run_id}/{step_id}", limit=50))


def ends(c: Cluster, run_id: str, timeout: float = RUN_BOUND) -> RunView:
    view = c.orch.wait_for_run(run_id, timeout=timeout)
    assert c.orch.audit_verify(ADMIN)["ok"], c.orch.audit_verify(ADMIN)
    return view


def start(c: Cluster, *steps: dict[str, Any]) -> RunView:
    return c.orch.start_workflow(OPERATOR, definition=definition(*steps))


# -- 1. a whole worker dies -------------------------------------------------------------------------------------


def test_whole_worker_sigkill_mid_write_completes_exactly_once(c: Cluster) -> None:
    rc = c.client()
    write = uid("ticket")
    inject(rc, write, sleep_after=2.0)  # the window between the ticket write and its record
    run = start(c, ticket_step(write))
    wait_until(lambda: rc.get(keys.fault_mark_key(write, "after")), what="the ticket write")
    killed_at = c.kill_worker("csa-agent")

    wait_until(
        lambda: c.orch.agents.statuses()["csa-agent"] != "online",
        timeout=5,
        what="the killed agent to stop showing online",
    )
    view = ends(c, run.run_id)
    recovery = time.monotonic() - killed_at
    assert view.status == RunStatus.COMPLETED, view.error
    assert recovery < 30, f"recovered in {recovery:.1f}s"
    assert step_of(view, write).attempts == 2 and tickets(c, run.run_id, write) == 1
    lost = c.orch.audit_query(ADMIN, event_type="worker_lost", actor="reconciler", limit=20)
    assert any(f"{run.run_id}|{write}|0" in e.details["recovered"] for e in lost)
    print(f"\nrecovery after a whole-worker SIGKILL: {recovery:.2f}s")


def test_graceful_stop_during_a_long_step_hands_the_step_over(c: Cluster) -> None:
    rc = c.client()
    slow = uid("slow")
    inject(rc, slow, hold=60)
    run = start(c, step(slow))
    wait_until(lambda: rc.get(keys.fault_mark_key(slow, "pid")), what="the step to run")
    pid = c.worker_pid("cmdb-agent")
    os.kill(pid, signal.SIGTERM)  # warm shutdown waits for the step ...
    asked = time.monotonic()
    wait_until(lambda: time.monotonic() - asked > 1.0, what="the stop's grace period to pass")
    assert step_of(c.orch.get_run(run.run_id), slow).status == StepStatus.RUNNING
    os.killpg(pid, signal.SIGKILL)  # ... longer than the stop's grace period: the stopper kills it
    rc.delete(keys.fault_mark_key(slow, "pid"))
    wait_until(lambda: rc.get(keys.fault_mark_key(slow, "pid")), timeout=30, what="the step to run again elsewhere")
    release(rc, slow)
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert step_of(view, slow).attempts == 2 and executions(c, run.run_id, slow) == 1


def test_kill_while_a_retry_countdown_is_pending(c: Cluster) -> None:
    rc = c.client()
    flaky = uid("flaky")
    inject(rc, flaky, fail_times=1, retryable=True)
    run = start(c, step(flaky, on_failure="retry", max_retries=2))
    wait_until(lambda: step_of(c.orch.get_run(run.run_id), flaky).status == StepStatus.RETRYING, what="retrying")
    c.kill_worker("cmdb-agent")  # the countdown message dies with the worker that held it
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert step_of(view, flaky).attempts == 2 and executions(c, run.run_id, flaky) == 1


# -- 2. a step that never hears its soft limit ------------------------------------------------------------------


def test_a_step_deaf_to_its_soft_limit_is_failed_at_the_hard_limit(c: Cluster) -> None:
    rc = c.client()
    stuck = uid("stuck")
    inject(rc, stuck, hold=30, deaf=True)
    run = start(c, step(stuck, timeout_seconds=1), step(uid("after"), deps=[stuck]))
    view = ends(c, run.run_id, timeout=30)
    assert view.status == RunStatus.FAILED
    assert view.error is not None and view.error.code == "ORCH_7002", view.error
    assert step_of(view, stuck).error is not None and "hard time limit" in step_of(view, stuck).error.message


def test_a_deaf_step_under_the_skip_policy_lets_its_dependents_run(c: Cluster) -> None:
    rc = c.client()
    stuck, after = uid("stuck"), uid("after")
    inject(rc, stuck, hold=30, deaf=True)
    run = start(c, step(stuck, timeout_seconds=1, on_failure="skip"), step(after, deps=[stuck]))
    view = ends(c, run.run_id, timeout=40)
    assert view.status == RunStatus.COMPLETED, view.error
    assert step_of(view, stuck).status == StepStatus.FAILED and step_of(view, stuck).error.code == "ORCH_7002"
    # Its dependent starts from the trigger its finish released (nothing followed it in Celery): no repair needed.
    assert step_of(view, after).status == StepStatus.COMPLETED and view.repairs == 0
    assert view.generation == 0


def test_a_frozen_worker_loses_its_step_which_fails_at_its_deadline(c: Cluster) -> None:
    rc = c.client()
    frozen = uid("frozen")
    inject(rc, frozen, hold=8)
    run = start(c, step(frozen, timeout_seconds=2))
    wait_until(lambda: rc.get(keys.fault_mark_key(frozen, "pid")), what="the step to run")
    pid = c.worker_pid("cmdb-agent")
    os.killpg(pid, signal.SIGSTOP)
    try:
        view = ends(c, run.run_id, timeout=40)
    finally:
        os.killpg(pid, signal.SIGCONT)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_7002"
    timed_out = c.orch.audit_query(ADMIN, event_type="step_timed_out", target=f"{run.run_id}/{frozen}")
    assert timed_out and timed_out[0].actor == "reconciler"


# -- 3. a crash right after a state change ---------------------------------------------------------------------


def test_a_crash_after_a_record_still_releases_the_gated_joins(c: Cluster) -> None:
    rc = c.client()
    a, b, cc, d = uid("a"), uid("b"), uid("c"), uid("d")
    for name in (a, b):
        inject(rc, name, crash_after_record=True)
    run = start(c, step(a), step(b), step(cc, deps=[a, b]), step(d, deps=[b]))  # N shape: gated joins
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert [step_of(view, s).attempts for s in (a, b, cc, d)] == [1, 1, 1, 1]
    assert view.repairs == 0  # the trigger was applied from its outbox entry, not re-dispatched by a repair
    assert not rc.hgetall(keys.run_outbox_key(run.run_id))


def test_a_crash_after_a_record_still_fires_a_multi_step_trigger(c: Cluster) -> None:
    """c waits for a and b, then e and f follow it: a trigger whose canvas c -> [e | f] is stored as its spec. Both
    workers that could fire it die right after recording; its canvas is built from the spec when it is applied."""
    rc = c.client()
    x, a, b, cc, d, e, f = (uid(n) for n in "xabcdef")
    steps = [step(x), step(a, deps=[x]), step(b, deps=[x]), step(cc, deps=[a, b]), step(d, deps=[b])]
    steps += [step(e, deps=[cc]), step(f, deps=[cc])]
    compiled = compile_plan(planned(*steps), "r")
    assert compiled.triggers.canvas_spec(cc) == Chain((Step(cc), Group((Step(e), Step(f)))))
    for name in (a, b):
        inject(rc, name, crash_after_record=True)
    run = start(c, *steps)
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert [step_of(view, s).attempts for s in (x, a, b, cc, d, e, f)] == [1] * 7
    assert view.repairs == 0  # the trigger was applied from its outbox entry, not re-dispatched by a repair
    assert not rc.hgetall(keys.run_outbox_key(run.run_id))


def test_a_crash_after_the_last_record_keeps_the_closing_trail(c: Cluster) -> None:
    rc = c.client()
    last = uid("last")
    inject(rc, last, crash_after_record=True)
    run = start(c, step(last))
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED
    closing = c.orch.audit_query(ADMIN, event_type="workflow_completed", target=run.run_id)
    assert len(closing) == 1 and closing[0].details["steps_completed"] == [last]
    assert len(c.orch.event_history(run_id=run.run_id, types=["workflow.completed"])) == 1


def test_a_crash_after_retries_are_exhausted_keeps_the_dead_letter(c: Cluster) -> None:
    rc = c.client()
    broken = uid("broken")
    inject(rc, broken, fail_times=99, retryable=True, crash_after_record=True)
    run = start(c, step(broken, on_failure="retry", max_retries=1))
    view = ends(c, run.run_id, timeout=60)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_7004"
    letters = [d for d in c.orch.dlq_list(ADMIN, limit=500) if d.get("run_id") == run.run_id]
    assert len(letters) == 1 and letters[0]["reason"] == "retries_exhausted"
    assert len(c.orch.audit_query(ADMIN, event_type="task_failed", target=f"{run.run_id}/{broken}")) == 1


# -- 4. a crash between the record and the broker; the broker down -------------------------------------------------


def test_a_start_on_its_state_redis_is_recorded_and_enqueued_in_one_transaction(c: Cluster) -> None:
    """The broker is the Redis that holds run state: the first message is pushed inside the record's MULTI, so no
    crash can fall between them and the start needs no outbox entry."""
    run, seen = monitored(c, lambda: start(c, step(uid("atomic"))))
    record = next(m for m in seen if m["command"].startswith(f"HSET {keys.run_key(run.run_id)} "))
    ours = [m["command"].split(" ", 1)[0] for m in seen if m["client_port"] == record["client_port"]]
    transaction = ours[ours.index("MULTI") : ours.index("EXEC") + 1]
    assert "HSET" in transaction and "LPUSH" in transaction, ours
    assert "LPUSH" not in ours[ours.index("EXEC") :]  # pushed once, inside the transaction
    assert not c.client().exists(keys.run_outbox_key(run.run_id))
    assert ends(c, run.run_id).status == RunStatus.COMPLETED


def monitored(c: Cluster, action: Any) -> tuple[Any, list[dict[str, Any]]]:
    """``action()``'s result and every command the cluster's Redis ran meanwhile (MONITOR)."""
    seen: list[dict[str, Any]] = []

    def watch() -> None:
        with c.client().monitor() as monitor:
            for command in monitor.listen():
                if command["command"].startswith("ECHO monitor-done"):
                    return
                seen.append(command)

    watcher = threading.Thread(target=watch)
    watcher.start()
    monitoring = lambda: any("O" in client["flags"] for client in c.client().client_list())  # noqa: E731
    wait_until(monitoring, timeout=5, what="MONITOR to attach")
    result = action()
    c.client().echo("monitor-done")
    watcher.join(timeout=10)
    return result, seen


def test_a_chained_step_is_pushed_by_the_finish_script_of_the_step_before(c: Cluster) -> None:
    """The broker is the state Redis: the next link's LPUSH runs inside the finish script (EVALSHA) that records
    its predecessor completed, never as a push of its own from the pool process."""
    a, b, d = uid("a"), uid("b"), uid("d")
    view, seen = monitored(c, lambda: ends(c, start(c, step(a), step(b, deps=[a]), step(d, deps=[b])).run_id))
    assert view.status == RunStatus.COMPLETED and all(s.attempts == 1 for s in view.steps)
    pushes = [(i, m) for i, m in enumerate(seen) if m["command"].startswith("LPUSH ") and view.run_id in m["command"]]
    by_step = {sid: [(i, m) for i, m in pushes if f"'{sid}'" in m["command"]] for sid in (a, b, d)}
    assert [len(found) for found in by_step.values()] == [1, 1, 1], pushes  # each message pushed once
    assert by_step[a][0][1]["client_type"] != "lua"  # the start's, in the creating transaction
    for sid in (b, d):
        index, push = by_step[sid][0]
        assert push["client_type"] == "lua", push
        caller = next(m for m in reversed(seen[:index]) if m["client_type"] != "lua")
        assert caller["command"].startswith("EVALSHA "), caller  # the script that pushed it: a finish
        assert keys.run_key(view.run_id) in caller["command"]


def test_a_chord_header_part_is_counted_by_its_finish_script_not_by_celerys_chord(c: Cluster) -> None:
    """The broker is the state Redis: each header step's finish script counts its part of the join, and the last
    part writes the body into the outbox; no header step stores a Celery result or runs Celery's chord script."""
    a, b, j = uid("a"), uid("b"), uid("j")
    view, seen = monitored(c, lambda: ends(c, start(c, step(a), step(b), step(j, deps=[a, b])).run_id))
    assert view.status == RunStatus.COMPLETED and all(s.attempts == 1 for s in view.steps)
    meta = [m["command"] for m in seen if "celery-task-meta-" in m["command"] and view.run_id in m["command"]]
    assert not [m for m in meta if m.startswith(("SETEX", "SET ", "PUBLISH"))], meta  # no header result stored
    counted = [m for m in seen if m["client_type"] == "lua" and m["command"].startswith("HINCRBY ")]
    assert len([m for m in counted if f"{keys.run_key(view.run_id)} jn:0:" in m["command"]]) == 2
    joins = [
        m for m in seen if m["client_type"] == "lua" and m["command"].startswith("HSET ") and " join:0:" in m["command"]
    ]
    assert len(joins) == 1 and keys.run_outbox_key(view.run_id) in joins[0]["command"]
    assert not c.client().exists(keys.run_outbox_key(view.run_id))  # drained and confirmed at once
    assert not [k for k in c.client().keys("celery-taskset-meta-*") if k.endswith(".s")]  # no size key left behind


def test_a_chord_after_a_step_is_pushed_with_its_size_by_that_steps_finish_script(c: Cluster) -> None:
    """z -> {x, y} -> j: the chord's header messages and its size ride on z's finish script (EVALSHA), as the chain
    handoff does for a step; nothing writes the size or pushes a header message from outside a script."""
    z, x, y, j = uid("z"), uid("x"), uid("y"), uid("j")
    plan = [step(z), step(x, deps=[z]), step(y, deps=[z]), step(j, deps=[x, y])]
    view, seen = monitored(c, lambda: ends(c, start(c, *plan).run_id))
    assert view.status == RunStatus.COMPLETED and all(s.attempts == 1 for s in view.steps)
    sizes = [m for m in seen if m["command"].startswith("SET celery-taskset-meta-") and ".s " in m["command"]]
    assert len(sizes) == 1 and sizes[0]["client_type"] == "lua", sizes
    header = [m for m in seen if m["command"].startswith("LPUSH ") and any(f"'{s}'" in m["command"] for s in (x, y))]
    assert len(header) == 2 and all(m["client_type"] == "lua" for m in header), header
    script = next(m for m in reversed(seen[: seen.index(sizes[0])]) if m["client_type"] != "lua")
    assert script["command"].startswith("EVALSHA ") and keys.run_key(view.run_id) in script["command"]


def test_a_join_its_worker_never_applied_is_applied_by_the_reconciler(c: Cluster) -> None:
    """The last header part was recorded (its body in the outbox) but its worker died before the broker took the
    body: the reconciler drains the entry and the join runs once."""
    a, b, j = uid("a"), uid("b"), uid("j")
    inject(c.client(), b, sleep=0.5, crash_after_record=True)  # the last part: recorded, then its process dies
    run = start(c, step(a), step(b), step(j, deps=[a, b]))
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert step_of(view, j).attempts == 1 and step_of(view, b).attempts == 1
    assert executions(c, run.run_id, j) == 1
    assert view.repairs == 0  # applied from the outbox entry, not re-dispatched by a repair


def test_a_crash_between_recording_a_run_and_enqueueing_it(c: Cluster) -> None:
    """A broker apart from the state Redis (RabbitMQ, another server): the record holds the canvas in its outbox."""
    crashed = Orchestrator(fast_settings(c.url, c.data_dir))
    crashed.dispatcher.outbox.shares_state_redis = False  # as if the broker were elsewhere
    crashed.dispatcher.drain = lambda run_id, only=None: None  # type: ignore[method-assign] - dies before the broker
    crashed.dispatcher.outbox.apply_start = lambda *a, **kw: None  # type: ignore[method-assign] - (a start's seam)
    name = uid("late")
    run = crashed.start_workflow(OPERATOR, definition=definition(step(name)))
    assert c.client().hexists(keys.run_outbox_key(run.run_id), "start:0")
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED and step_of(view, name).attempts == 1
    drained = c.orch.audit_query(ADMIN, event_type="outbox_drained", target=run.run_id)
    assert drained and drained[0].actor == "reconciler"


def test_a_broker_outage_on_enqueue_delays_the_run_and_keeps_its_key(c: Cluster) -> None:
    from tests.servers import free_port

    cut_off = Orchestrator(fast_settings(c.url, c.data_dir))
    cut_off.app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cut_off.app.conf.broker_connection_timeout = 0.5
    cut_off.app.conf.task_publish_retry = False
    key, request = uid("key"), definition(step(uid("wait")))
    run = cut_off.start_workflow(OPERATOR, definition=request, idempotency_key=key)
    assert run.status == RunStatus.RUNNING  # accepted and recorded, not failed
    again = cut_off.start_workflow(OPERATOR, definition=request, idempotency_key=key)  # the client's retry
    assert again.run_id == run.run_id
    view = ends(c, run.run_id)  # the reconciler (with a working broker) enqueues it
    assert view.status == RunStatus.COMPLETED, view.error


def test_run_creation_stays_atomic_after_redis_forgot_its_scripts(c: Cluster) -> None:
    c.client().script_flush()
    run = start(c, step(uid("fresh")))
    assert ends(c, run.run_id).status == RunStatus.COMPLETED
    types = {e.event_type for e in c.orch.audit_query(ADMIN, target=run.run_id, limit=20)}
    assert {"permission_check", "workflow_started", "workflow_completed"} <= types


# -- 5, 6, 9. Redis restarts ------------------------------------------------------------------------------------


def test_redis_restart_while_recording_an_outcome(c: Cluster) -> None:
    rc = c.client()
    write = uid("ticket")
    inject(rc, write, sleep_after=1.5)
    run = start(c, ticket_step(write))
    wait_until(lambda: rc.get(keys.fault_mark_key(write, "after")), what="the ticket write")
    c.server.restart(crash=True)  # AOF with fsync always: nothing acknowledged is lost
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert tickets(c, run.run_id, write) == 1 and executions(c, run.run_id, write) == 1


def test_redis_restart_with_a_task_in_flight_restarts_the_worker_and_the_run_ends(c: Cluster) -> None:
    rc = c.client()
    busy = uid("busy")
    inject(rc, busy, hold=60)
    run = start(c, step(busy))
    wait_until(lambda: rc.get(keys.fault_mark_key(busy, "pid")), what="the step to run")
    restarts_before = c.pool.workers["cmdb-agent"].restarts
    c.server.restart(crash=True)
    seen: set[str] = set()

    def settled() -> bool:
        try:
            status = c.orch.agents.statuses()["cmdb-agent"]
        except Exception:
            return False
        seen.add(status)
        return status == "online" and c.orch.get_run(run.run_id).status == RunStatus.RUNNING

    restarted = time.monotonic()
    wait_until(lambda: time.monotonic() - restarted > 3 and settled(), timeout=40, what="the agent back online")
    release(c.client(), busy)
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert executions(c, run.run_id, busy) == 1
    if c.pool.workers["cmdb-agent"].restarts > restarts_before:  # the worker died with Redis, as kombu makes it
        assert "degraded" in seen or "offline" in seen


def test_redis_crash_mid_run_with_aof(c: Cluster) -> None:
    names = [uid(f"s{i}") for i in range(6)]
    for name in names:
        inject(c.client(), name, sleep=0.3)
    run = start(c, *[step(n, deps=[names[i - 1]] if i else []) for i, n in enumerate(names)])
    wait_until(lambda: len(c.orch.get_run(run.run_id).steps_completed) >= 2, what="two steps done")
    c.server.restart(crash=True)
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    assert all(executions(c, run.run_id, n) == 1 for n in names)


# -- 7. chords, resumes, cancels, deep parameters ---------------------------------------------------------------


def test_a_chord_whose_header_outlives_result_expiry_still_joins(c: Cluster) -> None:
    rc = c.client()
    a, b, j = uid("a"), uid("b"), uid("j")
    inject(rc, a, hold=5)  # the chord counter (result TTL 2 s in this cluster) expires meanwhile
    run = start(c, step(a), step(b), step(j, deps=[a, b]))
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED, view.error
    # The broker is the state Redis here, so the finish scripts count the chord's parts in the run hash (no TTL;
    # ``workers.chord_handoff``): the join fires on time, where Celery's own counter expired and needed a repair.
    parts = {k: v for k, v in rc.hgetall(keys.run_key(run.run_id)).items() if k.startswith("jn:")}
    assert list(parts.values()) == ["2"]
    assert step_of(view, j).attempts == 1 and view.repairs == 0


def test_two_concurrent_resumes_run_the_rest_once(c: Cluster) -> None:
    rc = c.client()
    flaky = uid("flaky")
    inject(rc, flaky, fail_times=1, retryable=False)
    failed = ends(c, start(c, step(flaky)).run_id)
    assert failed.status == RunStatus.FAILED
    outcomes: list[str] = []

    def resume() -> None:
        try:
            c.orch.resume_run(OPERATOR, failed.run_id)
            outcomes.append("ok")
        except InvalidStateTransitionError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["ORCH_3002", "ok"]
    view = ends(c, failed.run_id)
    assert view.status == RunStatus.COMPLETED and view.generation == 1
    assert executions(c, failed.run_id, flaky) == 1


def test_cancel_then_immediate_resume_never_runs_a_step_twice(c: Cluster) -> None:
    rc = c.client()
    held = uid("held")
    inject(rc, held, hold=60)
    run = start(c, step(held))
    wait_until(lambda: rc.get(keys.fault_mark_key(held, "pid")), what="the step to run")
    cancelled = c.orch.cancel_run(OPERATOR, run.run_id)
    assert step_of(cancelled, held).stopped == "interrupted"
    resumed = c.orch.resume_run(OPERATOR, run.run_id)
    assert resumed.generation == 1
    release(rc, held)
    view = ends(c, run.run_id)
    assert view.status == RunStatus.COMPLETED
    assert executions(c, run.run_id, held) == 1


def test_cancel_terminates_a_step_that_does_not_listen(c: Cluster) -> None:
    rc = c.client()
    deaf = uid("deaf")
    inject(rc, deaf, hold=60, deaf=True)
    run = start(c, step(deaf))
    wait_until(lambda: rc.get(keys.fault_mark_key(deaf, "pid")), what="the step to run")
    cancelled = c.orch.cancel_run(OPERATOR, run.run_id)
    assert cancelled.status == RunStatus.CANCELLED
    assert step_of(cancelled, deaf).status == StepStatus.CANCELLED and step_of(cancelled, deaf).stopped == "terminated"
    pid = int(rc.get(keys.fault_mark_key(deaf, "pid")))
    wait_until(lambda: not _alive(pid), timeout=10, what="the stuck process to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_parameters_too_deep_to_read_back_are_refused_at_the_front_door(c: Cluster) -> None:
    from orchestrator.errors import InputInvalidError

    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(250):
        cursor["x"] = {}
        cursor = cursor["x"]
    with pytest.raises(InputInvalidError, match="nested more than 32 levels"):
        c.orch.execute_task(OPERATOR, action="cmdb.query", parameters={"name": "x", "filters": deep})


# -- 8. poison messages -----------------------------------------------------------------------------------------


def test_malformed_messages_are_refused_and_the_worker_goes_on(c: Cluster) -> None:
    pid = c.worker_pid("cmdb-agent")
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(500):
        cursor["a"] = {}
        cursor = cursor["a"]
    queue = keys.agent_queue("cmdb-agent")
    with Connection(c.url) as connection:
        producer = Producer(connection.default_channel)
        send = {"routing_key": queue, "exchange": ""}
        producer.publish(
            b"not json",
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": keys.TASK_RUN_STEP, "id": "p1"},
            **send,
        )
        producer.publish([1, 2], serializer="json", headers={"task": keys.TASK_RUN_STEP, "id": "p2"}, **send)
        producer.publish({"a": 1}, serializer="json", **send)
        producer.publish([[], {}, {}], serializer="json", headers={"task": "no.such.task", "id": "p4"}, **send)
        kwargs = {"run_id": "r", "step_id": "s", "generation": 0, "extra": deep}
        producer.publish([[], kwargs, {}], serializer="json", headers={"task": keys.TASK_RUN_STEP, "id": "p5"}, **send)
    wait_until(
        lambda: len(c.orch.audit_query(ADMIN, event_type="message_refused", limit=100)) >= 5,
        what="five refusals audited",
    )
    run = start(c, step(uid("after")))
    assert ends(c, run.run_id).status == RunStatus.COMPLETED
    assert c.worker_pid("cmdb-agent") == pid  # the same worker process, never restarted
    # ... with its whole concurrency: the message too deep to pickle for a pool process used to keep a slot for good
    rc = c.client()
    held = [uid("held") for _ in range(2)]
    for step_id in held:
        inject(rc, step_id, hold=30)
    both = start(c, *(step(step_id) for step_id in held))
    marks = [keys.fault_mark_key(step_id, "pid") for step_id in held]
    wait_until(lambda: all(rc.exists(mark) for mark in marks), timeout=10, what="two steps at once on two processes")
    for step_id in held:
        release(rc, step_id)
    assert ends(c, both.run_id).status == RunStatus.COMPLETED
    letters = [d for d in c.orch.dlq_list(ADMIN, reason="malformed", limit=100)]
    assert len(letters) >= 5 and all(d["error"]["code"] == "ORCH_4002" for d in letters)


def test_a_step_that_kills_its_worker_every_time_is_dead_lettered_after_the_cap(c: Cluster) -> None:
    rc = c.client()
    killer = uid("killer")
    inject(rc, killer, exit_times=99)
    run = start(c, step(killer))
    view = ends(c, run.run_id)
    assert view.status == RunStatus.FAILED and view.error is not None and view.error.code == "ORCH_7005"
    letters = [d for d in c.orch.dlq_list(ADMIN, reason="delivery_limit", limit=100) if d["run_id"] == run.run_id]
    assert len(letters) == 1
    assert int(rc.get(keys.fault_mark_key(killer, "deliveries"))) == 3  # delivered three times, then refused


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's pid


def test_two_workers_of_one_agent_share_its_queue_and_it_stays_online_when_one_dies(c: Cluster) -> None:
    """Scale an agent out by starting a second worker; kill that one: the agent keeps working, and health drops the
    dead instance within a lease's time instead of listing it (or turning the agent offline)."""
    from orchestrator.runtime.procs import WorkerPool, instance_of
    from tests.integration.cluster import FAST

    extra = WorkerPool(c.url)
    extra.start(["cmdb-agent"], concurrency=1, extra_env={**FAST, "ORCH_DATA_DIR": str(c.data_dir)})
    try:
        extra.wait_ready(timeout=60)
        first, second = c.worker_pid("cmdb-agent"), extra.pid("cmdb-agent")
        assert second is not None
        instances = {instance_of("cmdb-agent", first), instance_of("cmdb-agent", second)}
        assert instances <= set(c.orch.agents.heartbeats()["cmdb-agent"]["workers"])

        rc = c.client()
        held = [uid("held") for _ in range(3)]  # three steps at once: the first worker has only two processes
        for step_id in held:
            inject(rc, step_id, hold=30)
        run = start(c, *(step(step_id) for step_id in held))
        marks = [keys.fault_mark_key(step_id, "pid") for step_id in held]
        wait_until(lambda: all(rc.exists(mark) for mark in marks), what="all three held steps running at once")
        assert {_parent_of(int(rc.get(mark))) for mark in marks} == {first, second}
        for step_id in held:
            release(rc, step_id)
        assert ends(c, run.run_id).status == RunStatus.COMPLETED

        extra.kill("cmdb-agent")  # idle now: it holds no message
        gone = instance_of("cmdb-agent", second)
        wait_until(
            lambda: gone not in c.orch.agents.heartbeats()["cmdb-agent"]["workers"],
            timeout=15,
            what="the dead instance to leave the agent's workers",
        )
        assert c.orch.agents.health_view("cmdb-agent")["current_status"] == "online"
        after = c.orch.execute_task(OPERATOR, action="cmdb.ping")
        assert ends(c, after.run_id).status == RunStatus.COMPLETED
    finally:
        extra.stop(timeout=5)
