"""Agents on real workers: exactly-once writes across a worker crash, dead letters, messaging, health."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import keys
from orchestrator.models.common import RunStatus
from orchestrator.runtime.procs import WorkerPool
from orchestrator.service import Orchestrator
from tests.integration.helpers import (
    ADMIN,
    OPERATOR,
    definition,
    inject,
    release,
    run_and_wait,
    step,
    uid,
    wait_until,
)
from workers.sample.instance import SampleInstance

pytestmark = pytest.mark.integration


def test_worker_killed_mid_write_leaves_exactly_one_ticket(
    orch: Orchestrator, rclient: Any, integration_data_dir: Path
) -> None:
    step_id = uid("ticket")
    inject(rclient, step_id, sleep_after=2.0)  # window between the ticket write and its record
    started = orch.start_workflow(
        OPERATOR,
        definition=definition(
            step(step_id, "csa.run_remediation", parameters={"summary": "kill test", "risk_level": "low"})
        ),
    )
    wait_until(lambda: rclient.get(keys.fault_mark_key(step_id, "after")), what="the ticket write")
    pid = int(rclient.get(keys.fault_mark_key(step_id, "pid")))
    os.kill(pid, signal.SIGKILL)  # the pool process executing the step dies after its side effect

    view = orch.wait_for_run(started.run_id, timeout=60)
    assert view.status == RunStatus.COMPLETED, view.error
    assert view.steps[0].attempts == 2  # redelivered after the crash
    instance = SampleInstance(integration_data_dir / "sample-instance.sqlite")
    assert instance.count_tickets(idempotency_key=f"{started.run_id}:{step_id}") == 1


def test_dead_letter_redrive_resumes_the_run(orch: Orchestrator, rclient: Any) -> None:
    broken = uid("broken")
    inject(rclient, broken, fail_times=99, retryable=True)
    failed = run_and_wait(orch, definition(step(broken, on_failure="retry", max_retries=1)))
    assert failed.status == RunStatus.FAILED
    letter = next(d for d in orch.dlq_list(ADMIN) if d["run_id"] == failed.run_id)
    assert letter["error"]["code"] == "ORCH_7004" and letter["action"] == "cmdb.ping"
    rclient.delete(keys.fault_key(broken))  # the operator fixed the cause
    outcome = orch.dlq_redrive(ADMIN, letter["dlq_id"])
    assert outcome["run_id"] == failed.run_id
    assert orch.wait_for_run(failed.run_id, timeout=30).status == RunStatus.COMPLETED
    assert orch.dlq_show(ADMIN, letter["dlq_id"])["redriven"]["run_id"] == failed.run_id


def test_messages_are_delivered_by_priority_and_expired_ones_dead_lettered(orch: Orchestrator, rclient: Any) -> None:
    agent = "itom-documentator"  # one pool process in the test pool: deliveries happen in broker order
    busy = uid("busy")
    inject(rclient, busy, hold=30)
    blocker = orch.start_workflow(
        OPERATOR, definition=definition(step(busy, "documentation.diagram", parameters={"ci_id": "web-prod-01"}))
    )
    wait_until(lambda: rclient.get(keys.fault_mark_key(busy, "pid")), what=f"{agent} busy")
    tag = uid("m")
    for label, priority in (
        ("low", "low"),
        ("normal-1", "normal"),
        ("critical", "critical"),
        ("high", "high"),
        ("normal-2", "normal"),
    ):
        orch.send_message(
            OPERATOR,
            sender="cmdb-agent",
            recipient=agent,
            message_type=tag,
            payload={"label": label},
            priority=priority,
        )
    expired = orch.send_message(
        OPERATOR,
        sender="cmdb-agent",
        recipient=agent,
        message_type=tag,
        payload={"label": "stale"},
        priority="critical",
        expires_in_seconds=0.3,
    )
    sent = time.monotonic()
    wait_until(lambda: time.monotonic() - sent > 0.6, what="the stale message's expiry to pass")
    release(rclient, busy)  # the documentator becomes free only now, with every message queued
    assert orch.wait_for_run(blocker.run_id, timeout=30).status == RunStatus.COMPLETED

    def delivered() -> list[str]:
        inbox = [m for m in orch.inbox(OPERATOR, agent, limit=200) if m["message_type"] == tag]
        return [m["payload"]["label"] for m in reversed(inbox)] if len(inbox) >= 5 else []

    assert wait_until(delivered, what="five deliveries") == ["critical", "high", "normal-1", "normal-2", "low"]
    letters = wait_until(
        lambda: [
            d for d in orch.dlq_list(ADMIN, reason="expired") if d["params"].get("message_id") == expired["message_id"]
        ],
        what="expiry",
    )
    assert letters[0]["agent_id"] == agent


def test_agent_health_is_real(orch: Orchestrator, worker_pool: WorkerPool) -> None:
    health = orch.health()
    assert health["connected_agents"] == 6 and health["total_registered_agents"] == 6
    view = orch.agents.health_view("cmdb-agent", force=True)
    assert view["current_status"] == "online"
    assert view["latest_check"]["details"]["ping"]  # a worker on agent.cmdb-agent answered
