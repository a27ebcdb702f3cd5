"""What every ``itom-orch`` command group shares: the consoles, finding Redis, the service, the local principal.

Client commands talk to Redis directly with operator rights of the local user (they need the Redis URL,
which is the real credential); the HTTP and MCP front doors use bearer tokens. Heavy imports (Redis, pydantic
models, Celery) happen inside the functions that need them, so that ``itom-orch --help`` starts fast.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from orchestrator.runtime.embedded import RedisHandle
    from orchestrator.settings import Settings

console = Console()
err_console = Console(stderr=True)


def _url_file(settings: Settings) -> Path:
    return settings.data_dir / "redis.url"


def connect(
    *, allow_embedded: bool = True, announce: bool = False, durable: bool = False
) -> tuple[Settings, RedisHandle]:
    """Resolve Redis (configured, local, the one `up` started, or embedded) and publish it to the settings;
    ``durable``: an embedded one keeps an append-only file (``up``)."""
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
        durable=durable,
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


def fail(exc: OrchestratorError) -> None:
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
        if key in out:  # the last one would win silently: a typo in a long command line must not pass unseen
            raise typer.BadParameter(f"parameter '{key}' is given twice; give it once")
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


def warn_offline(svc: Any, agent_ids: set[str]) -> None:
    """Say so when no live worker serves an agent a run needs: the run waits in that queue until one starts."""
    statuses = svc.agent_statuses()
    for agent_id in sorted(agent_ids):
        if statuses.get(agent_id) not in ("online", "degraded"):
            err_console.print(
                f"[yellow]no live worker serves {agent_id}[/]: its steps wait in the queue until one starts "
                f"(`itom-orch up`, or `itom-orch worker --agent {agent_id}`)"
            )
