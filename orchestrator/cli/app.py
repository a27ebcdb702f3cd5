"""The ``itom-orch`` command (typer + rich): run the system, drive workflows, inspect state.

Client commands talk to Redis directly with operator rights of the local user (they need the Redis URL,
which is the real credential); the HTTP and MCP front doors use bearer tokens.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.runtime.embedded import RedisHandle
    from orchestrator.settings import Settings

# Heavy imports (Redis, pydantic models, Celery) happen inside the commands that need them, so that
# `itom-orch --help` and quick client commands start fast.

app = typer.Typer(
    help="itom-orchestrator: Celery-based orchestrator for IT-operations agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Dead letters: list, show, re-drive.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console()
err_console = Console(stderr=True)


def _url_file(settings: Settings) -> Path:
    return settings.data_dir / "redis.url"


def connect(*, allow_embedded: bool = True, announce: bool = False) -> tuple[Settings, RedisHandle]:
    """Resolve Redis (configured, local, the one `up` started, or embedded) and publish it to the settings."""
    from orchestrator.runtime.embedded import resolve_redis
    from orchestrator.settings import get_settings, reset_settings

    settings = get_settings()
    configured = settings.redis.url
    origin = "from ORCH_REDIS__URL"
    url_file = _url_file(settings)
    if not configured and url_file.exists():
        from orchestrator.runtime.redis_client import ping

        remembered = url_file.read_text().strip()
        if remembered and ping(remembered):
            configured = remembered
            origin = f"the one `itom-orch up` started, from {url_file}"
    handle = resolve_redis(
        None if settings.redis.embedded else configured,
        settings.data_dir,
        allow_embedded=allow_embedded,
        force_embedded=settings.redis.embedded,
    )
    os.environ["ORCH_REDIS__URL"] = handle.url
    reset_settings()
    if handle.source == "embedded":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url_file.write_text(handle.url)
    from orchestrator.runtime.redis_client import masked

    if announce:
        console.print(f"[dim]Redis: {masked(handle.url)} ({handle.source})[/]")
    else:  # client commands say which Redis they talk to (on stderr: --json output stays clean)
        err_console.print(f"[dim]Redis: {masked(handle.url)} ({_source_words(handle.source, origin)})[/]")
    return get_settings(), handle


def _source_words(source: str, origin: str) -> str:
    return {
        "configured": origin,
        "local": "the local one on port 6379: set ORCH_REDIS__URL if `up` runs elsewhere",
        "embedded": "embedded",
    }.get(source, source)


def service() -> Any:
    from orchestrator.service import Orchestrator

    settings, _ = connect(allow_embedded=False)
    return Orchestrator(settings)


def local_principal() -> Any:
    from orchestrator.security.principals import Principal

    return Principal(getpass.getuser(), "admin")


def _fail(exc: OrchestratorError) -> None:
    err_console.print(f"[red]{exc.code}[/] {exc.message}")
    raise typer.Exit(2)


def parse_params(pairs: list[str], declared: dict[str, str] | None = None) -> dict[str, Any]:
    """``-p key=value``, each value coerced to its parameter's declared type.

    A ``string`` parameter takes the text as it is (``-p ci_id=12345`` is the string "12345"); other types
    are read as JSON (numbers, ``true``, lists, objects). An undeclared parameter is read as JSON when it
    parses, else as text (the plan then says whether the template declares it).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"'{pair}' is not key=value")
        key, value = (part.strip() for part in pair.split("=", 1))
        kind = (declared or {}).get(key)
        if kind == "string":
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            if kind is None:
                out[key] = value
                continue
            example = _EXAMPLES.get(kind, "3")
            raise typer.BadParameter(
                f"parameter '{key}' is {kind}; '{value}' is not one (write it as JSON, quoted for the shell: "
                f"-p '{key}={example}')"
            ) from None
    return out


_EXAMPLES = {"integer": "30", "number": "0.5", "boolean": "true", "array": '["a","b"]', "object": '{"k":"v"}'}


def follow(svc: Any, run_id: str, timeout: float) -> Any:
    """Live progress table until the run ends (woken by its events)."""
    from rich.live import Live

    from orchestrator.cli.render import run_table

    view = svc.get_run(run_id)
    with Live(run_table(view), console=console, refresh_per_second=8) as live:

        def on_event(_: Any) -> None:
            live.update(run_table(svc.get_run(run_id)))

        view = svc.wait_for_run(run_id, timeout=timeout, on_event=on_event)
        live.update(run_table(view))
    console.line()  # a non-terminal Live leaves the cursor at the end of the table
    if view.error:
        console.print(f"[red]{view.error.code}[/] {view.error.message}")
    return view


