"""The work log itom-chat-ui shows: recent workflow runs, single tasks and chat exchanges as "work items".

Why a chat log of its own: every chat turn runs as a one-step run, but the run does not remember the message
that caused it. The chat desk appends each exchange (message, agent, action, run, outcome) to a capped list;
the work log merges it with the run index, newest first, and shows a chat turn once (as ``chat``, not also
as the ``task`` its run is).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from orchestrator import keys
from orchestrator.models.common import iso_now
from orchestrator.models.run import RunView

if TYPE_CHECKING:
    from orchestrator.runtime.redis_client import RedisClient
    from orchestrator.state.runs import RunStore

CHAT_LOG_MAX = 500
_PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4}


def log_exchange(redis: RedisClient, exchange: dict[str, Any]) -> None:
    """Remember one chat turn (bounded: the newest ``CHAT_LOG_MAX`` are kept)."""
    pipe = redis.pipeline(transaction=False)
    pipe.lpush(keys.CHAT_LOG, json.dumps({**exchange, "at": exchange.get("at") or iso_now()}, default=str))
    pipe.ltrim(keys.CHAT_LOG, 0, CHAT_LOG_MAX - 1)
    pipe.execute()


def chat_exchanges(redis: RedisClient, limit: int) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis.lrange(keys.CHAT_LOG, 0, max(0, limit - 1))]


def _run_item(view: RunView) -> dict[str, Any]:
    agents = list(dict.fromkeys(step.agent_id for step in view.steps))
    workflow = view.template_id is not None or len(view.steps) > 1
    return {
        "type": "workflow" if workflow else "task",
        "number": view.run_id,
        "short_description": (f"{view.template_id}: " if view.template_id else "") + view.name,
        "priority": _PRIORITY.get(view.priority.value, 3),
        "state": view.status.value,
        "opened_at": view.created_at,
        "due_date": None,
        "assigned_to": ", ".join(agents),
        "sys_id": view.run_id,
    }


def _chat_item(exchange: dict[str, Any]) -> dict[str, Any]:
    message = str(exchange.get("message", ""))
    return {
        "type": "chat",
        "number": str(exchange.get("message_id", "")),
        "short_description": message if len(message) <= 160 else message[:159] + "…",
        "priority": 3,
        "state": str(exchange.get("status", "unknown")),
        "opened_at": str(exchange.get("at", "")),
        "due_date": None,
        "assigned_to": str(exchange.get("agent_id") or ""),
        "sys_id": str(exchange.get("run_id") or exchange.get("message_id", "")),
    }


def build_worklog(redis: RedisClient, runs: RunStore, limit: int) -> dict[str, Any]:
    """``{items, status}``: the newest ``limit`` work items, chat turns and runs merged, newest first."""
    exchanges = chat_exchanges(redis, limit)
    chat_runs = {e.get("run_id") for e in exchanges}
    views, _ = runs.list(limit=limit + len(chat_runs))
    items = [_chat_item(e) for e in exchanges] + [_run_item(v) for v in views if v.run_id not in chat_runs]
    items.sort(key=lambda item: item["opened_at"], reverse=True)
    return {"items": items[:limit], "status": "ok"}
