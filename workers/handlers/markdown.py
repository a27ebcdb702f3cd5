"""Render step results as Markdown: key figures as bullets, lists of records as tables.

Why generic: ``documentation.generate`` documents whatever earlier steps produced, including results
of bridged MCP agents whose shapes this project does not define. Scalars become figures, lists of
objects become tables (capped), and nothing is dropped silently: truncation is stated.
"""

from __future__ import annotations

import re
from typing import Any

SKIP_KEYS: frozenset[str] = frozenset(
    {
        "action",
        "duplicate_suppressed",
        "idempotency_key",
        "markdown",
        "mermaid",
        "truncated",
        "impacted_truncated",
        "kind",
        "summary",
    }
)
_SYS_ID = re.compile(r"^[0-9a-f]{32}$")
TABLE_ROWS = 10
TABLE_COLUMNS = 6
MAX_MARKDOWN_CHARS = 40_000


def cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value[:8]) + (", ..." if len(value) > 8 else "")
    elif value is None:
        text = "-"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 120 else text[:117] + "..."


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_id(value: Any) -> bool:
    """sys_ids carry no meaning for a reader; lists of them even less."""
    if isinstance(value, list):
        return bool(value) and all(_is_id(v) for v in value)
    return isinstance(value, str) and bool(_SYS_ID.match(value))


def _is_figure(value: Any) -> bool:
    """A short scalar, or a short list of scalars."""
    if isinstance(value, list):
        return 0 < len(value) <= 12 and all(_is_scalar(v) for v in value)
    return _is_scalar(value) and not (isinstance(value, str) and len(value) > 200)


def figures(result: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """``(dotted.name, value)`` for scalars and short scalar lists, two levels deep."""
    out: list[tuple[str, Any]] = []
    for key, value in result.items():
        if key in SKIP_KEYS or _is_id(value):
            continue
        name = f"{prefix}{key}"
        if _is_figure(value):
            out.append((name, value))
        elif isinstance(value, dict) and depth < 1:
            out.extend(figures(value, f"{name}.", depth + 1))
    return out


def tables(result: dict[str, Any], prefix: str = "", depth: int = 0) -> list[tuple[str, list[dict[str, Any]], int]]:
    """``(label, rows, total)`` for every list of objects, two levels deep."""
    out: list[tuple[str, list[dict[str, Any]], int]] = []
    for key, value in result.items():
        if key in SKIP_KEYS:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            label = prefix.rstrip(".") if key == "items" and prefix else f"{prefix}{key}"
            total = result.get("total") if key == "items" and isinstance(result.get("total"), int) else len(value)
            out.append((label, value, int(total or len(value))))
        elif isinstance(value, dict) and depth < 1:
            out.extend(tables(value, f"{prefix}{key}.", depth + 1))
    return out


def table(rows: list[dict[str, Any]], total: int) -> list[str]:
    columns = [k for k, v in rows[0].items() if k not in SKIP_KEYS and _is_figure(v) and not _is_id(v)]
    preferred = [c for c in ("name", "number", "target", "rule_id", "software", "asset_tag") if c in columns]
    columns = (preferred + [c for c in columns if c not in preferred and c != "sys_id"])[:TABLE_COLUMNS]
    if not columns:
        return []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows[:TABLE_ROWS]]
    if total > min(len(rows), TABLE_ROWS):
        lines.append(f"\n_{min(len(rows), TABLE_ROWS)} of {total} rows shown._")
    return lines


def section(heading: str, result: dict[str, Any]) -> list[str]:
    lines = [f"## {heading}", ""]
    if isinstance(result.get("summary"), str):
        lines += [result["summary"], ""]
    found = figures(result)
    if found:
        lines += ["**Key figures**", ""] + [f"- **{name}**: {cell(value)}" for name, value in found] + [""]
    for label, rows, total in tables(result):
        body = table(rows, total)
        if body:
            lines += [f"**{label}** ({total})", "", *body, ""]
    return lines


def headline(result: dict[str, Any]) -> str:
    if isinstance(result.get("summary"), str):
        return cell(result["summary"])
    shown = [(name, value) for name, value in figures(result) if value is not None][:3]
    return cell("; ".join(f"{name} {cell(value)}" for name, value in shown))


def document(title: str, subtitle: str, sections: list[tuple[str, dict[str, Any]]]) -> str:
    """The whole report: title, an overview table of the sections, then one section each."""
    lines = [f"# {title}", "", f"_{subtitle}_", ""]
    if sections:
        lines += ["| Section | Headline |", "|---|---|"]
        lines += [f"| {cell(heading)} | {headline(result)} |" for heading, result in sections] + [""]
    for heading, result in sections:
        lines += section(heading, result)
    text = "\n".join(lines).rstrip() + "\n"
    if len(text) > MAX_MARKDOWN_CHARS:
        text = text[:MAX_MARKDOWN_CHARS] + "\n\n_Report truncated: it exceeded the size limit._\n"
    return text
