"""Planned steps for tests that need a plan without the planner: a read-only ``cmdb.ping`` on cmdb-agent."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.models.common import Access, FailurePolicy
from orchestrator.models.workflow import PlannedStep


def planned_step(step_id: str, deps: Iterable[str] = (), *, timeout_seconds: float = 5.0) -> PlannedStep:
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
        depends_on=tuple(deps),
        on_failure=FailurePolicy.STOP,
        max_retries=0,
        timeout_seconds=timeout_seconds,
    )
