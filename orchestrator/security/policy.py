"""The orchestrator's side of role policies: load the table once, check plan steps against it.

Why a gate object: dispatch and workers both ask the same question (may this agent's role run this step?)
with the same table; the pure ``policies`` package answers it and this module adapts errors and settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.errors import RoleConfigInvalidError
from orchestrator.models.workflow import PlannedStep
from orchestrator.settings import Settings
from policies import DEFAULT_TABLE, Decision, PolicyConfigError, PolicyTable, decide, load_policy_file


def load_table(settings: Settings) -> PolicyTable:
    """The default roles, overridden by ``ORCH_POLICY_FILE`` when set (errors become ORCH_6003)."""
    if settings.policy_file is None:
        return DEFAULT_TABLE
    try:
        return load_policy_file(settings.policy_file)
    except PolicyConfigError as exc:
        raise RoleConfigInvalidError(str(exc), {"policy_file": str(settings.policy_file)}) from exc


class PolicyGate:
    """Checks steps against the role of the agent that will run them."""

    def __init__(self, table: PolicyTable) -> None:
        self.table = table

    def check(self, role: str, step: PlannedStep) -> Decision:
        return decide(role, step.action, step.target_domain, step.access.value, self.table)

    def first_denied(self, steps: Iterable[PlannedStep]) -> tuple[PlannedStep, Decision] | None:
        for step in steps:
            decision = self.check(step.agent_id, step)
            if not decision.allowed:
                return step, decision
        return None
