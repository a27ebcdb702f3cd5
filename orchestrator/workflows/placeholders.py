"""``"{{name}}"`` placeholders in step parameters, bound to a workflow's declared parameters.

Why a rule instead of a blind merge: merging every supplied parameter into every step would let one
parameter (``action``, say) rewrite every step. Here a step says exactly which declared parameter goes where:
a value that is exactly ``"{{name}}"`` becomes the typed value (or disappears when that value is ``None``,
so the action's own default applies); ``{{name}}`` inside a longer string is interpolated as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MARK = "{{"


class _Absent:
    """Sentinel returned for an exact placeholder whose value is ``None``: the key is dropped."""


_ABSENT = _Absent()


def find_placeholders(value: Any) -> Iterator[str]:
    """Every placeholder name used anywhere inside ``value`` (nested dicts and lists included)."""
    if isinstance(value, str):
        if _MARK in value:
            yield from PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from find_placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from find_placeholders(item)


def has_placeholders(parameters: dict[str, Any]) -> bool:
    return next(find_placeholders(parameters), None) is not None


def substitute(parameters: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any]:
    """Replace placeholders in ``parameters`` by values from ``bound`` (which must declare every name used)."""
    result = _substitute(parameters, bound)
    assert isinstance(result, dict)
    return result


def _substitute(value: Any, bound: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if _MARK not in value:
            return value
        exact = PLACEHOLDER.fullmatch(value)
        if exact is not None:
            found = bound[exact.group(1)]
            return _ABSENT if found is None else found
        return PLACEHOLDER.sub(lambda m: _as_text(bound[m.group(1)]), value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            replaced = _substitute(item, bound)
            if replaced is not _ABSENT:
                out[key] = replaced
        return out
    if isinstance(value, list):
        return [None if (r := _substitute(item, bound)) is _ABSENT else r for item in value]
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
