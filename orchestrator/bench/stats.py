"""Min / median / max of repeated measurements, and the orchestrated-vs-bare ratio.

Why medians: single repetitions on a shared machine spread up to 1.7x (see the Celery facts); the median of
alternating repetitions is the figure least moved by one noisy neighbour. Why paired ratios: the bare and the
orchestrated variant of one repetition run back to back, so a neighbour's burst moves both; the ratio of each
pair cancels most of it, and the spread of those ratios says how far a single figure can be trusted.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Spread:
    """Repeated values of one figure."""

    values: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def max(self) -> float:
        return max(self.values)

    def as_json(self, digits: int = 4) -> dict[str, Any]:
        return {
            "runs": [round(v, digits) for v in self.values],
            "min": round(self.min, digits),
            "median": round(self.median, digits),
            "max": round(self.max, digits),
        }


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("a spread needs at least one value")
    return Spread(tuple(float(v) for v in values))


def overhead_ratio(bare: float, orchestrated: float, *, throughput: bool) -> float:
    """How many times slower the orchestrated variant is (> 1 means slower) for either kind of figure.

    Times: orchestrated / bare. Rates: bare / orchestrated.
    """
    if throughput:
        return bare / orchestrated if orchestrated > 0 else float("inf")
    return orchestrated / bare if bare > 0 else float("inf")


def paired_ratios(bare: Sequence[float], orchestrated: Sequence[float], *, throughput: bool) -> Spread:
    """``overhead_ratio`` of each repetition's pair (bare and orchestrated measured back to back)."""
    return spread([overhead_ratio(b, o, throughput=throughput) for b, o in zip(bare, orchestrated, strict=True)])
