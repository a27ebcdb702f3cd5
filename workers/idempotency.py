"""Exactly-once effects for write actions: claim ``orch:idem:<run>:<step>`` before the side effect.

A redelivered message (worker crash with acks_late) or a retry finds the claim: if the first attempt
finished, its stored result is returned and the effect is not repeated; if it crashed mid-way, the action
runs again with the same idempotency key, which the target system uses to return the first effect.
The claim and the result are written through a Redis restart (``durable``): an effect whose "done" could not
be stored yet is never reported as if it had not happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from workers.durable import durable


def run_once(redis: Any, key: str, effect: Callable[[], Any], *, ttl: int, window: float = 0.0) -> Any:
    claimed = durable(
        lambda: redis.set(key, json.dumps({"state": "claimed"}), nx=True, ex=ttl), what=f"claim {key}", window=window
    )
    if not claimed:
        raw = durable(lambda: redis.get(key), what=f"read {key}", window=window)
        stored = json.loads(raw) if raw else {}
        if stored.get("state") == "done":
            result = stored.get("result")
            if isinstance(result, dict):
                return {**result, "duplicate_suppressed": True}
            return result
    result = effect()
    done = json.dumps({"state": "done", "result": result}, default=str)
    durable(lambda: redis.set(key, done, ex=ttl), what=f"store {key}", window=window)
    return result
