"""``decide()``: the one function dispatch and workers call to check a role against an action.

Why a module-level function: callers that have no custom policy file need no table in hand; they get the
compiled default table. Callers with a file pass the ``PolicyTable`` from ``load_policy_file``.
"""

from __future__ import annotations

from policies.defaults import DEFAULT_TABLE
from policies.models import Decision
from policies.table import PolicyTable


def decide(role: str, action: str, domain: str | None, access: str, policies: PolicyTable | None = None) -> Decision:
    """May ``role`` run ``action`` (in ``domain``, needing ``access``)? Never raises; see ``policies.table``."""
    return (DEFAULT_TABLE if policies is None else policies).decide(role, action, domain, access)
