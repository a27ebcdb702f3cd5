"""The four bench shapes, each runnable bare and orchestrated, and how a timing becomes the figure.

Why both variants of a shape live side by side: they must build the same amount of work, be submitted at
once from the same client, and be waited for the same way (``waiting``), so a ratio compares like with like.
A timing runs from the first submit to the moment the last item is seen done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.bench import orchestrated as orch_defs
from orchestrator.bench.bare import BareCanvases
from orchestrator.bench.config import BenchConfig
from orchestrator.bench.cpu import CpuUse
from orchestrator.bench.waiting import celery_probe, run_probe, wait_all
from orchestrator.models.workflow import WorkflowDefinition
from orchestrator.runtime.redis_client import RedisClient
from orchestrator.security.principals import Principal
from orchestrator.service import Orchestrator


@dataclass(frozen=True)
class Timing:
    """One repetition: wall time from first submit to last done, the part spent submitting, and the CPU it
    cost each party per step (filled in by the runner)."""

    seconds: float
    submit_seconds: float
    cpu: CpuUse | None = None


@dataclass(frozen=True)
class Shape:
    """A bench shape: its size, how its figure reads, and its two runnable variants."""

    key: str
    label: str
    size: int
    unit: str
    throughput: bool  # figure is size / seconds (else milliseconds / per)
    per: int
    steps: int  # task executions per repetition (the same in both variants): CPU is reported per step
    run_bare: Callable[[], Timing]
    run_orchestrated: Callable[[], Timing]

    def figure(self, timing: Timing) -> float:
        if self.throughput:
            return self.size / timing.seconds
        return timing.seconds * 1000.0 / self.per


class ShapeRunner:
    """Runs shapes against one orchestrator (and its Celery app) on the bench Redis."""

    def __init__(
        self, orch: Orchestrator, config: BenchConfig, principal: Principal, *, poller: RedisClient | None = None
    ) -> None:
        """``poller``: the Redis client that checks completion (default: the orchestrator's own)."""
        self.orch = orch
        self.config = config
        self.principal = principal
        self.bare = BareCanvases(orch.app, orch_defs.AGENT_ID)
        poll_client = orch.redis if poller is None else poller
        self._celery_done = celery_probe(orch.app, poll_client)
        self._run_done = run_probe(poll_client)

    def shapes(self) -> list[Shape]:
        c = self.config
        chain_def = orch_defs.chain_definition(c.chain_steps)
        fan_def = orch_defs.fan_in_definition(c.fan_width)
        diamond_def = orch_defs.diamond_definition()
        return [
            Shape(
                "chain",
                f"chain of {c.chain_steps}",
                c.chain_steps,
                "ms/step",
                False,
                c.chain_steps,
                c.chain_steps,
                lambda: self.bare_batch(lambda: [self.bare.chain(c.chain_steps)], "chain tasks"),
                lambda: self.orchestrated_batch(chain_def, 1),
            ),
            Shape(
                "fan_in",
                f"fan-out {c.fan_width} + join",
                c.fan_width,
                "ms",
                False,
                1,
                c.fan_width + 1,
                lambda: self.bare_batch(lambda: [self.bare.fan_in(c.fan_width)], "chord bodies"),
                lambda: self.orchestrated_batch(fan_def, 1),
            ),
            Shape(
                "diamonds",
                f"{c.diamonds} diamonds at once",
                c.diamonds,
                "workflows/s",
                True,
                1,
                4 * c.diamonds,
                lambda: self.bare_batch(lambda: [self.bare.diamond() for _ in range(c.diamonds)], "diamonds"),
                lambda: self.orchestrated_batch(diamond_def, c.diamonds),
            ),
            Shape(
                "singles",
                f"{c.singles} single actions",
                c.singles,
                "tasks/s",
                True,
                1,
                c.singles,
                lambda: self.bare_batch(lambda: [self.bare.noop() for _ in range(c.singles)], "single tasks"),
                lambda: self.orchestrated_singles(c.singles),
            ),
        ]

    def bare_batch(self, build: Callable[[], list[Any]], what: str) -> Timing:
        """Build and apply bare canvases (building is part of the client's work), then wait for all."""
        started = time.perf_counter()
        ids = [self.bare.apply(canvas) for canvas in build()]
        submitted = time.perf_counter()
        finished = self._wait(ids, self._celery_done, what)
        return Timing(finished - started, submitted - started)

    def orchestrated_batch(self, definition: WorkflowDefinition, count: int) -> Timing:
        started = time.perf_counter()
        ids = [
            self.orch.start_workflow(self.principal, definition=definition, source="bench").run_id for _ in range(count)
        ]
        submitted = time.perf_counter()
        finished = self._wait(ids, self._run_done, "runs")
        return Timing(finished - started, submitted - started)

    def orchestrated_singles(self, count: int) -> Timing:
        started = time.perf_counter()
        ids = [
            self.orch.execute_task(self.principal, action=orch_defs.ACTION, source="bench").run_id for _ in range(count)
        ]
        submitted = time.perf_counter()
        finished = self._wait(ids, self._run_done, "single-action runs")
        return Timing(finished - started, submitted - started)

    def _wait(self, ids: list[str], probe: Any, what: str) -> float:
        c = self.config
        return wait_all(ids, probe, timeout=c.shape_timeout_seconds, interval=c.poll_interval_seconds, what=what)
