"""The CLI for schedules and the beat: ``itom-orch schedule add|list|remove`` and ``itom-orch beat``.

Like the other client commands, these talk to Redis directly as the local user (holding the Redis URL is the
credential); the beat is what starts the scheduled runs (``itom-orch up`` runs one as a thread of its own process).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.common import connect, console, fail, local_principal, parse_params, service
from orchestrator.errors import OrchestratorError

app = typer.Typer()

schedule_app = typer.Typer(help="Schedules: start a template on a cron schedule (UTC).", no_args_is_help=True)


@schedule_app.command("add")
def schedule_add(
    template: Annotated[str, typer.Argument(help="Template id (see `itom-orch templates`)")],
    cron: Annotated[str, typer.Option("--cron", help="Five fields in UTC, e.g. '0 3 * * *', or '@daily'")],
    schedule_id: Annotated[str | None, typer.Option("--id", help="Schedule name (default: <template>-<cron>)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value, repeatable")] = None,
    priority: Annotated[str, typer.Option(help="critical|high|medium|low")] = "medium",
    description: Annotated[str, typer.Option(help="Free text shown in listings")] = "",
) -> None:
    """Add a schedule; it is validated now (cron, template, parameters, policy) and first runs at the next match."""
    svc = service()
    spec = {
        "schedule_id": schedule_id or default_id(template),
        "template_id": template,
        "cron": cron,
        "parameters": parse_params(param or []),
        "priority": priority,
        "description": description,
    }
    try:
        view = svc.add_schedule(local_principal(), spec)
    except OrchestratorError as exc:
        fail(exc)
        return
    console.print(
        f"added [bold]{view.schedule_id}[/]: {view.template_id} at '{view.cron}' (UTC), next {view.next_run_at}"
    )


def default_id(template: str) -> str:
    import secrets

    return f"{template[:50]}-{secrets.token_hex(3)}"


@schedule_app.command("list")
def schedule_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Schedules with their next and last run, and what is wrong with those that can no longer start."""
    svc = service()
    views = svc.list_schedules(local_principal())
    if as_json:
        console.print_json(data=[v.model_dump(mode="json") for v in views])
        return
    table = Table("schedule", "template", "cron (UTC)", "next run", "last run", "state", "problem")
    for v in views:
        state = {"ok": "[green]ok[/]", "invalid": "[red]invalid[/]", "failing": "[yellow]failing[/]"}[v.state]
        problem = f"{v.problem.code} {v.problem.message}" if v.problem else ""
        table.add_row(v.schedule_id, v.template_id, v.cron, v.next_run_at or "", v.last_run_id or "", state, problem)
    console.print(table)
    console.print(f"[dim]{len(views)} schedule(s); runs start only while a beat runs (`itom-orch up` or `beat`)[/]")


@schedule_app.command("remove")
def schedule_remove(schedule_id: str) -> None:
    """Remove a schedule (runs it already started are not touched)."""
    try:
        service().remove_schedule(local_principal(), schedule_id)
    except OrchestratorError as exc:
        fail(exc)
    console.print(f"removed {schedule_id}")


@app.command()
def beat(loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "info") -> None:
    """Run the beat that starts scheduled runs (one active at a time; a second one waits as a standby)."""
    from orchestrator.schedules.beat import run_beat

    try:
        settings, _ = connect(allow_embedded=False)
    except OrchestratorError as exc:
        fail(exc)
        return
    run_beat(settings, loglevel=loglevel.upper())
