"""What one bench run measured: the runner fills these in, the report turns them into the JSON document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.bench.config import BenchConfig
from orchestrator.bench.dagrate import DagRateFigure
from orchestrator.bench.eventbus import EventBusFigure
from orchestrator.bench.memory import MemoryFigure
from orchestrator.bench.micro import CompileFigure
from orchestrator.bench.monitor import CommandCount
from orchestrator.bench.shapes import Shape, Timing


@dataclass
class ShapeResult:
    shape: Shape
    bare: list[Timing] = field(default_factory=list)
    orchestrated: list[Timing] = field(default_factory=list)


@dataclass(frozen=True)
class MicroResults:
    compile: CompileFigure
    decision_us: tuple[float, ...]
    audit_ms: tuple[float, ...]
    events: EventBusFigure  # batched publishing (publish_many): the figure checked against the target
    events_single: EventBusFigure  # one event per publish call
    memory: MemoryFigure


@dataclass(frozen=True)
class BenchResults:
    """Everything measured in one run (``report.build_report`` turns it into the JSON document)."""

    config: BenchConfig
    started_at: str
    duration_seconds: float
    machine: dict[str, Any]
    shapes: list[ShapeResult]
    micro: MicroResults | None  # None when only some shapes were measured (``--shape``)
    commands: dict[str, CommandCount]
    dag_rates: DagRateFigure | None = None
