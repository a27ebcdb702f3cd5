"""Bounds on what the front doors accept, so nothing accepted is unreadable later.

Why: a parameter nested 250 levels deep was accepted, stored, and then could not be read back by the worker
(JSON parsers stop at ~200 levels), so the run could never progress. Every value that will be stored and
read again (workflow and task parameters, message payloads) is checked here, iteratively (a hostile value
cannot exhaust the stack), for nesting depth and encoded size, and for NaN and Infinity: Python's JSON parser
accepts them, but a stored spec holding them is unreadable to strict parsers and became null in a message.
"""

from __future__ import annotations

import json
import re
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
    if value is None or (type(value) in (dict, list) and not value):
        return  # nothing to measure (most single actions and steps have no parameters)
    depth = depth_of(value, max_depth)
    if depth > max_depth:
        raise InputInvalidError(
            f"{what} are nested more than {max_depth} levels deep; flatten them (ORCH_RELIABILITY__MAX_PARAM_DEPTH)",
            {"what": what, "max_depth": max_depth},
        )
    try:
        size = len(json.dumps(value, default=str, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InputInvalidError(
            f"{what} contain text that is not valid Unicode (a lone surrogate such as \\ud800 at offset "
            f"{exc.start}); send UTF-8 text",
            {"what": what},
        ) from exc
    except (TypeError, ValueError) as exc:
        if str(exc).startswith("Out of range float"):  # NaN, Infinity: Python's parser takes them, JSON has none
            raise InputInvalidError(
                f"{what} contain NaN or Infinity, which JSON does not have (other parsers refuse them, and some "
                "would store them as null); send a number, a string or null",
                {"what": what},
            ) from exc
        raise InputInvalidError(f"{what} are not valid JSON: {clip(str(exc))}", {"what": what}) from exc
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"{what} are {size} bytes encoded; the limit is {max_bytes} (ORCH_RELIABILITY__MAX_PARAM_BYTES)",
            {"what": what, "size_bytes": size, "max_bytes": max_bytes},
        )


_echo = {"chars": 200}  # ORCH_FRONTDOOR__ERROR_ECHO_CHARS (set once per process by the service)


def set_echo_chars(chars: int) -> None:
    _echo["chars"] = chars


MAX_STREAM_PART = 2**64 - 1  # Redis stream ids are two unsigned 64-bit numbers
_STREAM_ID = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")


def clip(text: str, limit: int | None = None) -> str:
    """``text`` as safe to echo in an error: at most ``limit`` (default: the setting) characters, lone surrogates
    escaped."""
    limit = limit or _echo["chars"]
    text = text.encode("utf-8", "backslashreplace").decode("utf-8") if not _encodable(text) else text
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def identifier(value: str | None, what: str, *, max_chars: int = 256) -> None:
    """ORCH_8003 for an id or name that is too long or is not valid Unicode (it would be stored and echoed)."""
    if value is None:
        return
    if len(value) > max_chars:
        raise InputInvalidError(
            f"{what} is {len(value)} characters; the limit is {max_chars} (ORCH_FRONTDOOR__MAX_IDENTIFIER_CHARS)",
            {"what": what, "length": len(value), "max_chars": max_chars},
        )
    if not _encodable(value):
        raise InputInvalidError(
            f"{what} '{clip(value)}' is not valid Unicode (a lone surrogate such as \\ud800); send UTF-8 text",
            {"what": what},
        )


def stream_id(value: str | None, what: str) -> str | None:
    """A Redis stream id (``<ms>-<seq>``, each part below 2**64) or None; ORCH_8003 for anything else."""
    if value is None or value == "":
        return None
    found = _STREAM_ID.match(value)
    if not found or any(int(part) > MAX_STREAM_PART for part in found.groups() if part is not None):
        raise InputInvalidError(
            f"'{what}' must be an event id such as '1700000000000-0' (two numbers below 2**64), got '{clip(value)}'",
            {what: clip(value)},
        )
    return value
