"""The ``itom-orch`` command (typer + rich): the root command and the console-script entry point.

Each command group lives in its own module with its own Typer; this module only puts them together, so no group
imports the root back. Heavy imports (Redis, pydantic models, Celery) happen inside the commands that need them,
so that ``itom-orch --help`` and quick client commands start fast.
"""

from __future__ import annotations

import sys

import typer

from orchestrator.cli import bench, commands, runs, schedules, serve
from orchestrator.cli.common import err_console
from orchestrator.errors import OrchestratorError

app = typer.Typer(
    help="itom-orchestrator: Celery-based orchestrator for IT-operations agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for group in (serve.app, runs.app, commands.app, bench.app, schedules.app):
    app.add_typer(group)
app.add_typer(commands.dlq_app, name="dlq")
app.add_typer(schedules.schedule_app, name="schedule")


def main() -> None:
    """Console-script entry point: an error is one line with its ORCH code, never a traceback."""
    try:
        app()
    except OrchestratorError as exc:
        err_console.print(f"[red]{exc.code}[/] {exc.message}")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as exc:
        if not _redis_stopped_answering(exc):
            raise
        err_console.print(
            f"[red]ORCH_8005[/] Redis stopped answering ({exc}). Start it, or point ORCH_REDIS__URL at one that runs."
        )
        sys.exit(2)


def _redis_stopped_answering(exc: Exception) -> bool:
    """Whether ``exc`` is Redis not answering, without importing redis (about 0.2 s) when no command used it."""
    errors = sys.modules.get("redis.exceptions")
    return errors is not None and isinstance(exc, (errors.ConnectionError, errors.TimeoutError))
