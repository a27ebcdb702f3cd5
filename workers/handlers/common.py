"""What every built-in handler shares: the handler type, parameter checks, CI lookups, compact results.

Why here: handlers raise ``TaskInvalidError`` for bad input with one consistent wording (what was wrong,
what to give instead), and keep results small (lists capped at ``CAP`` with totals) because step results
travel through Redis run state and into generated documents.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, TypeVar

from orchestrator.errors import TaskInvalidError
from workers.context import ActionContext
from workers.sample import SampleInstance

Handler = Callable[[ActionContext, SampleInstance], dict[str, Any]]
T = TypeVar("T")

CAP = 50
MAX_ROWS = 100  # the most a query may ask for: step results are size-capped in run state
ENVIRONMENTS: tuple[str, ...] = ("Production", "Staging", "Development", "Test")
CI_CLASSES: dict[str, str] = {
    "cmdb_ci_server": "Server (Linux and Windows)",
    "cmdb_ci_linux_server": "Linux server",
    "cmdb_ci_win_server": "Windows server",
    "cmdb_ci_database": "Database",
    "cmdb_ci_appl": "Application",
    "cmdb_ci_service": "Business service",
    "cmdb_ci_netgear": "Network gear",
    "cmdb_ci_storage": "Storage",
}
SERVER_CLASSES = frozenset({"cmdb_ci_linux_server", "cmdb_ci_win_server"})
# A parent class stands for its subclasses, as in ServiceNow (cmdb_ci_server covers Linux and Windows servers).
SUBCLASSES: dict[str, frozenset[str]] = {"cmdb_ci_server": SERVER_CLASSES}
_CLASS_ALIASES = {
    "server": "cmdb_ci_server",
    "windows_server": "cmdb_ci_win_server",
    "database_server": "cmdb_ci_database",
    "network_device": "cmdb_ci_netgear",
    "netgear": "cmdb_ci_netgear",
    "linux": "cmdb_ci_linux_server",
    "windows": "cmdb_ci_win_server",
    "application": "cmdb_ci_appl",
    "app": "cmdb_ci_appl",
    "service": "cmdb_ci_service",
    "network": "cmdb_ci_netgear",
    "network_gear": "cmdb_ci_netgear",
    "db": "cmdb_ci_database",
}


def exactly_once(handler: Handler) -> Handler:
    """Wrap a writing handler: a step delivered again gets the first delivery's answer, before any check runs."""

    @functools.wraps(handler)
    def wrapper(ctx: ActionContext, instance: SampleInstance) -> dict[str, Any]:
        done = instance.replay(ctx.idempotency_key)
        return done if done is not None else handler(ctx, instance)

    return wrapper


def capped(items: Sequence[T], limit: int = CAP) -> list[T]:
    return list(items[:limit])


def listing(items: Sequence[Any], limit: int = CAP) -> dict[str, Any]:
    """``{"total", "items"}`` with at most ``limit`` items (``truncated`` says whether some were left out)."""
    return {"total": len(items), "items": capped(items, limit), "truncated": len(items) > limit}


def invalid(message: str, **details: Any) -> TaskInvalidError:
    return TaskInvalidError(message, details)


def text_param(ctx: ActionContext, name: str) -> str | None:
    """A string parameter, stripped; None when absent or blank."""
    value = ctx.params.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise invalid(f"Parameter '{name}' must be a string, got {type(value).__name__}.", parameter=name)
    return value.strip()


def required_text(ctx: ActionContext, name: str) -> str:
    value = text_param(ctx, name)
    if value is None:
        raise invalid(f"Parameter '{name}' is required and must be a non-empty string.", parameter=name)
    return value


