"""The one error the policies package raises.

Why a ``ValueError`` and not an ``OrchestratorError``: this package imports nothing of the project, so
callers in ``orchestrator`` translate it (into ``RoleConfigInvalidError``, ORCH_6003) at their boundary.
"""

from __future__ import annotations


class PolicyConfigError(ValueError):
    """A policy file or table is unusable; the message names the file, the entry and the field to fix."""
