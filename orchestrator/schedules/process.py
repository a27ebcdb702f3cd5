"""The beat process ``itom-orch up`` runs beside the workers, supervised by the same ``procs.WorkerPool``.

Why a subprocess under the pool: beat blocks in its own loop and handles its own signals; as a supervised child
in its own session it is restarted with backoff if it dies (a dead beat would silently stop every schedule),
stopped as a group with the workers, and on Linux it also gets SIGTERM if the process that started it dies.
"""

from __future__ import annotations

import os
import sys

BEAT = "beat"  # its name in the pool


def beat_command(loglevel: str = "warning") -> list[str]:
    return [sys.executable, "-c", "from orchestrator.cli.main import main; main()", "beat", "--loglevel", loglevel]


def beat_env(redis_url: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "ORCH_REDIS__URL": redis_url, **(extra_env or {})}
