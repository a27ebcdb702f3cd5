"""Gated joins at scale: a random 10,000-step DAG (not series-parallel) against a series-parallel DAG of the
same size, both orchestrated on the same worker, as steps per second.

Why this pair: Celery canvases express only series-parallel order, so a random DAG runs mostly from gated
triggers (the finish script counts each join down and the worker applies what it released), while the layered
DAG runs from chords alone. The ratio (series-parallel rate / random rate, per repetition) says what the
trigger path costs; the target is at most 1.5x.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.bench import orchestrated as orch_defs
from orchestrator.bench.micro import random_dag
from orchestrator.bench.shapes import ShapeRunner, Timing

DAG_RATE_RATIO_MAX = 1.5


@dataclass(frozen=True)
class DagRateFigure:
    steps: int
    random: tuple[Timing, ...]
    layered: tuple[Timing, ...]

    def rates(self, timings: tuple[Timing, ...]) -> list[float]:
        return [self.steps / t.seconds for t in timings]


def measure_dag_rates(
    runner: ShapeRunner, steps: int, repeat: int, progress: Callable[[str], None], measure: Callable[..., Timing]
) -> DagRateFigure:
    """Alternate the two DAGs ``repeat`` times (each a fresh run); ``measure(run, steps)`` times one run."""
    layered_def = orch_defs.layered_definition(steps)
    size = len(layered_def.steps)
    random_def = random_dag(size, seed=11)
    random_runs: list[Timing] = []
    layered_runs: list[Timing] = []
    for rep in range(repeat):
        layered_runs.append(measure(lambda: runner.orchestrated_batch(layered_def, 1), size))
        random_runs.append(measure(lambda: runner.orchestrated_batch(random_def, 1), size))
        progress(
            f"gated joins {rep + 1}/{repeat}: series-parallel {size / layered_runs[-1].seconds:,.1f} steps/s, "
            f"random DAG {size / random_runs[-1].seconds:,.1f} steps/s"
        )
    return DagRateFigure(size, tuple(random_runs), tuple(layered_runs))
