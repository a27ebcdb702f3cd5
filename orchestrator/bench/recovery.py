"""Recovery figure: from a whole-worker SIGKILL mid-step to the run completing, under `up`'s own set-up.

Why a bench and not a test: the target (<= 30 s) is a figure of the product with its default settings (lease
10 s, reconciler every 2 s, supervised workers restarted with backoff), on a private Redis, measured a few
times. Each repetition starts a one-step write run held mid-step by the fault injector (an operator drill),
SIGKILLs the agent's whole worker (main process and pool), lets the held step go, and times until the run
completes: the supervisor restarts the worker, the reconciler restores the dead worker's message, the new
worker runs the step again (its write happening once, by its idempotency key).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from orchestrator import keys
from orchestrator.errors import WorkflowTimeoutError
from orchestrator.models.workflow import WorkflowDefinition, WorkflowStep
from orchestrator.runtime.embedded import start_embedded
from orchestrator.runtime.procs import WorkerPool
from orchestrator.runtime.redis_client import get_redis
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator
from orchestrator.settings import RedisSettings, Settings

AGENT = "csa-agent"
PRINCIPAL = Principal("bench", "operator")


@dataclass(frozen=True)
class RecoveryFigure:
    seconds: tuple[float, ...]
    attempts: tuple[int, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def as_dict(self) -> dict[str, object]:
        return {
            "seconds": list(self.seconds),
            "median": round(self.median, 3),
            "min": round(min(self.seconds), 3),
            "max": round(max(self.seconds), 3),
            "attempts": list(self.attempts),
            "target_seconds": 30,
            "met": max(self.seconds) <= 30,
        }


def measure_recovery(repeat: int = 3, progress: Callable[[str], None] = lambda _: None) -> RecoveryFigure:
    data_dir = Path(tempfile.mkdtemp(prefix="itom-orch-recovery-"))
    handle = start_embedded(data_dir)
    pool = WorkerPool(handle.url, supervise=True)
    stop = None
    try:
        client = get_redis(handle.url)
        env = {"ORCH_FAULT_INJECTION": "true", "ORCH_BROKER_URL": "", "ORCH_DATA_DIR": str(data_dir)}
        pool.start([AGENT], extra_env=env)
        pool.wait_ready(timeout=90)
        orch = Orchestrator(Settings(redis=RedisSettings(url=handle.url), broker_url=None, data_dir=data_dir))
        _thread, stop = orch.reconciler.start(holder="bench-recovery")
        seconds: list[float] = []
        attempts: list[int] = []
        for index in range(repeat):
            pool.wait_ready(timeout=90)
            took, tries = _one(orch, client, pool)
            seconds.append(took)
            attempts.append(tries)
            progress(f"recovery {index + 1}/{repeat}: {took:.2f}s from the kill to the run completing")
        return RecoveryFigure(tuple(seconds), tuple(attempts))
    finally:
        if stop is not None:
            stop.set()
        pool.stop()
        handle.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _one(orch: Orchestrator, client: object, pool: WorkerPool) -> tuple[float, int]:
    step_id = f"held-{uuid4().hex[:8]}"
    fault = keys.fault_key(step_id)
    client.set(fault, json.dumps({"hold": 120}), ex=600)  # type: ignore[attr-defined]
    step = WorkflowStep(
        step_id=step_id,
        action="csa.run_remediation",
        parameters={"summary": "recovery drill", "risk_level": "low"},
    )
    run = orch.start_workflow(PRINCIPAL, definition=WorkflowDefinition(name="recovery drill", steps=[step]))
    deadline = time.monotonic() + 60
    while not client.get(f"{fault}:pid"):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise WorkflowTimeoutError("the drill step never started")
        time.sleep(0.02)  # polling the drill step's start; bounded by the deadline
    pid = pool.pid(AGENT)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    killed = time.monotonic()
    client.set(f"{fault}:release", "1", ex=600)  # type: ignore[attr-defined]
    view = orch.wait_for_run(run.run_id, timeout=120)
    took = time.monotonic() - killed
    if view.status.value != "completed":
        raise WorkflowTimeoutError(f"the drill run ended {view.status.value}: {view.error}")
    return took, view.steps[0].attempts
