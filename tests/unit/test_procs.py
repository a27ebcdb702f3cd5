"""Supervision of processes that are not agent workers (the beat ``itom-orch up`` runs): restarted with backoff
when they die, stopped with the pool. Real child processes, no Redis (such a process has no instance or health
entry to write)."""

from __future__ import annotations

import os
import signal
import sys

from orchestrator.runtime import procs
from orchestrator.runtime.procs import WorkerPool
from orchestrator.schedules.process import BEAT, beat_command, beat_env
from tests.integration.helpers import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_supervised_process_that_dies_is_restarted_and_stopped_with_the_pool() -> None:
    pool = WorkerPool("redis://127.0.0.1:1/0", supervise=True)
    pool.start_process(BEAT, SLEEPER, dict(os.environ))
    try:
        first = pool.pid(BEAT)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        second = wait_until(lambda: (pid := pool.pid(BEAT)) != first and pid, timeout=20, what="beat restarted")
        worker = pool.workers[BEAT]
        assert worker.restarts == 1 and not worker.recovering and worker.process is not None
        assert worker.process.poll() is None
    finally:
        pool.stop(timeout=5)
    assert pool.workers == {}
    assert second != first


def test_the_beat_runs_the_cli_beat_command_on_the_given_redis() -> None:
    assert beat_command()[-3:] == ["beat", "--loglevel", "warning"]
    assert beat_env("redis://127.0.0.1:7/3", {"X": "1"})["ORCH_REDIS__URL"] == "redis://127.0.0.1:7/3"
    assert procs.BACKOFF_FIRST_SECONDS < 1  # a dead beat is back within a second the first time
