"""Bare Celery canvases of the bench shapes: ``orch.bench_noop`` signatures on the cmdb-agent queue.

Why this task and queue: the baseline must run on the very worker and queue the orchestrated steps use, so
the only difference left is what the orchestrator adds. Every signature is immutable and carries its queue
explicitly (a chord body without one would go to the default queue).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, chain, chord, group

from orchestrator import keys


class BareCanvases:
    """Builds and applies bare canvases; returns the id of the task whose success ends the shape."""

    def __init__(self, app: Celery, agent_id: str) -> None:
        self.app = app
        self.queue = keys.agent_queue(agent_id)

    def noop(self) -> Any:
        return self.app.signature(keys.TASK_NOOP, immutable=True, queue=self.queue)

    def chain(self, steps: int) -> Any:
        return chain(*[self.noop() for _ in range(steps)])

    def fan_in(self, width: int) -> Any:
        """``width`` parallel tasks, then one join (a chord)."""
        return chord(group(*[self.noop() for _ in range(width)]), self.noop())

    def diamond(self) -> Any:
        """z -> {x, y} -> j (Celery folds the group plus j into a chord)."""
        return chain(self.noop(), group(self.noop(), self.noop()), self.noop())

    def apply(self, canvas: Any) -> str:
        """Apply and keep only the final task's id (dropping the AsyncResult ends its result subscription,
        exactly as dispatch does)."""
        result = canvas.apply_async()
        return str(result.id)
