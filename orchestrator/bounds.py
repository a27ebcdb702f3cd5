"""Bounds on what the front doors accept, so nothing accepted is unreadable later.

Why: a parameter nested 250 levels deep was accepted, stored, and then could not be read back by the worker
(JSON parsers stop at ~200 levels), so the run could never progress. Every value that will be stored and
read again (workflow and task parameters, message payloads) is checked here, iteratively (a hostile value
cannot exhaust the stack), for nesting depth and encoded size.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import InputInvalidError, PayloadTooLargeError


def depth_of(value: Any, limit: int) -> int:
    """Nesting depth of a JSON-like value, counted up to ``limit + 1`` (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check(value: Any, *, what: str, max_depth: int, max_bytes: int) -> None:
    """Raise ORCH_8003 (too deep) or ORCH_8002 (too large) for a value that would be stored."""
    depth = depth_of(value, max_depth)
    if depth > max_depth:
        raise InputInvalidError(
            f"{what} are nested more than {max_depth} levels deep; flatten them (ORCH_RELIABILITY__MAX_PARAM_DEPTH)",
            {"what": what, "max_depth": max_depth},
        )
    try:
        size = len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError) as exc:
        raise InputInvalidError(f"{what} are not valid JSON: {exc}", {"what": what}) from exc
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{what} are {size} bytes encoded; the limit is {max_bytes} (ORCH_RELIABILITY__MAX_PARAM_BYTES)",
            {"what": what, "size_bytes": size, "max_bytes": max_bytes},
        )
