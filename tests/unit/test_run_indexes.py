"""Listing indexes and the per-run event index stay true through every status change (scripts keep them)."""

from __future__ import annotations

from orchestrator import keys
from orchestrator.security.principals import Principal
from orchestrator.state import run_listing
from tests.unit.test_http_fixtures import build_service, complete_run

ADA = Principal("ada", "admin")
TEMPLATE = "cmdb-health-check"


def where(service: object, run_id: str) -> set[str]:
    redis = service.redis  # type: ignore[attr-defined]
    found = {s for s in run_listing.STATUSES if redis.zscore(keys.runs_by_status(s), run_id) is not None}
    found |= {
        f"{TEMPLATE}:{s}"
        for s in run_listing.STATUSES
        if redis.zscore(keys.runs_by_template_status(TEMPLATE, s), run_id) is not None
    }
    return found


def test_status_indexes_follow_every_status_change() -> None:
    service = build_service()
    done = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    cancelled = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    assert where(service, done.run_id) == {done.status.value, f"{TEMPLATE}:{done.status.value}"}
    complete_run(service, done.run_id)
    assert where(service, done.run_id) == {"completed", f"{TEMPLATE}:completed"}
    service.cancel_run(ADA, cancelled.run_id)
    assert where(service, cancelled.run_id) == {"cancelled", f"{TEMPLATE}:cancelled"}
    service.resume_run(ADA, cancelled.run_id)
    assert where(service, cancelled.run_id) == {"running", f"{TEMPLATE}:running"}
    page, total = service.list_runs(status="completed", template_id=TEMPLATE)
    assert ([v.run_id for v in page], total) == ([done.run_id], 1)
    page, total = service.list_runs(template_id=TEMPLATE)
    assert ([v.run_id for v in page], total) == ([cancelled.run_id, done.run_id], 2)


def test_expired_runs_leave_the_indexes_when_a_listing_meets_them() -> None:
    service = build_service()
    gone = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    kept = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    service.redis.delete(keys.run_key(gone.run_id))  # what the retention TTL does
    page, total = service.list_runs(template_id=TEMPLATE)
    assert ([v.run_id for v in page], total) == ([kept.run_id], 1)
    assert service.redis.zscore(keys.RUNS_INDEX, gone.run_id) is None


def test_runs_created_before_the_indexes_are_backfilled_once() -> None:
    service = build_service()
    old = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    status = old.status.value
    service.redis.zrem(keys.runs_by_status(status), old.run_id)
    service.redis.zrem(keys.runs_by_template(TEMPLATE), old.run_id)
    service.redis.hdel(keys.run_key(old.run_id), "ct", "tpl")
    service.redis.delete(keys.RUNS_INDEXED_MARK)
    page, _ = service.list_runs(status=status, template_id=TEMPLATE)
    assert [v.run_id for v in page] == [old.run_id]
    assert service.redis.hget(keys.run_key(old.run_id), "tpl") == TEMPLATE


def test_a_runs_history_reads_only_its_own_events() -> None:
    service = build_service()
    for n in range(50):
        service.events.emit("noise.event", {"n": n}, run_id=f"other-{n}")
    run = service.start_workflow(ADA, template_id=TEMPLATE, parameters={})
    complete_run(service, run.run_id)
    ids = service.events.run_event_ids(run.run_id)
    history = service.event_history(run_id=run.run_id, limit=1000)
    assert [e.stream_id for e in history] == ids
    assert {e.correlation_id for e in history} == {run.run_id}
    assert history[0].event_type == "workflow.started"
    assert service.event_history(run_id=run.run_id, after=ids[0], limit=1000)[0].stream_id == ids[1]
