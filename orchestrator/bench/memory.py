"""Redis memory held per run, and proof that finished runs are bounded (their keys expire).

Why through ``RunStore`` directly: it writes exactly what dispatch and the worker write for a one-step run
(create, running, begin step, finish step) at a fraction of the time of 10,000 real executions. What it
leaves out is reported with the figure: Celery's own result key per step (``result_expires``) and the
capped event and audit streams, whose size is bounded by their caps rather than by the number of runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import uuid4

from orchestrator import keys
from orchestrator.bench.orchestrated import chain_definition
from orchestrator.errors import StateWriteError
from orchestrator.models.common import RunStatus, StepStatus
from orchestrator.models.workflow import WorkflowPlan
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.state.runs import RunStore
from orchestrator.workflows.dag import plan


@dataclass(frozen=True)
class MemoryFigure:
    runs: int
    bytes_per_active_run: float
    bytes_per_finished_run: float
    run_keys_with_ttl: int
    run_keys_without_ttl: int
    max_ttl_seconds: int
    active_set_left: int
    index_entries_added: int  # the runs index is one sorted set, trimmed by age (retention) on every create

    @property
    def bounded(self) -> bool:
        """Every finished run's keys expire and no run is left counted as active."""
        return self.run_keys_without_ttl == 0 and self.active_set_left == 0


def used_memory(client: RedisClient) -> int:
    return int(client.info("memory")["used_memory"])


def measure_memory(client: RedisClient, runs: RunStore, count: int) -> MemoryFigure:
    one_step: WorkflowPlan = plan(chain_definition(1))
    step_id = one_step.steps[0].step_id
    prefix = f"run-bench-mem-{uuid4().hex[:8]}-"
    run_ids = [f"{prefix}{i}" for i in range(count)]
    active_before = int(client.scard(keys.ACTIVE_RUNS))
    index_before = int(client.zcard(keys.RUNS_INDEX))
    baseline = used_memory(client)
    for run_id in run_ids:
        runs.create(run_id, one_step, created_by="bench")
        runs.transition(run_id, RunStatus.RUNNING)
    active = used_memory(client)
    for run_id in run_ids:
        begin = runs.begin_step(run_id, step_id)
        if begin.verdict != "run":
            raise StateWriteError(f"bench: run {run_id} could not begin its step ({begin.verdict})")
        runs.finish_step(run_id, step_id, StepStatus.COMPLETED, effect="done", started=time.time(), result={})
    finished = used_memory(client)
    ttls = _ttls(client, run_ids)
    return MemoryFigure(
        runs=count,
        bytes_per_active_run=(active - baseline) / count,
        bytes_per_finished_run=(finished - baseline) / count,
        run_keys_with_ttl=sum(1 for t in ttls if t > 0),
        run_keys_without_ttl=sum(1 for t in ttls if t == -1),
        max_ttl_seconds=max(ttls, default=0),
        active_set_left=int(client.scard(keys.ACTIVE_RUNS)) - active_before,
        index_entries_added=int(client.zcard(keys.RUNS_INDEX)) - index_before,
    )


def _ttls(client: RedisClient, run_ids: list[str]) -> list[int]:
    """TTL of every run hash (-1: no expiry, -2: gone)."""
    found: list[int] = []
    for start in range(0, len(run_ids), 1000):
        pipe = client.pipeline(transaction=False)
        for run_id in run_ids[start : start + 1000]:
            pipe.ttl(keys.run_key(run_id))
        found.extend(int(t) for t in pipe.execute())
    return found
