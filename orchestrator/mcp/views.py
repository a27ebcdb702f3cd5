"""Read views shared by both front doors (the original's registry and health shapes).

Why here: HTTP routes and MCP tools must answer these questions with the same fields; the agent directory
holds the data, this module only validates filters and assembles the original's response shapes. It lives
in the MCP package because the HTTP app already depends on it (the reverse would be an import cycle).
"""

from __future__ import annotations

from typing import Any

from orchestrator.catalog import DOMAINS
from orchestrator.errors import InputInvalidError
from orchestrator.models.common import iso_now
from orchestrator.service import Orchestrator
from orchestrator.state.agents import STATUSES


def _check_filter(name: str, value: str | None, valid: tuple[str, ...]) -> None:
    if value is not None and value not in valid:
        raise InputInvalidError(
            f"Invalid {name} '{value}'. Valid values: {', '.join(valid)}", {name: value, "valid": list(valid)}
        )


def agent_registry(
    service: Orchestrator, *, domain: str | None = None, status: str | None = None, capability: str | None = None
) -> dict[str, Any]:
    """``{agents[], count, total_registered, filters_applied, timestamp}``; one filter applies, in the order
    capability > domain > status (as the original), and ``filters_applied`` echoes what was given."""
    _check_filter("domain", domain, DOMAINS)
    _check_filter("status", status, STATUSES)
    agents = service.agents.list(domain=domain, status=status, capability=capability)
    given = {"domain": domain, "status": status, "capability": capability}
    return {
        "agents": agents,
        "count": len(agents),
        "total_registered": len(service.agents.registry.registered()),
        "filters_applied": {k: v for k, v in given.items() if v is not None},
        "timestamp": iso_now(),
    }


def agent_details(service: Orchestrator, agent_id: str) -> dict[str, Any]:
    """The full registry record with capability schemas (ORCH_1001, 404, for an unknown id)."""
    return service.agents.record(agent_id, service.agents.heartbeats().get(agent_id), detailed=True)


def check_all_agents(service: Orchestrator, *, force_check: bool = False) -> dict[str, Any]:
    """One health check per agent, and the all-agents summary agreeing with those checks."""
    registered = sorted(service.agents.registry.registered())
    results = [service.agents.check(agent_id, force=force_check) for agent_id in registered]
    summary = service.agents.summary()
    checked = {r["agent_id"]: r for r in results}
    counts: dict[str, int] = {}
    for row in summary["agents"]:
        check = checked[row["agent_id"]]
        row["status"], row["last_check"] = check["status"], check["checked_at"]
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary["status_summary"] = counts
    return {"check_results": results, "summary": summary, "force_check": force_check, "timestamp": iso_now()}


DEFAULT_WAIT_SECONDS = 300.0
WAIT_GRACE_SECONDS = 10.0


def wait_budget(step_timeout_seconds: float | None) -> float:
    """How long a front door waits for a one-step run: its step limit plus queueing grace, else 300 s."""
    if step_timeout_seconds:
        return step_timeout_seconds + WAIT_GRACE_SECONDS
    return DEFAULT_WAIT_SECONDS
