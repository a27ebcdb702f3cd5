"""Waiting for a run from an MCP tool, with one progress notification per finished step.

Why no thread: the wait is a coroutine on the process's event hub (``Orchestrator.wait_for_run_async``), so
any number of waiting tool calls hold no worker thread; each step event arrives in the loop, where
``ctx.report_progress`` sends the MCP notification. Progress only ever increases, as the MCP spec requires.
"""

from __future__ import annotations

import anyio.to_thread
from fastmcp import Context

from orchestrator.models.events import Event
from orchestrator.models.run import RunView
from orchestrator.service import Orchestrator

DONE_EVENTS = frozenset({"workflow.step.completed", "workflow.step.skipped", "workflow.step.failed"})


def finished_steps(view: RunView) -> set[str]:
    return {step.step_id for step in view.steps if step.status.is_done}


class ProgressReporter:
    """Sends ``done/total`` for a run, counting finished steps from the run's events; never goes backwards."""

    def __init__(self, ctx: Context, view: RunView) -> None:
        self.ctx = ctx
        self.total = len(view.steps)
        self.done = finished_steps(view)
        self.last = -1

    async def report(self, message: str) -> None:
        if len(self.done) <= self.last:
            return
        self.last = len(self.done)
        await self.ctx.report_progress(progress=self.last, total=self.total, message=message)

    async def on_event(self, event: Event) -> None:
        """Called in the loop for each event of the run."""
        step = event.payload.get("step_id")
        if event.event_type not in DONE_EVENTS or not isinstance(step, str):
            return
        self.done.add(step)
        verb = event.event_type.rsplit(".", 1)[-1]
        await self.report(f"step {step} {verb} ({len(self.done)}/{self.total})")


async def wait_with_progress(service: Orchestrator, run_id: str, ctx: Context, *, timeout: float) -> RunView:
    """Wait (without a thread) until the run ends; report progress after each finished step."""
    view = await anyio.to_thread.run_sync(service.get_run, run_id)
    reporter = ProgressReporter(ctx, view)
    await reporter.report(f"run {run_id} {view.status.value}")
    final = await service.wait_for_run_async(run_id, timeout=timeout, on_event=reporter.on_event)
    reporter.done |= finished_steps(final)
    await reporter.report(f"run {run_id} {final.status.value}")
    return final
