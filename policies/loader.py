"""Load and save role policy files (JSON or YAML).

Accepted shapes: ``{"policies": [...]}`` or a bare list of policies. Optionally
``{"replace_defaults": true, "policies": [...]}`` makes the file the whole table.

Why override-by-default: an operator usually wants to tighten or add one role, not re-type the seven
defaults, and a forgotten default must not silently deny every agent. So file policies replace the
default role with the same ``role_id`` and add new roles; every other default is kept. Set
``replace_defaults: true`` to drop the defaults (for example to remove the ``orchestrator`` wildcard).

Every error names the file, the entry (index and role_id) and the field, so the fix is obvious.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policies.defaults import DEFAULT_TABLE
from policies.errors import PolicyConfigError
from policies.models import RolePolicy
from policies.table import PolicyTable

_TOP_LEVEL_KEYS = frozenset({"policies", "replace_defaults"})


def load_policy_file(path: str | Path, *, base: PolicyTable = DEFAULT_TABLE) -> PolicyTable:
    """Read a policy file and return ``base`` with the file's roles laid over it (see module doc)."""
    file = Path(path)
    if not file.is_file():
        raise PolicyConfigError(f"policy file not found: {file}")
    import yaml  # here, not at module level: most processes never read a YAML policy file (CLI start-up)

    try:
        text = file.read_text(encoding="utf-8")
        document = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise PolicyConfigError(f"{file}: cannot be read as {_format_name(file)}: {exc}") from exc
    entries, replace = _split_document(document, source=str(file))
    policies = parse_policies(entries, source=str(file))
    return PolicyTable(policies) if replace else base.with_overrides(policies)


def parse_policies(entries: Any, *, source: str = "policies") -> list[RolePolicy]:
    """Validate a list of policy mappings; raise ``PolicyConfigError`` naming the first bad entry."""
    if not isinstance(entries, list):
        raise PolicyConfigError(f"{source}: 'policies' must be a list, got {type(entries).__name__}")
    policies: list[RolePolicy] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = _entry_label(index, entry)
        if not isinstance(entry, dict):
            kind = type(entry).__name__
            raise PolicyConfigError(f"{source}: {label}: expected a mapping of policy fields, got {kind}")
        try:
            policy = RolePolicy.model_validate(entry)
        except ValidationError as exc:
            raise PolicyConfigError(f"{source}: {label}: {_describe(exc)}") from exc
        if policy.role_id in first_index:
            raise PolicyConfigError(
                f"{source}: {label}: role_id: duplicate role_id, first defined at entry {first_index[policy.role_id]}"
            )
        first_index[policy.role_id] = index
        policies.append(policy)
    return policies


def save_policy_file(policies: Iterable[RolePolicy], path: str | Path) -> None:
    """Write ``{"policies": [...]}`` as JSON (``.json``) or YAML (any other suffix)."""
    file = Path(path)
    document = {"policies": [p.model_dump() for p in policies]}
    if file.suffix.lower() == ".json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(document, sort_keys=False)
    file.write_text(text, encoding="utf-8")


def _split_document(document: Any, *, source: str) -> tuple[Any, bool]:
    if isinstance(document, list):
        return document, False
    if isinstance(document, dict):
        unknown = sorted(set(document) - _TOP_LEVEL_KEYS, key=str)
        if unknown:
            expected = "expected 'policies' and optionally 'replace_defaults'"
            raise PolicyConfigError(f"{source}: unknown top-level keys {unknown}: {expected}")
        if "policies" not in document:
            raise PolicyConfigError(f"{source}: missing 'policies': expected {{'policies': [...]}} or a list")
        replace = document.get("replace_defaults", False)
        if not isinstance(replace, bool):
            raise PolicyConfigError(f"{source}: 'replace_defaults' must be true or false, got {replace!r}")
        return document["policies"], replace
    shape = "empty" if document is None else type(document).__name__
    raise PolicyConfigError(f"{source}: expected {{'policies': [...]}} or a list of policies, got {shape}")


def _entry_label(index: int, entry: Any) -> str:
    role_id = entry.get("role_id") if isinstance(entry, dict) else None
    return f"entry {index} (role_id {role_id!r})" if role_id is not None else f"entry {index} (no role_id)"


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a whole-policy rule: its message names the fields itself
            parts.append(message)
            continue
        location = ".".join(str(part) for part in error["loc"])
        got = error.get("input")
        shown = "" if error["type"] == "value_error" or isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{location}: {message}{shown}")
    return "; ".join(parts)


def _format_name(file: Path) -> str:
    return "JSON" if file.suffix.lower() == ".json" else "YAML"
