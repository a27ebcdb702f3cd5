"""Exactly-once effects for write actions: claim ``orch:idem:<run>:<step>`` before the side effect.

A redelivered message (worker crash with acks_late) or a retry finds the claim: if the first attempt
finished, its stored result is returned and the effect is not repeated; if it crashed mid-way, the action
runs again with the same idempotency key, which the target system uses to return the first effect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def run_once(redis: Any, key: str, effect: Callable[[], Any], *, ttl: int) -> Any:
    claimed = redis.set(key, json.dumps({"state": "claimed"}), nx=True, ex=ttl)
    if not claimed:
        raw = redis.get(key)
        stored = json.loads(raw) if raw else {}
        if stored.get("state") == "done":
            result = stored.get("result")
            if isinstance(result, dict):
                return {**result, "duplicate_suppressed": True}
            return result
    result = effect()
    redis.set(key, json.dumps({"state": "done", "result": result}, default=str), ex=ttl)
    return result
