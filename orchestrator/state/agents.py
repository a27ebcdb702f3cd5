"""The agent registry view and real health: worker heartbeats in Redis, confirmed by a Celery ping.

Why heartbeats: an agent is online only when a worker instance consuming its queue beat recently (and, when
bridged, reached its MCP server); ``force_check`` also asks the workers over Celery's control channel. Each
worker instance beats for itself, so an agent with two workers shows both, and a killed one disappears within
one lease interval; an agent whose worker ``itom-orch up`` is restarting shows ``degraded``.

A bridged agent is *degraded*, not online, while its MCP server lacks tools the catalog maps its actions
to (they are named in ``mcp.missing_tools``) or while its calls keep failing (``mcp.failing_call``, recorded
by the workers). Which agents are registered, their display fields, ``registered_at`` and an
administrative ``maintenance`` status come from the registry file (``registry.py``).
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import replace
from typing import Any

from celery import Celery

from orchestrator import keys
from orchestrator.catalog import ACTIONS, AGENTS, AgentSpec, get_agent
from orchestrator.models.common import iso_now
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.settings import Settings
from orchestrator.state.registry import AgentRegistry

HISTORY_MAX = 100
STATUSES = ("online", "offline", "degraded", "maintenance")
CHECK_RESULTS = {"online": "healthy", "degraded": "degraded", "maintenance": "skipped"}


def required_tools(agent_id: str) -> builtins.list[str]:
    """The sibling MCP tools the catalog maps this agent's actions to."""
    return sorted({tool for action in AGENTS[agent_id].actions for tool in ACTIONS[action].tools})


def mcp_problems(agent_id: str, beat: dict[str, Any] | None) -> dict[str, Any]:
    """Why a bridged agent's MCP server is not fully usable: missing tools, failing calls (empty when fine)."""
    mcp = (beat or {}).get("mcp")
    problems: dict[str, Any] = {}
    if isinstance(mcp, dict) and mcp.get("reachable") and isinstance(mcp.get("tool_names"), list):
        missing = sorted(set(required_tools(agent_id)) - set(mcp["tool_names"]))
        if missing:
            problems["missing_tools"] = missing
    failure = (beat or {}).get("mcp_failure")
    if isinstance(failure, dict):
        problems["failing_call"] = failure
    return problems