@app.command()
def worker(
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent whose queue this worker consumes")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 1,
    loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "info",
) -> None:
    """Run one agent's Celery worker (its role comes from --agent, never from messages)."""
    from orchestrator.settings import AGENT_IDS

    if agent not in AGENT_IDS:
        err_console.print(f"[red]ORCH_1001[/] Unknown agent '{agent}'. Known: {', '.join(AGENT_IDS)}")
        raise typer.Exit(2)
    from orchestrator.runtime.procs import worker_command, worker_env

    settings, _ = connect(allow_embedded=False)
    env = worker_env(agent, settings.redis_url)
    command = worker_command(agent, concurrency=concurrency, loglevel=loglevel)
    os.execvpe(command[0], command, env)


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
    for record in svc.agents.list():
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
    from orchestrator.catalog import ACTIONS

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
        _fail(exc)


@app.command()
def status(
    run_id: Annotated[str | None, typer.Argument(help="Run id; omit to list recent runs")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
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
        _fail(exc)


def warn_offline(svc: Any, agent_ids: set[str]) -> None:
    """Say so when no live worker serves an agent a run needs: the run waits in that queue until one starts."""
    statuses = svc.agents.statuses()
    for agent_id in sorted(agent_ids):
        if statuses.get(agent_id) not in ("online", "degraded"):
            err_console.print(
                f"[yellow]no live worker serves {agent_id}[/]: its steps wait in the queue until one starts "
                f"(`itom-orch up`, or `itom-orch worker --agent {agent_id}`)"
            )


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
        _fail(exc)


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
        _fail(exc)


# Flower's task list: the kwargs column shows each step's run, step and action; exception the error code.
FLOWER_TASK_COLUMNS = "name,uuid,state,kwargs,exception,retries,received,runtime,worker"


@app.command()
def flower(
    port: Annotated[int | None, typer.Option()] = None,
    address: Annotated[str, typer.Option()] = "127.0.0.1",
    allow_control: Annotated[
        bool,
        typer.Option(
            "--allow-control",
            help="Enable Flower's revoke/terminate/shutdown/apply buttons (they bypass policy checks and the audit "
            "log; use cancel, resume and dlq redrive instead)",
        ),
    ] = False,
) -> None:
    """Run Flower behind basic auth (ORCH_FLOWER__BASIC_AUTH=user:password, required), read-only by default.

    The credentials reach Flower through its environment (``FLOWER_BASIC_AUTH``), never its command line, which
    any local user can read (``ps``, ``/proc/<pid>/cmdline``). Its task list shows each step's run, step and action
    (the ``kwargs`` column) unless ``FLOWER_TASKS_COLUMNS`` says otherwise."""
    settings, _ = connect(allow_embedded=False)
    credentials = settings.flower.basic_auth or ""
    if not credentials or not all(":" in pair for pair in credentials.split(",")):
        err_console.print(
            "[red]ORCH_8001[/] Set ORCH_FLOWER__BASIC_AUTH=user:password (several: comma-separated; a password "
            "cannot hold a comma); Flower never runs open."
        )
        raise typer.Exit(2)
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "flower",
        f"--port={port or settings.flower.port}",
        f"--address={address}",
    ]
    env = {**os.environ, "FLOWER_BASIC_AUTH": credentials, "FLOWER_READ_ONLY": "false" if allow_control else "true"}
    env.setdefault("FLOWER_TASKS_COLUMNS", FLOWER_TASK_COLUMNS)
    if allow_control:
        err_console.print("[yellow]Flower's control buttons are on: they bypass policy checks and the audit log.[/]")
    os.execvpe(command[0], command, env)


def main() -> None:
    """Console-script entry point: an error is one line with its ORCH code, never a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        app()
    except OrchestratorError as exc:
        err_console.print(f"[red]{exc.code}[/] {exc.message}")
        sys.exit(2)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        err_console.print(
            f"[red]ORCH_8005[/] Redis stopped answering ({exc}). Start it, or point ORCH_REDIS__URL at one that runs."
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


# The commands that run whole subsystems live in their own modules; importing them registers them on ``app``.
from orchestrator.cli import bench, commands, schedules, serve  # noqa: E402,F401
