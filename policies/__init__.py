"""Role policies: who may run which action. Pure: imports nothing from ``orchestrator`` or ``workers``.

Why pure: the same decision runs in the front door (before enqueue) and in every worker (before
execution); keeping it free of I/O and project imports makes it cheap, testable and safe to call anywhere.
"""

from policies.decision import decide
from policies.defaults import DEFAULT_POLICIES, DEFAULT_TABLE
from policies.errors import PolicyConfigError
from policies.loader import load_policy_file, parse_policies, save_policy_file
from policies.models import ACCESS_LEVELS, DOMAINS, Decision, Permission, RolePolicy
from policies.principals import PRINCIPAL_GRANTS, PRINCIPAL_OPERATIONS, operations_for, principal_may
from policies.table import PolicyTable

__all__ = [
    "ACCESS_LEVELS",
    "DEFAULT_POLICIES",
    "DEFAULT_TABLE",
    "DOMAINS",
    "PRINCIPAL_GRANTS",
    "PRINCIPAL_OPERATIONS",
    "Decision",
    "Permission",
    "PolicyConfigError",
    "PolicyTable",
    "RolePolicy",
    "decide",
    "load_policy_file",
    "operations_for",
    "parse_policies",
    "principal_may",
    "save_policy_file",
]
