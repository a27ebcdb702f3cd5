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


def stages(steps: list[Any]) -> str:
    """A step graph on one line, parallel steps side by side: ``a -> [b | c] -> d``.

    Each step stands at its depth (1 + its deepest dependency), so steps that can run at the same time share a
    stage; a stage with several steps is drawn in brackets.
    """
    ids = {s.step_id for s in steps}
    depth: dict[str, int] = {}
    by_id = {s.step_id: s for s in steps}
    for step in steps:
        pending = [step.step_id]
        while pending:
            current = pending[-1]
            deps = [d for d in by_id[current].depends_on if d in ids]
            missing = [d for d in deps if d not in depth]
            if missing:
                pending.extend(missing)
                continue
            depth[current] = 1 + max((depth[d] for d in deps), default=-1)
            pending.pop()
    levels: dict[int, list[str]] = {}
    for step in steps:
        levels.setdefault(depth[step.step_id], []).append(step.step_id)
    parts = [names[0] if len(names) == 1 else f"[{' | '.join(names)}]" for _, names in sorted(levels.items())]
    return " -> ".join(parts)