def int_param(ctx: ActionContext, name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = ctx.params.get(name, default)
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Parameter '{name}' must be an integer between {minimum} and {maximum}.", parameter=name)
    if not minimum <= value <= maximum:
        raise invalid(f"Parameter '{name}' is {value}; give a value between {minimum} and {maximum}.", parameter=name)
    return value


def ci_class_param(ctx: ActionContext, name: str = "ci_class") -> str | None:
    """A CI class by table name (``cmdb_ci_linux_server``) or short form (``linux_server``, ``database``)."""
    value = text_param(ctx, name)
    return None if value is None else ci_class_value(value, name)


def ci_class_value(value: str, name: str = "ci_class") -> str:
    """A class table name from a table name, a short form or a plural (``servers``, ``Linux servers``)."""
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    singular = key[:-1] if key.endswith("s") else key
    for form in dict.fromkeys((key, singular)):
        for candidate in (form, f"cmdb_ci_{form}", _CLASS_ALIASES.get(form, "")):
            if candidate in CI_CLASSES:
                return candidate
    raise invalid(f"Unknown CI class '{value}'. Use one of: {', '.join(CI_CLASSES)}.", parameter=name)


def in_class(ci: dict[str, Any], ci_class: str | None) -> bool:
    """Whether ``ci`` belongs to ``ci_class`` (None: every class), counting a parent class's subclasses."""
    if ci_class is None:
        return True
    found = ci.get("sys_class_name")
    return found == ci_class or found in SUBCLASSES.get(ci_class, ())


def environment_param(ctx: ActionContext, name: str = "environment") -> str | None:
    value = text_param(ctx, name)
    return None if value is None else environment_value(value, name)


def environment_value(value: Any, name: str = "environment") -> str:
    for env in ENVIRONMENTS:
        if isinstance(value, str) and value.strip().lower() in (env.lower(), env.lower()[:4]):
            return env
    raise invalid(f"Unknown environment {value!r} in '{name}'. Use one of: {', '.join(ENVIRONMENTS)}.", parameter=name)


def network_param(ctx: ActionContext, name: str, default: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    value = text_param(ctx, name) or default
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(
            f"'{name}' {value!r} is not an IP network; give CIDR notation such as 10.10.0.0/16.", parameter=name
        ) from None
    if network.version == 4 and network.prefixlen < 8:
        raise invalid(f"'{name}' {value} is too broad to scan; use a /8 or narrower range.", parameter=name)
    return network


def resolve_ci(instance: SampleInstance, ref: Any, name: str = "ci_id") -> dict[str, Any]:
    if not isinstance(ref, str) or not ref.strip():
        raise invalid(f"Parameter '{name}' must be a CI sys_id (32 hex characters) or a CI name.", parameter=name)
    ci = instance.find_ci(ref)
    if ci is None:
        raise invalid(
            f"Configuration item '{ref}' not found: give a CI sys_id (32 hex characters) or an exact CI "
            f"name such as 'web-prod-01' (cmdb.query lists them).",
            parameter=name,
            ci=ref,
        )
    return ci


def ci_ref(ci: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The compact form every result uses for a CI (``collect_cis`` finds these in earlier results)."""
    return {
        "sys_id": ci["sys_id"],
        "name": ci.get("name"),
        "sys_class_name": ci.get("sys_class_name"),
        "environment": ci.get("environment"),
        **extra,
    }


def ci_row(ci: dict[str, Any]) -> dict[str, Any]:
    """The fuller form used by queries."""
    fields = ("owner", "serial_number", "os", "ip_address", "operational_status", "install_status", "updated_on")
    return ci_ref(ci, **{f: ci.get(f) for f in fields})


def days_between(later: date, value: Any) -> int | None:
    """Whole days from ``value`` (ISO date or datetime) to ``later``; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    return (later - date.fromisoformat(value[:10])).days


def earlier(ctx: ActionContext) -> dict[str, dict[str, Any]]:
    """Earlier steps' results that are JSON objects (others cannot be read for figures)."""
    results = ctx.earlier_results() or {}
    return {step: result for step, result in results.items() if isinstance(result, dict)}


NOT_AFFECTED_KEYS: frozenset[str] = frozenset({"dependencies"})  # what a CI depends on is not hit by its failure


def collect_cis(results: Iterable[Any], limit: int = 500) -> list[dict[str, Any]]:
    """Every CI reference (a dict with a sys_id and a ``cmdb_ci*`` class) found in ``results``.

    Skips ``NOT_AFFECTED_KEYS``: an impact analysis lists the CI's own dependencies, which its failure
    does not affect.
    """
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, depth: int) -> None:
        if len(found) >= limit or depth > 6:
            return
        if isinstance(node, dict):
            if isinstance(node.get("sys_id"), str) and str(node.get("sys_class_name", "")).startswith("cmdb_ci"):
                found.setdefault(
                    node["sys_id"], {k: node.get(k) for k in ("sys_id", "name", "sys_class_name", "environment")}
                )
            for key, value in node.items():
                if key not in NOT_AFFECTED_KEYS:
                    walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                walk(value, depth + 1)

    for result in results:
        walk(result, 0)
    return list(found.values())
