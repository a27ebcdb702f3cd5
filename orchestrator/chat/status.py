"""The orchestrator's own chat answer: its health and the agents' status, for messages addressed to it.

Why: itom-chat-ui's ``/status`` and ``/agents`` commands send ``target_agent: "orchestrator"``, which is no
agent but the orchestrator itself. It answers them in the chat reply's shape
(``agent_response`` Markdown, ``suggested_actions``, ``tool_used``, ``source``), from the same data as
``GET /api/health`` and ``GET /api/agents``.
"""

from __future__ import annotations

import re
from typing import Any

ORCHESTRATOR_TARGETS = frozenset({"orchestrator"})
_AGENT_LISTING = re.compile(r"\b(?:list|agents?)\b", re.IGNORECASE)
_HEALTH = re.compile(r"\b(?:health|status)\b", re.IGNORECASE)


def _agent_rows(agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for record in agents:
        rows.append(
            {
                "agent_id": record["agent_id"],
                "name": record["name"],
                "status": record["status"],
                "mode": record["metadata"]["mode"],
                "actions": record["capability_count"],
                "last_heartbeat": record["last_health_check"],
                "problems": record.get("mcp_problems") or record.get("status_reason"),
            }
        )
    return rows


def _markdown(health: dict[str, Any], rows: list[dict[str, Any]], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        f"- **Orchestrator:** {health['status']} (version {health['version']}, up {health['uptime_seconds']:.0f} s)",
        f"- **Agents online:** {health['connected_agents']} of {health['total_registered_agents']}",
        f"- **Active workflows:** {health['active_workflows']}",
        "",
        "| Agent | Status | Mode | Actions | Last heartbeat |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} (`{row['agent_id']}`) | {row['status']} | {row['mode']} | {row['actions']} "
            f"| {row['last_heartbeat'] or 'never'} |"
        )
    problems = [f"- **{row['name']}:** {row['problems']}" for row in rows if row["problems"]]
    if problems:
        lines += ["", "**Attention**", *problems]
    return "\n".join(lines) + "\n"


def orchestrator_reply(health: dict[str, Any], agents: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """The chat ``response.result`` for a message to the orchestrator: health first, or the agent list.

    ``health`` is what ``GET /api/health`` returns, ``agents`` what ``GET /api/agents`` lists."""
    rows = _agent_rows(agents)
    listing = _AGENT_LISTING.search(message) is not None and _HEALTH.search(message) is None
    tool = "get_agent_registry" if listing else "get_orchestrator_health"
    title = "ITOM agents" if listing else "ITOM system health"
    offline = [row for row in rows if row["status"] in ("offline", "degraded")]
    pills = [
        {"label": "CMDB dashboard", "message": "Show the CMDB operational dashboard", "agent_target": "cmdb-agent"}
    ]
    if offline:
        name = offline[0]["name"]
        status = offline[0]["status"]
        pills.insert(
            0,
            {"label": f"Why is {name} {status}?", "message": "Show the system health", "agent_target": "orchestrator"},
        )
    return {
        "agent_response": _markdown(health, rows, title),
        "suggested_actions": pills,
        "tool_used": tool,
        "source": "orchestrator",
        "data": {"health": health, "agents": rows},
    }
