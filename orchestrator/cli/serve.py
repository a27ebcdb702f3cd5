"""The serving commands: ``up`` (Redis + supervised agent workers + API + reconciler), ``api`` (the API and a
reconciler), ``reconcile`` (the reconciler alone), ``mcp`` (stdio tools), ``worker`` (one agent) and ``flower``.

Why a module of their own: these own the process lifecycle (workers, uvicorn, an embedded Redis, the
reconciler thread) and must stop everything they started on Ctrl-C. The service is built once per process and
shared by the HTTP routes and the MCP tools mounted at ``/mcp``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel

from orchestrator.cli.common import connect, console, err_console, fail, local_principal
from orchestrator.errors import OrchestratorError

app = typer.Typer()

if TYPE_CHECKING:
    from orchestrator.settings import Settings

HostOption = Annotated[str | None, typer.Option("--host", help="Interface to listen on (default ORCH_HTTP_HOST)")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port to listen on (default ORCH_HTTP_PORT)")]


def with_api_token(settings: Settings) -> Settings:
    """Settings with a bearer token: configured ones, else the stored one, else a new one printed once."""
    from orchestrator.security.tokens import ensure_api_token

    settings, boot = ensure_api_token(settings)
    if boot.source == "created":
        console.print(
            Panel(
                f"[bold]{boot.token}[/]\n\nSend it as 'Authorization: Bearer <token>' (HTTP and MCP). It is shown only "
                f"this once and stored in {boot.path} (mode 0600).",
                title="New admin API token",
                border_style="yellow",
            )
        )
    elif boot.source == "stored":
        console.print(f"[dim]Auth: using the admin API token stored in {boot.path}[/]")
    else:
        console.print(f"[dim]Auth: {len(settings.auth.tokens)} token(s) from ORCH_AUTH__TOKENS[/]")
    return settings


SHUTDOWN_GRACE_SECONDS = 3  # open requests get this long after Ctrl-C; then they are closed


def serve_http(settings: Settings, host: str | None, port: int | None) -> None:
    """Build the service once, then serve HTTP + MCP with uvicorn until Ctrl-C."""
    import uvicorn

    from orchestrator.asgi import create_app
    from orchestrator.service import Orchestrator

    bind_host = host or settings.http_host
    bind_port = port or settings.http_port
    svc = Orchestrator(settings)
    application = create_app(svc)
    base = f"http://{bind_host}:{bind_port}"
    console.print(f"API {base}/api/docs  MCP {base}/mcp/  metrics {base}/metrics  [dim](Ctrl-C to stop)[/]")
    config = uvicorn.Config(
        application,
        host=bind_host,
        port=bind_port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )

    class Server(uvicorn.Server):
        """Ctrl-C ends every wait and live stream at once (they answer ORCH_8007), so uvicorn's graceful
        shutdown, which waits for open requests, has nothing long to wait for."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            svc.shutdown()
            super().handle_exit(sig, frame)

    _thread, stop = svc.start_reconciler(f"api@{bind_host}:{bind_port}")
    try:
        Server(config).run()
    finally:
        stop.set()
        svc.shutdown()


@app.command()
def up(
    host: HostOption = None,
    port: PortOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Processes per agent worker")] = 1,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for the workers to start")] = 90.0,
) -> None:
    """Run everything: Redis (embedded when none answers; restarted if it dies), one worker per agent, and the API
    with MCP at /mcp."""
    from orchestrator.runtime.embedded_watch import EmbeddedRedisWatchdog
    from orchestrator.runtime.procs import WorkerPool
    from orchestrator.schedules.beat import embedded_beat
    from orchestrator.settings import AGENT_IDS

    try:
        settings, redis = connect(allow_embedded=True, announce=True, durable=True)
    except OrchestratorError as exc:
        fail(exc)
        return
    pool = WorkerPool(settings.redis_url, supervise=True)
    beat = None
    watchdog = EmbeddedRedisWatchdog(redis).start() if redis.source == "embedded" else None
    try:
        settings = with_api_token(settings)
        pool.start(AGENT_IDS, concurrency=concurrency)
        with console.status(
            f"starting {len(AGENT_IDS)} agent workers (supervised: restarted with backoff if they die)..."
        ):
            pool.wait_ready(timeout=ready_timeout)
        console.print(f"[green]workers ready[/]: {', '.join(AGENT_IDS)}")
        beat = embedded_beat(settings)
        beat.start()
        console.print("beat started: schedules (`itom-orch schedule list`) start their runs while `up` runs")
        serve_http(settings, host, port)
    except OrchestratorError as exc:
        fail(exc)
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping the beat, the workers and the embedded Redis (if any)..."):
            if beat is not None:
                beat.stop(timeout=0)  # it ends its sleep while the workers stop
            pool.stop()
            if beat is not None:
                beat.stop()
            if watchdog is not None:
                watchdog.stop()  # before the server: a planned stop is not a crash to recover from
            redis.stop()
        console.print("stopped")


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the HTTP API (with MCP at /mcp) alone; workers run elsewhere (`itom-orch worker --agent X`)."""
    try:
        settings, _ = connect(allow_embedded=False, announce=True)
        serve_http(with_api_token(settings), host, port)
    except OrchestratorError as exc:
        fail(exc)


@app.command()
def reconcile(
    once: Annotated[bool, typer.Option("--once", help="One pass, print what was repaired, exit")] = False,
) -> None:
    """Run the reconciler alone: repairs what crashes left behind (leader-elected: safe beside `up` and `api`)."""
    import threading

    from orchestrator.service import Orchestrator

    try:
        settings, _ = connect(allow_embedded=False, announce=True)
        svc = Orchestrator(settings)
    except OrchestratorError as exc:
        fail(exc)
        return
    if once:
        console.print_json(data=svc.reconcile_once())
        return
    console.print(
        f"reconciling every {settings.reliability.reconcile_interval_seconds:g}s while this process holds the "
        "leader lock [dim](Ctrl-C to stop)[/]"
    )
    stop = threading.Event()
    try:
        svc.run_reconciler(stop, "reconcile-command")
    except KeyboardInterrupt:
        stop.set()


@app.command()
def mcp() -> None:
    """Serve the MCP tools over stdio (for IDEs and LLM agents); you act as the local operator."""
    from orchestrator.mcp import create_mcp
    from orchestrator.service import Orchestrator

    try:
        settings, _ = connect(allow_embedded=False)
        server = create_mcp(Orchestrator(settings), local_principal=local_principal())
    except OrchestratorError as exc:
        err_console.print(f"[red]{exc.code}[/] {exc.message}")
        raise typer.Exit(2) from exc
    server.run(transport="stdio", show_banner=False)


@app.command()
def worker(
    agent: Annotated[str, typer.Option("--agent", "-a", help="Agent whose queue this worker consumes")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Pool processes")] = 1,
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
