"""What the people and programs calling the front doors may do (principals, not agents).

Why separate from agent roles: a principal's role (admin, operator, viewer) comes from the bearer token
and guards front-door operations; an agent's role guards actions inside workers. Mixing them would let a
token name an agent role and bypass the worker check.

- viewer: look (runs, templates, agents, events) and read the audit log;
- operator: also start, cancel and resume work, send messages, read and re-drive dead letters, add and remove
  schedules, put agents in maintenance and back;
- admin: everything, including exporting and verifying the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

PrincipalOperation = Literal[
    "read",
    "start",
    "cancel",
    "resume",
    "audit.read",
    "audit.export",
    "audit.verify",
    "dlq.read",
    "dlq.redrive",
    "message.send",
    "schedule.manage",
    "agent.status",
]

PRINCIPAL_OPERATIONS: frozenset[str] = frozenset(get_args(PrincipalOperation))

_VIEWER = frozenset({"read", "audit.read"})
_OPERATOR = _VIEWER | {"start", "cancel", "resume", "message.send", "dlq.read", "dlq.redrive"}
_OPERATOR |= {"schedule.manage", "agent.status"}

PRINCIPAL_GRANTS: Mapping[str, frozenset[str]] = MappingProxyType(
    {"viewer": _VIEWER, "operator": _OPERATOR, "admin": PRINCIPAL_OPERATIONS}
)


def principal_may(role: str, operation: str) -> bool:
    """True when a principal with ``role`` may perform ``operation``; unknown roles and operations are refused."""
    return operation in PRINCIPAL_GRANTS.get(role, frozenset())


def operations_for(role: str) -> frozenset[str]:
    """Every operation ``role`` may perform (empty for an unknown role)."""
    return PRINCIPAL_GRANTS.get(role, frozenset())
