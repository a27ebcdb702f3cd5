"""Check a tool call's arguments against the tool's ``inputSchema`` (from ``list_tools``) before sending it.

Why before: a sibling server answers a bad argument with a pydantic dump, or worse with an error *inside a
normal reply* that reads as success. Checking here fails the step with ORCH_7003 naming the argument and
what the tool declares, before any network call. The check covers what tool schemas generated from Python
signatures say at the top level: the declared names (closed unless ``additionalProperties`` opens them),
``required``, JSON types (through ``anyOf``/``oneOf`` unions and nullables) and ``enum``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import TaskInvalidError

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


def _is(value: Any, json_type: str) -> bool:
    if json_type in ("integer", "number") and isinstance(value, bool):
        return False
    if json_type == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(json_type, (object,)))


def _alternatives(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return [alt for option in schema[key] if isinstance(option, Mapping) for alt in _alternatives(option)]
    return [schema]


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    declared = schema.get("type")
    if declared is None:
        return True
    types = declared if isinstance(declared, list) else [declared]
    return any(_is(value, t) for t in types)


def _describe(schema: Mapping[str, Any]) -> str:
    parts = []
    for alt in _alternatives(schema):
        if "enum" in alt:
            parts.append("one of " + ", ".join(repr(v) for v in alt["enum"]))
        elif "type" in alt:
            parts.append(str(alt["type"]) if not isinstance(alt["type"], list) else " or ".join(alt["type"]))
    return " or ".join(parts) or "any value"


def check_arguments(tool: str, schema: Mapping[str, Any] | None, arguments: Mapping[str, Any]) -> None:
    """Raise ``TaskInvalidError`` (ORCH_7003) naming the first argument ``tool`` would refuse."""
    schema = schema or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    declared = ", ".join(sorted(properties)) or "none"
    if schema.get("additionalProperties") is not True and not isinstance(schema.get("additionalProperties"), dict):
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            raise TaskInvalidError(
                f"MCP tool '{tool}' takes no argument '{unknown[0]}'; it declares: {declared}.",
                {"tool": tool, "argument": unknown[0], "declared": sorted(properties)},
            )
    missing = [name for name in schema.get("required") or [] if arguments.get(name) is None]
    if missing:
        raise TaskInvalidError(
            f"MCP tool '{tool}' requires argument '{missing[0]}' ({_describe(properties.get(missing[0], {}))}), "
            f"which this call does not give; pass it in 'tool_args'.",
            {"tool": tool, "argument": missing[0], "declared": sorted(properties)},
        )
    for name, value in arguments.items():
        prop = properties.get(name)
        if not isinstance(prop, Mapping):
            continue
        if not any(_fits(value, alt) for alt in _alternatives(prop)):
            raise TaskInvalidError(
                f"MCP tool '{tool}' argument '{name}' must be {_describe(prop)}, got {value!r}.",
                {"tool": tool, "argument": name},
            )
