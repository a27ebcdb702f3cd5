"""Wait until a batch of Celery tasks or orchestrated runs is done, by polling Redis with a deadline.

Why polling, and the same way for both variants: a bench must not add waiting costs to one side only.
Both probes read one small value per item (the Celery result key, or the run's ``status`` field) in one
pipelined round trip per poll. ``GroupResult.get()`` is avoided on purpose: it stalls 0.5 s on the Redis backend.

Why the poll costs what finishes, not what time passes: on a 2-core machine the waiting client shares the cores
with the worker and Redis it measures. A poller that re-reads a window of 200 pending items whenever one of them
moved never sleeps while a batch drains, and took ~0.5 of a core from the system under test (0.2 ms of client
CPU per single action, measured). That tax grows with the drain's length, so it weighed more on the slower
variant. Now a poll reads the oldest pending item, and reads further (doubling, up to 200) only while everything
it read was done; when nothing moved it sleeps one interval. The last item is still seen within one interval.
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

WINDOW = 200  # most ids read by one poll


def wait_all(ids: Sequence[str], probe: Probe, *, timeout: float, interval: float, what: str) -> float:
    """Block until ``probe`` reports every id done; returns ``time.perf_counter()`` at that moment.

    Items are read oldest first. A read that found all its items done doubles the next one (up to ``WINDOW``);
    one that found some done reads that many next; one that found none sleeps ``interval`` and starts again
    with one item.
    """
    pending = list(ids)
    deadline = time.monotonic() + timeout
    chunk = 1
    while pending:
        window = pending[:chunk]
        done = probe(window)
        still = [item for item, finished in zip(window, done, strict=True) if not finished]
        pending = still + pending[len(window) :]
        if not pending:
            break
        moved = len(window) - len(still)
        if moved:
            chunk = min(2 * chunk, WINDOW) if not still else moved
            continue
        chunk = 1
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
