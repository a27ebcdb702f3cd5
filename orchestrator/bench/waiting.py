"""Wait until a batch of Celery tasks or orchestrated runs is done, by polling Redis with a deadline.

Why polling, and the same way for both variants: a bench must not add waiting costs to one side only.
Both probes read one small value per item (the Celery result key, or the run's ``status`` field) in one
pipelined round trip per poll, and only for the oldest unfinished items, so the cost stays flat for 5,000
items. ``GroupResult.get()`` is avoided on purpose: it stalls 0.5 s on the Redis backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from celery import Celery

from orchestrator import keys
from orchestrator.errors import TaskExecutionError, WorkflowStepFailedError, WorkflowTimeoutError
from orchestrator.runtime.redis_client import RedisClient

# A probe says, for each id, whether it is done; it raises when one failed.
Probe = Callable[[Sequence[str]], list[bool]]

WINDOW = 200  # ids checked per poll (the oldest still pending)


def wait_all(ids: Sequence[str], probe: Probe, *, timeout: float, interval: float, what: str) -> float:
    """Block until ``probe`` reports every id done; returns ``time.perf_counter()`` at that moment."""
    pending = list(ids)
    deadline = time.monotonic() + timeout
    while pending:
        window = pending[:WINDOW]
        done = probe(window)
        still = [item for item, finished in zip(window, done, strict=True) if not finished]
        pending = still + pending[WINDOW:]
        if not pending:
            break
        if len(still) == len(window):  # nothing moved in this window: give the worker a moment
            if time.monotonic() > deadline:
                raise WorkflowTimeoutError(
                    f"bench: {len(pending)} of {len(ids)} {what} still unfinished after {timeout:g}s; check that "
                    "the bench worker is alive (it logs with ORCH_LOG_LEVEL) and that the machine is not overloaded",
                    {"pending": len(pending), "total": len(ids)},
                )
            time.sleep(interval)  # polling interval, bounded by the deadline above
    return time.perf_counter()


def celery_probe(app: Celery, client: RedisClient) -> Probe:
    """Done when the task's result is stored as SUCCESS (bench_noop stores only its final state)."""
    backend = app.backend

    def probe(task_ids: Sequence[str]) -> list[bool]:
        pipe = client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.get(backend.get_key_for_task(task_id))
        done: list[bool] = []
        for task_id, raw in zip(task_ids, pipe.execute(), strict=True):
            if raw is None:
                done.append(False)
                continue
            status = json.loads(raw).get("status")
            if status not in ("SUCCESS", "PENDING", "RECEIVED", "STARTED", "RETRY"):
                raise TaskExecutionError(
                    f"bench: bare task {task_id} ended {status}: {json.loads(raw).get('result')}",
                    {"task_id": task_id, "status": status},
                )
            done.append(status == "SUCCESS")
        return done

    return probe


def run_probe(client: RedisClient) -> Probe:
    """Done when the run's status is ``completed``; a failed, cancelled or missing run stops the bench."""

    def probe(run_ids: Sequence[str]) -> list[bool]:
        pipe = client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hget(keys.run_key(run_id), "status")
        done: list[bool] = []
        for run_id, status in zip(run_ids, pipe.execute(), strict=True):
            if status in ("failed", "cancelled", None):
                error = client.hget(keys.run_key(run_id), "error") if status else None
                raise WorkflowStepFailedError(
                    f"bench: run {run_id} is {status or 'missing'} ({error or 'no error recorded'}); an orchestrated "
                    "bench step must complete, so check the policy table (cmdb-agent must be allowed cmdb.ping)",
                    {"run_id": run_id, "status": status},
                )
            done.append(status == "completed")
        return done

    return probe
