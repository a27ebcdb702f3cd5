"""The CLI commands that run whole subsystems (demo, up, api, mcp, audit, dlq, bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli.common import console, fail, local_principal, service
from orchestrator.errors import OrchestratorError

app = typer.Typer()


@app.command()
def demo(timeout: Annotated[float, typer.Option(help="Seconds to wait for the workflow")] = 120.0) -> None:
    """Run the main job end to end: workers, a real workflow with live progress, then stop everything."""
    from orchestrator.cli.demo import run_demo

    try:
        ok = run_demo(console, timeout=timeout)
    except OrchestratorError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; everything started was stopped[/]")
        raise typer.Exit(130) from None
    raise typer.Exit(0 if ok else 1)


@app.command()
def audit(
    actor: Annotated[str | None, typer.Option(help="Filter by actor")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Filter by event type")] = None,
    target: Annotated[str | None, typer.Option(help="Filter by target (run id, agent...)")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, inclusive")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    export: Annotated[str | None, typer.Option(help="Write JSON Lines to this file ('-' for stdout)")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the hash chain (and an anchor, if any)")] = False,
    anchor: Annotated[
        str | None,
        typer.Option(help="With --verify: check against this anchor file; alone: write the current head to it"),
    ] = None,
) -> None:
    """Query, export or verify the tamper-evident audit log."""
    from datetime import datetime

    from rich.table import Table

    svc = service()
    principal = local_principal()
    try:
        since_dt = datetime.fromisoformat(since) if since else None
        if verify:
            given = _read_anchor(anchor) if anchor else None
            report = svc.audit_verify(principal, given)
            console.print_json(data=report)
            raise typer.Exit(0 if report["ok"] else 1)
        if anchor:
            taken = svc.audit_anchor(principal)
            if taken is None:
                console.print("the audit log is empty: nothing to anchor")
                return
            from orchestrator.state.audit_anchor import save

            save(Path(anchor), taken)
            console.print(f"anchored entry {taken.stream_id} ({taken.entries_added} entries) in {anchor}")
            return
        if export:
            lines = svc.audit_export(principal, since=since_dt)
            if export == "-":
                for line in lines:
                    typer.echo(line, nl=False)
            else:
                with open(export, "w", encoding="utf-8") as handle:
                    count = sum(1 for line in lines if handle.write(line))
                console.print(f"exported {count} entries to {export}")
            return
        entries = svc.audit_query(
            principal, event_type=event_type, actor=actor, target=target, since=since_dt, limit=limit
        )
        table = Table("time", "type", "actor", "target", "result")
        for e in entries:
            table.add_row(e.timestamp, e.event_type, e.actor, e.target or "", e.result)
        console.print(table)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    except OrchestratorError as exc:
        fail(exc)


def _read_anchor(path: str) -> Any:
    from orchestrator.state.audit_anchor import load

    found = load(Path(path))
    if found is None:
        raise typer.BadParameter(f"{path} is not an anchor file (write one with `itom-orch audit --anchor FILE`)")
    return found


def dlq_list(limit: int = 50) -> None:
    from rich.table import Table

    svc = service()
    entries = svc.dlq_list(local_principal(), limit=limit)
    if not entries:
        console.print("no dead letters: nothing failed for good, was refused or expired")
        return
    table = Table("id", "reason", "run", "step", "action", "error")
    for entry in entries:
        table.add_row(
            entry["dlq_id"],
            entry["reason"],
            entry.get("run_id") or "",
            entry.get("step_id") or "",
            entry["action"],
            f"{entry['error'].get('code')} {entry['error'].get('message', '')[:60]}",
        )
    console.print(table)


dlq_app = typer.Typer(help="Dead letters: list, show, re-drive.", no_args_is_help=True)


@dlq_app.command("list")
def _dlq_list(limit: Annotated[int, typer.Option()] = 50) -> None:
    """List dead letters, newest first."""
    dlq_list(limit)


@dlq_app.command("show")
def _dlq_show(dlq_id: str) -> None:
    """Show one dead letter with its payload and error."""
    try:
        console.print_json(data=service().dlq_show(local_principal(), dlq_id))
    except OrchestratorError as exc:
        fail(exc)


@dlq_app.command("redrive")
def _dlq_redrive(dlq_id: str) -> None:
    """Re-drive a dead letter (resume its run, or run its action again)."""
    try:
        console.print_json(data=service().dlq_redrive(local_principal(), dlq_id))
    except OrchestratorError as exc:
        fail(exc)