class AgentDirectory:
    """Registry records (the compatible fields) plus live status."""

    def __init__(self, client: RedisClient, app: Celery, settings: Settings) -> None:
        self.redis = client
        self.app = app
        self.settings = settings
        self.fresh_seconds = settings.reliability.lease_ttl_seconds
        self.registry = AgentRegistry(settings.data_dir)
        self.registry.ensure_written()
        self.registered_at = self.registry.started_at

    # -- heartbeats -----------------------------------------------------------------------------------
    def heartbeats(self) -> dict[str, dict[str, Any]]:
        """Per agent: the freshest live instance's record, with ``workers`` listing every live instance, and
        ``supervisor`` when ``itom-orch up`` reports its worker restarting."""
        live = self.redis.zrangebyscore(keys.WORKERS, time.time() - self.fresh_seconds, "+inf")
        pipe = self.redis.pipeline(transaction=False)
        for instance in live:
            pipe.get(keys.worker_key(instance))
        for agent_id in AGENTS:
            pipe.get(keys.supervisor_key(agent_id))
            pipe.get(keys.agent_mcp_failure_key(agent_id))
        replies = pipe.execute()
        out: dict[str, dict[str, Any]] = {}
        for raw in replies[: len(live)]:
            if not raw:
                continue
            record = json.loads(raw)
            agent_id = record.get("agent_id")
            if agent_id not in AGENTS:
                continue
            current = out.get(agent_id)
            workers = [*(current or {}).get("workers", []), record.get("instance")]
            if current is None or float(record.get("ts", 0)) > float(current.get("ts", 0)):
                current = record
            out[agent_id] = {**current, "workers": workers}
        extras = replies[len(live) :]
        for index, agent_id in enumerate(AGENTS):
            supervisor, failure = extras[2 * index], extras[2 * index + 1]
            if supervisor:
                out.setdefault(agent_id, {"agent_id": agent_id, "workers": [], "ts": 0})["supervisor"] = json.loads(
                    supervisor
                )
            if failure and agent_id in out:
                out[agent_id]["mcp_failure"] = json.loads(failure)
        return out

    def _status(self, beat: dict[str, Any] | None) -> str:
        if not beat:
            return "offline"
        restarting = (beat.get("supervisor") or {}).get("state") == "restarting"
        if time.time() - float(beat.get("ts", 0)) > self.fresh_seconds:
            return "degraded" if restarting else "offline"
        mcp = beat.get("mcp")
        if restarting or (mcp is not None and not mcp.get("reachable")):
            return "degraded"
        return "online"

    def status_of(self, agent_id: str, beat: dict[str, Any] | None) -> str:
        """Live status, then what the registry and the MCP server say: maintenance wins, problems degrade."""
        entry = self.registry.entries().get(agent_id)
        if entry is not None and entry.status == "maintenance":
            return "maintenance"
        status = self._status(beat)
        if status == "online" and mcp_problems(agent_id, beat):
            return "degraded"
        return status

    def statuses(self) -> dict[str, str]:
        beats = self.heartbeats()
        return {agent_id: self.status_of(agent_id, beats.get(agent_id)) for agent_id in self.registry.registered()}

    # -- routing --------------------------------------------------------------------------------------
    def routable(self) -> dict[str, AgentSpec]:
        """The registered agents as routing sees them (names from the registry file)."""
        return {a: replace(AGENTS[a], name=e.name) for a, e in self.registry.registered().items()}

    def unavailable(self) -> frozenset[str]:
        """Registered agents routing must skip (administratively in maintenance)."""
        return self.registry.in_maintenance()

    def connected_count(self) -> int:
        return sum(1 for s in self.statuses().values() if s == "online")

    # -- registry records -----------------------------------------------------------------------------
    def record(self, agent_id: str, beat: dict[str, Any] | None = None, *, detailed: bool = False) -> dict[str, Any]:
        spec = get_agent(agent_id)
        entry = self.registry.get(agent_id)
        status = self.status_of(agent_id, beat)
        mcp_url = self.settings.agent(agent_id).mcp_url
        capabilities: list[dict[str, Any]] = []
        for name in spec.actions:
            action = ACTIONS[name]
            cap: dict[str, Any] = {
                "name": name,
                "domain": action.domain,
                "description": action.description,
                "access": action.access.value,
            }
            if detailed:
                cap["input_schema"] = {
                    "type": "object",
                    "properties": {p.name: {"type": p.type, "description": p.description} for p in action.params},
                    "required": [p.name for p in action.params if p.required],
                }
            capabilities.append(cap)
        record: dict[str, Any] = {
            "agent_id": agent_id,
            "name": entry.name,
            "domain": spec.domain,
            "description": entry.description,
            "status": status,
            "capabilities": capabilities if detailed else [c["name"] for c in capabilities],
            "capability_count": len(capabilities),
            "registered_at": entry.registered_at or self.registered_at,
            "last_health_check": beat.get("at") if beat else None,
            "mcp_server_url": mcp_url,
            "metadata": {
                "project": spec.project,
                **entry.metadata,
                "queue": keys.agent_queue(agent_id),
                "mode": "mcp-bridge" if mcp_url else "builtin",
                "workers": beat.get("workers", []) if beat else [],
            },
        }
        if entry.status == "maintenance":
            record["status_reason"] = entry.status_reason
        problems = mcp_problems(agent_id, beat)
        if problems:
            record["mcp_problems"] = problems
        return record

    def list(
        self, *, domain: str | None = None, status: str | None = None, capability: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        beats = self.heartbeats()
        records = [self.record(agent_id, beats.get(agent_id)) for agent_id in sorted(self.registry.registered())]
        if capability:
            return [r for r in records if capability in r["capabilities"]]
        if domain:
            return [r for r in records if r["domain"] == domain]
        if status:
            return [r for r in records if r["status"] == status]
        return records

    # -- health checks --------------------------------------------------------------------------------
    def check(self, agent_id: str, *, force: bool = False) -> dict[str, Any]:
        """One health check: the heartbeat, plus (forced) a Celery ping of the workers on the agent's queue."""
        self.registry.get(agent_id)
        started = time.perf_counter()
        beat = self.heartbeats().get(agent_id)
        status = self.status_of(agent_id, beat)
        details: dict[str, Any] = {"heartbeat": beat}
        problems = mcp_problems(agent_id, beat)
        if problems:
            details["mcp_problems"] = problems
        if force and status != "maintenance":
            replies = self.ping_queue(agent_id)
            details["ping"] = replies
            if status != "offline" and not replies:
                status = "offline"
            elif status == "offline" and replies:
                status = "degraded"
        checked_at = iso_now()
        result = {
            "agent_id": agent_id,
            "status": status,
            "result": CHECK_RESULTS.get(status, "unreachable"),
            "checked_at": checked_at,
            "timestamp": checked_at,
            "response_time_ms": round((time.perf_counter() - started) * 1000, 3),
            "details": details,
        }
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.agent_health_history_key(agent_id), json.dumps(result, default=str))
        pipe.ltrim(keys.agent_health_history_key(agent_id), 0, HISTORY_MAX - 1)
        pipe.execute()
        return result

    def ping_queue(self, agent_id: str, timeout: float = 1.0) -> builtins.list[str]:
        """Workers consuming the agent's queue that answered a Celery control ping."""
        queue = keys.agent_queue(agent_id)
        try:
            active = self.app.control.inspect(timeout=timeout).active_queues() or {}
        except Exception:  # broker hiccup: report unreachable rather than fail the health page
            return []
        return sorted(name for name, queues in active.items() if any(q.get("name") == queue for q in queues))

    def history(self, agent_id: str) -> builtins.list[dict[str, Any]]:
        return [json.loads(r) for r in self.redis.lrange(keys.agent_health_history_key(agent_id), 0, HISTORY_MAX - 1)]

    def health_view(self, agent_id: str, *, force: bool = False) -> dict[str, Any]:
        """The compatible per-agent health view plus ``latest_check_result``."""
        latest = self.check(agent_id, force=force)
        history = self.history(agent_id)
        results = [h["result"] for h in history]
        distribution = {r: results.count(r) for r in sorted(set(results))}
        times = [float(h.get("response_time_ms") or 0) for h in history]
        return {
            "agent_id": agent_id,
            "name": self.registry.get(agent_id).name,
            "current_status": latest["status"],
            "last_health_check": latest["checked_at"],
            "latest_check": latest,
            "health_stats": {
                "total_checks": len(history),
                "uptime_percentage": round(100.0 * results.count("healthy") / len(results), 2) if results else 0.0,
                "avg_response_time_ms": round(sum(times) / len(times), 3) if times else 0.0,
                "result_distribution": distribution,
            },
            "history_count": len(history),
            "timestamp": iso_now(),
            "latest_check_result": latest,
        }

    def summary(self, *, force: bool = False) -> dict[str, Any]:
        """The all-agents view: ``agents[]``, ``total_agents``, ``status_summary``."""
        agents = []
        registered = self.registry.registered()
        beats = self.heartbeats()
        for agent_id in sorted(registered):
            check = self.check(agent_id, force=force) if force else None
            beat = beats.get(agent_id) if check is None else None
            status = check["status"] if check else self.status_of(agent_id, beat)
            agents.append(
                {
                    "agent_id": agent_id,
                    "name": registered[agent_id].name,
                    "status": status,
                    "last_check": (check or {}).get("checked_at") or (beat or {}).get("at"),
                    "checks_in_history": int(self.redis.llen(keys.agent_health_history_key(agent_id))),
                }
            )
        summary: dict[str, int] = {}
        for a in agents:
            key = str(a["status"])
            summary[key] = summary.get(key, 0) + 1
        return {"agents": agents, "total_agents": len(agents), "status_summary": summary, "timestamp": iso_now()}
