"""Agent registry views both front doors return through the service (the registry and health shapes).

Why here: HTTP routes and MCP tools must answer these questions with the same fields; the agent directory
holds the data, this module only validates filters and assembles the response shapes.
"""

from __future__ import annotations

from typing import Any

from orchestrator.catalog import DOMAINS
from orchestrator.errors import InputInvalidError
from orchestrator.models.common import iso_now
from orchestrator.state.agents import STATUSES, AgentDirectory


def _check_filter(name: str, value: str | None, valid: tuple[str, ...]) -> None:
    if value is not None and value not in valid:
        raise InputInvalidError(
            f"Invalid {name} '{value}'. Valid values: {', '.join(valid)}", {name: value, "valid": list(valid)}
        )


def agent_registry(
    agents: AgentDirectory, *, domain: str | None = None, status: str | None = None, capability: str | None = None
) -> dict[str, Any]:
    """``{agents[], count, total_registered, filters_applied, timestamp}``; one filter applies, in the order
    capability > domain > status, and ``filters_applied`` echoes what was given."""
    _check_filter("domain", domain, DOMAINS)
    _check_filter("status", status, STATUSES)
    listed = agents.list(domain=domain, status=status, capability=capability)
    given = {"domain": domain, "status": status, "capability": capability}
    return {
        "agents": listed,
        "count": len(listed),
        "total_registered": len(agents.registry.registered()),
        "filters_applied": {k: v for k, v in given.items() if v is not None},
        "timestamp": iso_now(),
    }


def agent_details(agents: AgentDirectory, agent_id: str) -> dict[str, Any]:
    """The full registry record with capability schemas (ORCH_1001, 404, for an unknown id)."""
    return agents.record(agent_id, agents.heartbeats().get(agent_id), detailed=True)


def check_all_agents(agents: AgentDirectory, *, force_check: bool = False) -> dict[str, Any]:
    """One health check per agent, and the all-agents summary agreeing with those checks."""
    registered = sorted(agents.registry.registered())
    results = [agents.check(agent_id, force=force_check) for agent_id in registered]
    summary = agents.summary()
    checked = {r["agent_id"]: r for r in results}
    counts: dict[str, int] = {}
    for row in summary["agents"]:
        check = checked[row["agent_id"]]
        row["status"], row["last_check"] = check["status"], check["checked_at"]
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary["status_summary"] = counts
    return {"check_results": results, "summary": summary, "force_check": force_check, "timestamp": iso_now()}
