"""Sizes and repetitions of one bench run: the full figures of ARCHITECTURE.md section 10, or a quick pass.

Why a frozen value: the report records exactly what was measured (sizes travel into the JSON), and the
quick pass is the same code with smaller numbers rather than a separate path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from orchestrator.errors import InputInvalidError

# What ``--shape`` may name: the four timed shapes and the gated-join DAG comparison.
SHAPE_NAMES = ("chain", "fan_in", "diamonds", "singles", "dag")


@dataclass(frozen=True)
class BenchConfig:
    """Every size the bench uses; ``full()`` and ``quick()`` are the two presets."""

    mode: str = "full"
    repeat: int = 5
    chain_steps: int = 50
    fan_width: int = 100
    diamonds: int = 200
    singles: int = 5000
    compile_steps: int = 10_000
    compile_repeat: int = 5
    decision_calls: int = 200_000
    audit_appends: int = 2000
    events: int = 50_000
    memory_runs: int = 10_000
    monitor_chain_steps: int = 10
    dag_steps: int = 10_000  # gated joins: a random DAG vs a series-parallel one of this size (0: skipped)
    dag_repeat: int = 2
    poll_interval_seconds: float = 0.002
    shape_timeout_seconds: float = 600.0
    # Only these (names from SHAPE_NAMES); empty: every shape, the DAG comparison, the micro figures and MONITOR.
    only: tuple[str, ...] = ()

    @classmethod
    def full(cls, repeat: int | None = None) -> BenchConfig:
        return cls().with_repeat(repeat)

    @classmethod
    def quick(cls, repeat: int | None = None) -> BenchConfig:
        """Small sizes, one repetition: the whole bench in well under a minute."""
        preset = cls(
            mode="quick",
            repeat=1,
            chain_steps=10,
            fan_width=10,
            diamonds=10,
            singles=100,
            compile_repeat=2,
            decision_calls=20_000,
            audit_appends=200,
            events=2000,
            memory_runs=1000,
            monitor_chain_steps=5,
            dag_steps=200,
            dag_repeat=1,
            shape_timeout_seconds=120.0,
        )
        return preset.with_repeat(repeat)

    def with_repeat(self, repeat: int | None) -> BenchConfig:
        if repeat is None:
            return self
        if repeat < 1:
            raise InputInvalidError(f"--repeat must be at least 1 (got {repeat})", {"repeat": repeat})
        return replace(self, repeat=repeat)

    def with_only(self, names: list[str] | None) -> BenchConfig:
        """Measure only the named shapes (``--shape``): a quicker loop for work on one figure, nothing else."""
        if not names:
            return self
        unknown = sorted(set(names) - set(SHAPE_NAMES))
        if unknown:
            raise InputInvalidError(
                f"unknown bench shape(s) {unknown}; name one or more of {', '.join(SHAPE_NAMES)}",
                {"shapes": names, "known": list(SHAPE_NAMES)},
            )
        return replace(self, only=tuple(dict.fromkeys(names)))

    @property
    def complete(self) -> bool:
        """True when every figure is measured (no ``--shape``): the micro figures and MONITOR belong to it."""
        return not self.only

    def measures(self, name: str) -> bool:
        return not self.only or name in self.only

    def as_json(self) -> dict[str, Any]:
        return asdict(self)
