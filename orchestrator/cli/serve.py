"""The serving commands: ``up`` (Redis + supervised agent workers + API + reconciler), ``api`` (the API and a
reconciler), ``reconcile`` (the reconciler alone), ``mcp`` (stdio tools).

Why here and not in ``cli.py``: these own the process lifecycle (workers, uvicorn, an embedded Redis, the
reconciler thread) and must stop everything they started on Ctrl-C. The service is built once per process and
shared by the HTTP routes and the MCP tools mounted at ``/mcp``. ``cli.main()`` imports this module to register
the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.panel import Panel

from orchestrator.cli.app import _fail, app, connect, console, err_console, local_principal
from orchestrator.errors import OrchestratorError

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

    from orchestrator.http import create_app
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

    _thread, stop = svc.reconciler.start(holder=f"api@{bind_host}:{bind_port}")
    try:
        Server(config).run()
    finally:
        stop.set()
        svc.shutdown()


@app.command()
def up(
    host: HostOption = None,
    port: PortOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Processes per agent worker")] = 1,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for the workers to start")] = 90.0,
) -> None:
    """Run everything: Redis (embedded when none answers), one worker per agent, and the API with MCP at /mcp."""
    from orchestrator.runtime.procs import WorkerPool
    from orchestrator.schedules.process import BEAT, beat_command, beat_env
    from orchestrator.settings import AGENT_IDS

    try:
        settings, redis = connect(allow_embedded=True, announce=True)
    except OrchestratorError as exc:
        _fail(exc)
        return
    pool = WorkerPool(settings.redis_url, supervise=True)
    try:
        settings = with_api_token(settings)
        pool.start(AGENT_IDS, concurrency=concurrency)
        with console.status(
            f"starting {len(AGENT_IDS)} agent workers (supervised: restarted with backoff if they die)..."
        ):
            pool.wait_ready(timeout=ready_timeout)
        console.print(f"[green]workers ready[/]: {', '.join(AGENT_IDS)}")
        pool.start_process(BEAT, beat_command(), beat_env(settings.redis_url))
        console.print("beat started: schedules (`itom-orch schedule list`) start their runs while `up` runs")
        serve_http(settings, host, port)
    except OrchestratorError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("stopping the beat, the workers and the embedded Redis (if any)..."):
            pool.stop()
            redis.stop()
        console.print("stopped")


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the HTTP API (with MCP at /mcp) alone; workers run elsewhere (`itom-orch worker --agent X`)."""
    try:
        settings, _ = connect(allow_embedded=False, announce=True)
        serve_http(with_api_token(settings), host, port)
    except OrchestratorError as exc:
        _fail(exc)


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
        _fail(exc)
        return
    if once:
        console.print_json(data=svc.reconciler.tick())
        return
    console.print(
        f"reconciling every {settings.reliability.reconcile_interval_seconds:g}s while this process holds the "
        "leader lock [dim](Ctrl-C to stop)[/]"
    )
    stop = threading.Event()
    try:
        svc.reconciler.run(stop, holder="reconcile-command")
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
