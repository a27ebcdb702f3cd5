"""``itom-orch bench``: the orchestrator's overhead measured against bare Celery, side by side in one run.

Why one run on one private Redis and one worker: ratios are only honest when both variants see the same
machine, the same Redis, the same worker and the same moment. See ``runner.run_bench`` for the sequence and
``report`` for the JSON layout and the targets (which are reported, never asserted).
"""

from orchestrator.bench.config import BenchConfig
from orchestrator.bench.runner import run_bench

__all__ = ["BenchConfig", "run_bench"]
