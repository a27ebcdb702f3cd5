"""Dead letters: steps that exhausted their retries or were refused, and expired agent messages.

Kept in a capped stream with their payload and error so an operator can inspect and re-drive them.
Writers (workers) use ``add_to`` on their pipeline; the service reads through ``DeadLetters``.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator import keys
from orchestrator.errors import InputInvalidError, NotFoundError
from orchestrator.models.common import iso_now
from orchestrator.runtime.redis_client import RedisClient

# Why a step or message became a dead letter (the ``reason`` of an entry, and of ``orch_dead_letters_added_total``).
REASONS = ("retries_exhausted", "delivery_limit", "refused", "malformed", "expired")


def add_to(
    pipe: Any,
    *,
    run_id: str | None,
    step_id: str | None,
    agent_id: str,
    action: str,
    params: dict[str, Any],
    error: dict[str, Any],
    reason: str,
    max_len: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Queue one dead letter on a caller's pipeline."""
    entry = {
        "run_id": run_id,
        "step_id": step_id,
        "agent_id": agent_id,
        "action": action,
        "reason": reason,
        "params": params,
        "error": error,
        "at": iso_now(),
        "redriven": False,
        **(extra or {}),
    }
    pipe.xadd(keys.DLQ_STREAM, {"d": json.dumps(entry, default=str)}, maxlen=max_len, approximate=True)


_UINT64 = 2**64 - 1


def check_id(dlq_id: str) -> None:
    """A dead letter's id is a stream id (``<milliseconds>-<sequence>``); anything else is a clear ORCH_8003."""
    millis, dash, sequence = dlq_id.partition("-")
    valid = bool(dash) and millis.isdigit() and sequence.isdigit() and len(dlq_id) <= 41
    if not valid or int(millis) > _UINT64 or int(sequence) > _UINT64:
        shown = dlq_id if len(dlq_id) <= 64 else dlq_id[:61] + "..."
        raise InputInvalidError(
            f"'{shown}' is not a dead letter id; ids look like 1732951234567-0 (see `itom-orch dlq list`)",
            {"dlq_id": shown},
        )


class DeadLetters:
    """Read side: list newest first, show one, mark re-driven."""

    def __init__(self, client: RedisClient) -> None:
        self.redis = client

    def list(self, *, limit: int = 50, reason: str | None = None) -> list[dict[str, Any]]:
        if reason is not None and reason not in REASONS:  # a typo would list nothing, as if there were no letters
            raise InputInvalidError(
                f"Unknown dead-letter reason '{reason}'. Use one of: {', '.join(REASONS)}", {"reason": reason}
            )
        out: list[dict[str, Any]] = []
        for stream_id, fields in self.redis.xrevrange(keys.DLQ_STREAM, count=max(limit * 4, 200)):
            entry = {"dlq_id": stream_id, **json.loads(fields["d"])}
            if reason and entry.get("reason") != reason:
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def show(self, dlq_id: str) -> dict[str, Any]:
        check_id(dlq_id)
        found = self.redis.xrange(keys.DLQ_STREAM, min=dlq_id, max=dlq_id)
        if not found:
            raise NotFoundError(
                f"Dead letter '{dlq_id}' not found; list them with `itom-orch dlq list`", {"dlq_id": dlq_id}
            )
        stream_id, fields = found[0]
        marks = self.redis.hget(keys.DLQ_REDRIVEN, stream_id)
        entry: dict[str, Any] = {"dlq_id": stream_id, **json.loads(fields["d"])}
        if marks:
            entry["redriven"] = json.loads(marks)
        return entry

    def mark_redriven(self, dlq_id: str, by: str, outcome: dict[str, Any]) -> None:
        self.redis.hset(keys.DLQ_REDRIVEN, dlq_id, json.dumps({"by": by, "at": iso_now(), **outcome}))

    def count(self) -> int:
        return int(self.redis.xlen(keys.DLQ_STREAM))
