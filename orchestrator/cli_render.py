"""Rich rendering for the CLI: run tables, live progress, short result summaries."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.models.run import RunView

STATUS_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "retrying": "yellow",
    "completed": "green",
    "failed": "red",
    "skipped": "yellow",
    "denied": "red",
    "cancelled": "magenta",
}


def summarize(result: Any, width: int = 70) -> str:
    """A one-line summary of a step result: its scalar fields, then sizes of its lists."""
    if result is None:
        return ""
    if not isinstance(result, dict):
        return str(result)[:width]
    parts: list[str] = []
    for key, value in result.items():
        if isinstance(value, str | int | float | bool) and key not in {"markdown"}:
            parts.append(f"{key}={value}")
        elif isinstance(value, list):
            parts.append(f"{key}[{len(value)}]")
    text = ", ".join(parts) or json.dumps(result)[:width]
    return text if len(text) <= width else text[: width - 1] + "…"


def run_table(view: RunView) -> Table:
    table = Table(title=f"{view.name}  [{view.run_id}]  status: {view.status.value}", title_justify="left")
    for column in ("step", "agent", "action", "status", "attempts", "ms", "result"):
        table.add_column(column, overflow="fold" if column == "result" else "ellipsis")
    for step in view.steps:
        style = STATUS_STYLE.get(step.status.value, "")
        detail = summarize(step.result) if step.error is None else f"{step.error.code} {step.error.message}"
        table.add_row(
            step.step_id,
            step.agent_id,
            step.action,
            f"[{style}]{step.status.value}[/]",
            str(step.attempts),
            f"{step.duration_ms:.0f}" if step.duration_ms is not None else "",
            detail,
        )
    return table


def print_run(console: Console, view: RunView) -> None:
    console.print(run_table(view))
    if view.error:
        console.print(f"[red]{view.error.code}[/] {view.error.message}")
