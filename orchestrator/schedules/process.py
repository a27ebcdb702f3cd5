"""Start and stop the beat process beside the workers (``itom-orch up``), like ``procs`` does for workers.

Why a subprocess: beat blocks in its own loop and handles its own signals; as a child in its own session
it is stopped as a group, and on Linux it also gets SIGTERM if the process that started it dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc Linux: stop_beat still stops it on every normal exit
    _LIBC = None


def beat_command(loglevel: str = "warning") -> list[str]:
    return [sys.executable, "-c", "from orchestrator.cli import main; main()", "beat", "--loglevel", loglevel]


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_beat(
    redis_url: str, *, extra_env: dict[str, str] | None = None, quiet: bool = True, loglevel: str = "warning"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ORCH_REDIS__URL": redis_url, **(extra_env or {})}
    return subprocess.Popen(
        beat_command(loglevel),
        env=env,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.DEVNULL if quiet else None,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - one async-signal-safe libc call
    )


def stop_beat(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM (beat releases its lock), then SIGKILL to the group if it lingers."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
