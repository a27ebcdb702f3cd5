"""The workflow client commands: ``templates``, ``agents``, ``actions``, ``run``, ``status``, ``cancel``, ``resume``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from orchestrator.cli.common import (
    console,
    fail,
    follow,
    local_principal,
    parse_params,
    service,
    warn_offline,
)
from orchestrator.errors import OrchestratorError

app = typer.Typer()


@app.command()
def templates() -> None:
    """List workflow templates (parallel steps in brackets) and the user template files that do not load."""
    from orchestrator.cli.render import stages

    svc = service()
    table = Table("template", "domain", "steps ([a | b] run in parallel)", "parameters", "description")
    for tpl in svc.list_templates():
        params = ", ".join(f"{p.name}{'*' if p.required else ''}:{p.type}" for p in tpl.parameters)
        table.add_row(tpl.template_id, tpl.domain, stages(tpl.steps), params, tpl.description)
    console.print(table)
    broken = svc.broken_templates()
    if broken:
        problems = Table("template", "file", "line", "error", title="Broken template files", title_justify="left")
        for item in broken:
            problems.add_row(item["template_id"], item["file"] or "", str(item["line"] or ""), item["error"])
        console.print(problems)
        console.print(f"[red]{len(broken)} template file(s) in {svc.settings.user_templates_dir} do not load[/]")


@app.command()
def agents() -> None:
    """Agents, their queues, live status and actions."""
    svc = service()
    table = Table("agent", "domain", "status", "mode", "actions")
    for record in svc.list_agents():
        table.add_row(
            record["agent_id"],
            record["domain"],
            record["status"],
            record["metadata"]["mode"],
            ", ".join(record["capabilities"]),
        )
    console.print(table)


@app.command()
def actions(
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent's actions")] = None,
) -> None:
    """Every action a step can name, with its agent, access and parameters (what a template may pass)."""
    from orchestrator.catalog import ACTIONS, get_agent

    if agent:
        try:
            get_agent(agent)  # an unknown agent is an error that lists the known ones, not an empty table
        except OrchestratorError as exc:
            fail(exc)
    table = Table("action", "agent", "access", "parameters (* required)", "description")
    for name, spec in sorted(ACTIONS.items()):
        if agent and spec.agent_id != agent:
            continue
        params = ", ".join(
            f"{p.name}{'*' if p.required else ''}:{p.type}"
            + (f"={p.default!r}" if p.default is not None else "")
            + (f" in {p.enum}" if p.enum else "")
            for p in spec.params
        )
        table.add_row(name, spec.agent_id, spec.access.value, params or "-", spec.description)
    console.print(table)


@app.command()
def run(
    template: Annotated[str, typer.Argument(help="Template id (see `itom-orch templates`)")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value, repeatable")] = None,
    priority: Annotated[str, typer.Option(help="critical|high|medium|low")] = "medium",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Follow live progress until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait")] = 300.0,
) -> None:
    """Start a workflow from a template."""
    svc = service()
    try:
        declared = {p.name: p.type for p in svc.get_template(template).parameters}
        view = svc.start_workflow(
            local_principal(),
            template_id=template,
            parameters=parse_params(param or [], declared),
            priority=priority,
            source="cli",
        )
        console.print(f"started [bold]{view.run_id}[/] ({view.status.value})")
        warn_offline(svc, {s.agent_id for s in view.steps})
        if wait:
            view = follow(svc, view.run_id, timeout)
            raise typer.Exit(0 if view.status.value == "completed" else 1)
    except OrchestratorError as exc:
        fail(exc)


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(help="Run id; omit to list recent runs")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON: the run, or {items, total} for the list")] = False,
) -> None:
    """Show one run (steps, attempts, results) or list recent runs."""
    svc = service()
    try:
        if run_id:
            view = svc.get_run(run_id)
            if as_json:
                console.print_json(view.model_dump_json())
            else:
                from orchestrator.cli.render import print_run

                print_run(console, view)
            return
        views, total = svc.list_runs(limit=20)
        if as_json:  # the shape of GET /api/workflows, for scripts
            console.print_json(json.dumps({"items": [v.model_dump(mode="json") for v in views], "total": total}))
            return
        table = Table("run", "template", "status", "steps done", "created")
        for v in views:
            table.add_row(
                v.run_id,
                v.template_id or v.name,
                v.status.value,
                f"{len(v.steps_completed)}/{len(v.steps)}",
                v.created_at,
            )
        console.print(table)
        console.print(f"[dim]{total} run(s)[/]")
    except OrchestratorError as exc:
        fail(exc)


@app.command()
def cancel(run_id: str) -> None:
    """Cancel a pending or running run (queued steps are revoked; running ones are stopped)."""
    svc = service()
    try:
        from orchestrator.cli.render import print_run

        view = svc.cancel_run(local_principal(), run_id)
        print_run(console, view)
        stopped = [f"{s.step_id} ({s.stopped})" for s in view.steps if s.stopped]
        line = f"cancelled by {view.cancelled_by}"
        console.print(line + (f"; stopped while running: {', '.join(stopped)}" if stopped else ""))
    except OrchestratorError as exc:
        fail(exc)


@app.command()
def resume(
    run_id: str,
    wait: Annotated[bool, typer.Option("--wait/--no-wait")] = False,
    timeout: Annotated[float, typer.Option()] = 300.0,
) -> None:
    """Resume a failed or cancelled run: only the steps that did not complete run again."""
    svc = service()
    try:
        view = svc.resume_run(local_principal(), run_id)
        again = len(view.steps_remaining)
        console.print(
            f"resumed [bold]{run_id}[/]: {again} step(s) run again as generation {view.generation} "
            "[dim](each resume starts a new generation; messages of older generations are refused)[/]"
        )
        if wait:
            view = follow(svc, run_id, timeout)
            raise typer.Exit(0 if view.status.value == "completed" else 1)
    except OrchestratorError as exc:
        fail(exc)
