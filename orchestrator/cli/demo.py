"""``itom-orch demo``: the main job end to end on whatever Redis there is (embedded if none).

Starts one worker per agent, queries the CMDB agent for a production CI, runs the incident-response workflow
on it with live progress, prints the summary and the run's audit trail, and stops everything it started.
Exits 0 only when the run completed.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.cli.render import summarize
from orchestrator.models.run import RunView
from orchestrator.settings import AGENT_IDS


def first_ci_name(result: Any) -> str | None:
    """The first CI name (or sys_id) in a cmdb.query result, wherever its list is."""
    if isinstance(result, dict):
        for value in result.values():
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and (item.get("name") or item.get("sys_id")):
                        return str(item.get("name") or item.get("sys_id"))
    return None


def summary_table(view: RunView) -> Table:
    table = Table("step", "agent", "status", "duration", "result", title=f"Run {view.run_id}: {view.status.value}")
    for step in view.steps:
        duration = f"{step.duration_ms:.0f} ms" if step.duration_ms is not None else "-"
        detail = summarize(step.result, 90) if step.error is None else f"{step.error.code} {step.error.message}"
        table.add_row(step.step_id, step.agent_id, step.status.value, duration, detail)
    return table


def where_it_wrote(handle: Any, settings: Any) -> str:
    """Tell the user what the demo left, and where (a developer's own Redis deserves to know)."""
    from orchestrator.runtime.redis_client import masked

    days = settings.retention.run_ttl_seconds / 86400
    if handle.source == "embedded":
        return (
            "The demo wrote to its own embedded Redis, stopped now with everything it held (it keeps nothing on "
            "disk); nothing was written to any other Redis."
        )
    return (
        f"The demo's runs, events and audit entries are in {masked(handle.url)} (keys orch:*); finished runs expire "
        f"after {days:g} days, the audit log keeps its entries. Set ORCH_REDIS__EMBEDDED=true to keep demos apart."
    )


def run_demo(console: Console, *, timeout: float = 120.0) -> bool:
    from orchestrator.cli.common import connect, follow
    from orchestrator.runtime.procs import WorkerPool
    from orchestrator.security.principals import Principal
    from orchestrator.service import Orchestrator

    settings, handle = connect(allow_embedded=True, announce=True)
    pool = WorkerPool(handle.url)
    try:
        with console.status(f"Starting {len(AGENT_IDS)} agent workers (one queue and role each)..."):
            pool.start(AGENT_IDS)
            pool.wait_ready(timeout=90)
        console.print(f"[green]workers ready:[/] {', '.join(AGENT_IDS)}")
        svc = Orchestrator(settings)
        _thread, stop_reconciler = svc.start_reconciler("demo")
        principal = Principal("demo", "operator")
        lookup = svc.execute_task(
            principal, action="cmdb.query", parameters={"environment": "Production", "limit": 5}, source="demo"
        )
        lookup = svc.wait_for_run(lookup.run_id, timeout=timeout)
        ci = first_ci_name(lookup.steps[0].result) if lookup.status.value == "completed" else None
        if ci is None:
            console.print(f"[red]cmdb.query found no production CI ({lookup.status.value})[/]")
            return False
        console.print(f"incident on CI [bold]{ci}[/]: starting template [bold]incident-response[/]")
        run = svc.start_workflow(
            principal,
            template_id="incident-response",
            parameters={"ci_id": ci, "summary": f"Service degradation on {ci}"},
            source="demo",
        )
        view = follow(svc, run.run_id, timeout)
        console.print(summary_table(view))
        trail = svc.audit_query(Principal("demo", "admin"), limit=50)
        mine = [e for e in trail if run.run_id in (e.target or "")]
        console.print(f"[dim]audit trail for {run.run_id}:[/]")
        for entry in reversed(mine):
            console.print(f"  {entry.timestamp}  {entry.event_type:<20} {entry.actor:<28} {entry.target}")
        ok = bool(view.status.value == "completed")
        console.print("[green]demo completed[/]" if ok else f"[red]demo run ended {view.status.value}[/]")
        console.print(f"[dim]{where_it_wrote(handle, settings)}[/]")
        stop_reconciler.set()
        return ok
    finally:
        with console.status("Stopping workers..."):
            pool.stop()
        handle.stop()
