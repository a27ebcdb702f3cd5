"""Policies enforced twice on real workers: at dispatch (nothing enqueued) and on the worker (forged messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator import keys
from orchestrator.dispatch.dispatcher import new_run_id
from orchestrator.errors import RoleViolationError
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.models.workflow import WorkflowDefinition, WorkflowStep
from orchestrator.service import Orchestrator
from orchestrator.workflows.dag import plan as plan_workflow
from tests.integration.helpers import ADMIN, OPERATOR, definition, step, uid
from workers.sample.instance import SampleInstance

pytestmark = pytest.mark.integration


def _queued(rclient: Any, agent_id: str) -> int:
    queue = keys.agent_queue(agent_id)
    return sum(int(rclient.llen(name)) for name in [queue, *(f"{queue}:{p}" for p in range(1, 10))])


def test_denied_write_is_audited_emits_policy_denied_and_never_reaches_a_queue(
    orch: Orchestrator, rclient: Any
) -> None:
    step_id = uid("sneaky")
    runs_before = rclient.zcard(keys.RUNS_INDEX)
    queued_before = _queued(rclient, "itom-auditor")
    bad = definition(
        step(
            step_id,
            "cmdb.update",
            agent="itom-auditor",
            parameters={"ci_id": "web-prod-01", "fields": {"owner": "mallory"}},
        )
    )
    with pytest.raises(RoleViolationError) as caught:
        orch.start_workflow(OPERATOR, definition=bad)
    assert caught.value.code == "ORCH_6001" and caught.value.http_status == 403
    assert rclient.zcard(keys.RUNS_INDEX) == runs_before
    assert _queued(rclient, "itom-auditor") == queued_before
    denied = orch.audit_query(ADMIN, event_type="permission_denied", limit=20)
    assert any(e.details.get("step_id") == step_id and e.result == "failure" for e in denied)
    events = orch.event_history(types=["policy.denied"], limit=1000)
    assert any(e.payload.get("step_id") == step_id for e in events)


def test_forged_message_on_the_wrong_queue_is_refused_audited_and_never_executed(
    orch: Orchestrator, integration_data_dir: Path
) -> None:
    step_id = uid("forged")
    write = WorkflowStep(
        step_id=step_id, action="cmdb.update", parameters={"ci_id": "web-prod-01", "fields": {"owner": "mallory"}}
    )
    plan = plan_workflow(WorkflowDefinition(name="forged", steps=[write]), {})
    run_id = new_run_id()
    orch.runs.create(run_id, plan, created_by="mallory")  # bypasses dispatch on purpose
    orch.runs.transition(run_id, RunStatus.RUNNING)
    orch.app.send_task(
        keys.TASK_RUN_STEP,
        kwargs={"run_id": run_id, "step_id": step_id, "generation": 0},
        queue=keys.agent_queue("itom-auditor"),
    )

    view = orch.wait_for_run(run_id, timeout=30)
    assert view.status == RunStatus.FAILED
    assert view.steps[0].status == StepStatus.DENIED and view.steps[0].attempts == 1
    assert view.error is not None and view.error.code == "ORCH_6001"
    refusals = orch.audit_query(ADMIN, event_type="permission_denied", target=f"{run_id}/{step_id}")
    assert refusals and refusals[0].actor == "worker:itom-auditor" and refusals[0].details["where"] == "worker"
    ci = SampleInstance(integration_data_dir / "sample-instance.sqlite").find_ci("web-prod-01")
    assert ci is not None and ci.get("owner") != "mallory"
    letters = orch.dlq_list(ADMIN, reason="refused")
    assert any(d["run_id"] == run_id for d in letters)


def test_message_with_extra_fields_is_refused(orch: Orchestrator) -> None:
    run_id, step_id = new_run_id(), uid("extra")
    orch.app.send_task(
        keys.TASK_RUN_STEP,
        kwargs={"run_id": run_id, "step_id": step_id, "action": "cmdb.delete"},
        queue=keys.agent_queue("cmdb-agent"),
    )
    from tests.integration.helpers import wait_until

    entries = wait_until(
        lambda: orch.audit_query(ADMIN, event_type="message_refused", target=f"{run_id}/{step_id}"),
        what="refusal audit",
    )
    assert "unexpected message fields" in entries[0].details["reason"]
    letters = orch.dlq_list(ADMIN, reason="malformed")
    assert any(d["run_id"] == run_id and d["error"]["code"] == "ORCH_4002" for d in letters)


def test_viewer_can_read_but_not_start(orch: Orchestrator) -> None:
    from orchestrator.security.principals import Principal

    viewer = Principal("val", "viewer")
    runs_before = orch.list_runs(limit=1)[1]
    with pytest.raises(RoleViolationError):
        orch.start_workflow(viewer, definition=definition(step(uid("v"))))
    assert orch.list_runs(limit=1)[1] == runs_before  # nothing was recorded
