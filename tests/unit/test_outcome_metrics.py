"""Outcome metrics on fakeredis: each state change counts itself once, in the script or pipeline that makes it,
and ``/metrics`` turns the counters into Prometheus families (cumulative histogram buckets, retries, queues).

The live test with real workers, every front door and the HTTP API is ``tests/integration/test_metrics_live.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import keys
from orchestrator.errors import RetryableTaskError, RoleViolationError, TaskExecutionError
from orchestrator.metrics import prometheus as metrics
from orchestrator.models.common import StepStatus
from orchestrator.models.run import ErrorInfo
from orchestrator.runtime.broker import BrokerProbe
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.state import outcome_metrics
from orchestrator.state import step_records as records
from tests.unit.test_http_fixtures import service  # noqa: F401 - the fixture

OPS = Principal("otto", "operator")


def counters(svc: Orchestrator) -> dict[str, int]:
    return {name: int(float(value)) for name, value in svc.redis.hgetall(keys.METRICS).items()}


def finish(svc: Orchestrator, run_id: str, step_id: str, status: StepStatus, effect: str, **kw: Any) -> Any:
    """Begin and finish one step as a worker would."""
    assert svc.runs.begin_step(run_id, step_id).verdict == "run"
    return svc.runs.finish_step(run_id, step_id, status, effect=effect, **kw)


def test_a_completed_run_counts_its_start_its_steps_their_durations_and_its_end(service: Orchestrator) -> None:  # noqa: F811
    view = service.start_workflow(OPS, template_id="cmdb-health-check", parameters={}, source="cli")
    for step in view.steps:
        finish(service, view.run_id, step.step_id, StepStatus.COMPLETED, "done", started=time.time() - 0.3)
    seen = counters(service)
    assert seen[outcome_metrics.field("runs_started", "cmdb-health-check", "cli")] == 1
    assert seen[outcome_metrics.field("runs_finished", "cmdb-health-check", "cli", "completed")] == 1
    per_action = Counter((step.agent_id, step.action) for step in view.steps)
    for labels, n in per_action.items():
        assert seen[outcome_metrics.field("step_attempts", *labels, "completed")] == n
        assert seen[outcome_metrics.field("step_seconds", *labels, "3")] == n  # 0.25 < 0.3 <= 0.5: bucket 3
    assert not [name for name in seen if name.startswith(("runs_finished|cmdb-health-check|cli|f", "dead_letters"))]


def test_a_failed_run_counts_its_failed_step_its_dead_letter_and_its_end_once(service: Orchestrator) -> None:  # noqa: F811
    view = service.execute_task(OPS, action="cmdb.ping", source="mcp")
    spec = service.runs.plan(view.run_id).steps[0]
    error = TaskExecutionError("boom with \"duration_ms\": 5 and 'action' inside")
    run_error = records.run_error_for(spec, error)
    recs = records.failed("w", view.run_id, spec, 1, error, run_error=run_error, dead_letter_reason="retries_exhausted")
    info = ErrorInfo(**error.to_dict())
    first = finish(
        service,
        view.run_id,
        "task",
        StepStatus.FAILED,
        "stop",
        started=time.time(),
        error=info,
        records=recs,
        run_error=run_error,
    )
    again = service.runs.finish_step(view.run_id, "task", StepStatus.FAILED, effect="stop", started=None, records=recs)
    assert first.run_ended is not None and again.duplicate
    seen = counters(service)
    assert seen["runs_started|inline|mcp"] == 1
    assert seen["runs_finished|inline|mcp|failed"] == 1
    assert seen["step_attempts|cmdb-agent|cmdb.ping|failed"] == 1
    assert seen["dead_letters|retries_exhausted"] == 1
    assert seen["step_seconds|cmdb-agent|cmdb.ping|0"] == 1


def test_retries_denials_at_the_worker_and_cancels_count_where_they_happen(service: Orchestrator) -> None:  # noqa: F811
    view = service.execute_task(OPS, action="cmdb.ping", source="http")
    info = ErrorInfo(**RetryableTaskError("again").to_dict())
    finish(service, view.run_id, "task", StepStatus.RETRYING, "retry", started=time.time(), error=info)
    finish(service, view.run_id, "task", StepStatus.DENIED, "stop", started=None, error=info, run_error=info)
    cancelled = service.execute_task(OPS, action="cmdb.ping", source="chat")
    service.cancel_run(OPS, cancelled.run_id)
    seen = counters(service)
    assert seen["step_attempts|cmdb-agent|cmdb.ping|retried"] == 1
    assert seen["step_attempts|cmdb-agent|cmdb.ping|denied"] == 1
    assert seen["policy_denials|worker|cmdb.ping"] == 1
    assert seen["runs_finished|inline|http|failed"] == 1
    assert seen["runs_finished|inline|chat|cancelled"] == 1
    assert "step_seconds|cmdb-agent|cmdb.ping|" + str(len(outcome_metrics.STEP_SECONDS_BUCKETS)) not in seen


def test_labels_come_from_the_step_itself_not_from_its_parameters(service: Orchestrator) -> None:  # noqa: F811
    params = {"ci_class": "server", "name": "n", "fields": {"action": "evil.thing", "agent_id": "evil-agent"}}
    view = service.execute_task(OPS, action="cmdb.create", parameters=params, source="http")
    finish(service, view.run_id, "task", StepStatus.COMPLETED, "done", started=time.time(), result={"duration_ms": 9})
    seen = counters(service)
    assert seen["step_attempts|cmdb-agent|cmdb.create|completed"] == 1
    assert seen["step_seconds|cmdb-agent|cmdb.create|0"] == 1
    assert not [name for name in seen if "evil" in name]


def test_a_denial_at_dispatch_and_a_resume_count_too(service: Orchestrator) -> None:  # noqa: F811
    sneaky = {
        "name": "t",
        "steps": [
            {
                "step_id": "w",
                "action": "cmdb.update",
                "agent": "itom-auditor",
                "parameters": {"ci_id": "x", "fields": {}},
            }
        ],
    }
    with pytest.raises(RoleViolationError):
        service.start_workflow(OPS, definition=sneaky, source="http")
    view = service.execute_task(OPS, action="cmdb.ping", source="cli")
    service.cancel_run(OPS, view.run_id)
    service.resume_run(OPS, view.run_id)
    seen = counters(service)
    assert seen["policy_denials|dispatch|cmdb.update"] == 1
    assert "runs_started|inline|http" not in seen  # a denied plan never started
    assert seen["runs_resumed|inline|cli"] == 1


def test_reconciler_repairs_are_counted_by_kind(service: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(service.reconciler, "stalled", lambda now: 2)
    assert service.reconciler.tick()["stalled"] == 2
    assert counters(service)["reconciler|stalled"] == 2


def test_metrics_exposes_cumulative_histograms_retries_and_queue_depth(
    service: Orchestrator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = service.redis.pipeline()
    for bucket, count in (("0", 2), ("3", 1), (str(len(outcome_metrics.STEP_SECONDS_BUCKETS)), 1)):
        outcome_metrics.count_to(pipe, "step_seconds", "cmdb-agent", "cmdb.ping", bucket, by=count)
    pipe.hincrbyfloat(keys.METRICS, "step_seconds_sum|cmdb-agent|cmdb.ping", 4000.5)
    outcome_metrics.count_to(pipe, "step_attempts", "cmdb-agent", "cmdb.ping", "retried", by=3)
    pipe.execute()
    monkeypatch.setattr(BrokerProbe, "queue_depths", lambda self, queues: dict.fromkeys(queues, 4))
    families = {f.name: f for f in text_string_to_metric_families(metrics.render(service).decode())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in families["orch_step_duration_seconds"].samples
    }
    labels = (("action", "cmdb.ping"), ("agent", "cmdb-agent"))
    assert samples[("orch_step_duration_seconds_bucket", (*labels, ("le", "0.05")))] == 2
    assert samples[("orch_step_duration_seconds_bucket", (*labels, ("le", "0.5")))] == 3
    assert samples[("orch_step_duration_seconds_bucket", (*labels, ("le", "3600.0")))] == 3
    assert samples[("orch_step_duration_seconds_bucket", (*labels, ("le", "+Inf")))] == 4
    assert samples[("orch_step_duration_seconds_count", labels)] == 4
    assert samples[("orch_step_duration_seconds_sum", labels)] == 4000.5
    retries = families["orch_step_retries"].samples
    assert [(s.labels, s.value) for s in retries if s.name.endswith("_total")] == [
        ({"agent": "cmdb-agent", "action": "cmdb.ping"}, 3.0)
    ]
    depth = {s.labels["queue"]: s.value for s in families["orch_queue_depth"].samples}
    assert depth[keys.agent_queue("asset-agent")] == 4 and len(depth) == 6


def test_a_broker_outage_leaves_the_counters_exported(service: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    def unreachable(self: BrokerProbe, queues: list[str]) -> dict[str, int]:
        raise ConnectionError("broker down")

    monkeypatch.setattr(BrokerProbe, "queue_depths", unreachable)
    service.execute_task(OPS, action="cmdb.ping", source="http")
    text = metrics.render(service).decode()
    assert 'orch_runs_started_total{source="http",template="inline"} 1.0' in text
    assert "orch_queue_depth{" not in text


def test_queue_depth_counts_every_priority_level_in_one_pipeline(
    fake_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import Celery

    probe = BrokerProbe(Celery(broker="redis://127.0.0.1:1/0", set_as_current=False))
    monkeypatch.setattr(probe, "_client", lambda: fake_redis)
    fake_redis.rpush("agent.cmdb-agent", "m1", "m2")
    fake_redis.rpush("agent.cmdb-agent:3", "m3")
    fake_redis.rpush("agent.cmdb-agent:9", "m4")
    fake_redis.rpush("agent.asset-agent:1", "m5")
    assert probe.queue_depths(["agent.cmdb-agent", "agent.asset-agent", "agent.csa-agent"]) == {
        "agent.cmdb-agent": 4,
        "agent.asset-agent": 1,
        "agent.csa-agent": 0,
    }
