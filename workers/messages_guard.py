"""What a step message must look like, and what happens to one that does not.

Why: a worker must never crash on a message, and never run one it cannot trust. A step message carries
exactly ``run_id``, ``step_id`` and ``generation`` (everything else lives in run state); anything else is
refused, audited and dead-lettered with a bounded excerpt of what arrived.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from orchestrator.models.common import iso_now
from orchestrator.models.events import Event
from orchestrator.runtime.redis_client import execute_pipeline
from orchestrator.state import events as ev
from orchestrator.state import outcome_metrics
from workers.runtime import WorkerRuntime

_ID = re.compile(r"[A-Za-z0-9_.-]{1,256}")
EXCERPT_CHARS = 2000


@dataclass(frozen=True)
class StepMessage:
    run_id: str
    step_id: str
    generation: int

    @classmethod
    def parse(cls, args: Any, kwargs: Any) -> StepMessage | None:
        if args or not isinstance(kwargs, dict) or set(kwargs) != {"run_id", "step_id", "generation"}:
            return None
        run_id, step_id, generation = kwargs["run_id"], kwargs["step_id"], kwargs["generation"]
        if not (
            isinstance(run_id, str) and _ID.fullmatch(run_id) and isinstance(step_id, str) and _ID.fullmatch(step_id)
        ):
            return None
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            return None
        return cls(run_id, step_id, generation)


def excerpt(value: Any) -> str:
    """A bounded, printable excerpt of an untrusted value (never the whole of a huge or deep payload)."""
    try:
        text = json.dumps(value, default=repr)
    except (ValueError, RecursionError):
        text = repr(type(value))
    return text[:EXCERPT_CHARS]


def _why(args: Any, kwargs: Any) -> str:
    if args:
        return "positional arguments are not accepted"
    if not isinstance(kwargs, dict):
        return "the message's keyword arguments are not an object"
    extra = sorted(set(kwargs) - {"run_id", "step_id", "generation"})
    missing = sorted({"run_id", "step_id", "generation"} - set(kwargs))
    if extra:
        return f"unexpected message fields {extra}"
    if missing:
        return f"missing message fields {missing}"
    return "run_id/step_id must be identifiers and generation a non-negative integer"


def refuse_malformed(rt: WorkerRuntime, args: Any, kwargs: Any, request: Any) -> dict[str, Any]:
    """Refuse a malformed step message: audited, dead-lettered, announced; the worker goes on."""
    reason = _why(args, kwargs)
    run_id = kwargs.get("run_id") if isinstance(kwargs, dict) and isinstance(kwargs.get("run_id"), str) else None
    step_id = kwargs.get("step_id") if isinstance(kwargs, dict) and isinstance(kwargs.get("step_id"), str) else None
    target = f"{(run_id or '?')[:256]}/{(step_id or '?')[:256]}"
    delivery = {"queue": (request.delivery_info or {}).get("routing_key"), "task_id": request.id}
    pipe = rt.redis.pipeline(transaction=False)
    rt.audit.append_to(
        pipe,
        "message_refused",
        rt.actor,
        target,
        {"reason": reason, "where": "worker", "delivery": delivery},
        result="failure",
    )
    letter = {
        "run_id": run_id[:256] if run_id else None,
        "step_id": step_id[:256] if step_id else None,
        "agent_id": rt.agent_id,
        "action": "step.malformed",
        "reason": "malformed",
        "params": {"excerpt": excerpt({"args": args, "kwargs": kwargs})},
        "error": {"code": "ORCH_4002", "message": f"Malformed step message: {reason}"},
        "at": iso_now(),
        "redriven": False,
    }
    from orchestrator import keys

    pipe.xadd(keys.DLQ_STREAM, {"d": json.dumps(letter)}, maxlen=rt.settings.retention.dlq_max, approximate=True)
    outcome_metrics.count_to(pipe, outcome_metrics.DEAD_LETTERS, "malformed")
    rt.events.publish_to(
        pipe,
        Event(
            event_type=ev.STEP_REFUSED,
            correlation_id=run_id,
            source=rt.actor,
            payload={"target": target, "reason": reason},
        ),
    )
    execute_pipeline(rt.redis, pipe)
    return {"status": "refused", "reason": reason}
