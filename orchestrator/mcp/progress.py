"""Waiting for a run from an MCP tool, with one progress notification per finished step.

Why no thread: the wait is a coroutine on the process's event hub (``Orchestrator.wait_for_run_async``), so
any number of waiting tool calls hold no worker thread; each step event arrives in the loop, where
``ctx.report_progress`` sends the MCP notification. Progress only ever increases, as the MCP spec requires.

Why the run's history first: a step can finish between the start and the wait's subscription (the first step of
a run often does). Once subscribed, the reporter reads the run's own finished-step events and reports each
one, in order, then follows the live ones; a step seen twice counts once. So every step is named exactly once.
"""

from __future__ import annotations

import anyio.to_thread
from fastmcp import Context

from orchestrator.models.events import Event
from orchestrator.models.run import RunView
from orchestrator.service import Orchestrator

DONE_EVENTS = ("workflow.step.completed", "workflow.step.skipped", "workflow.step.failed")


class ProgressReporter:
    """Sends ``done/total`` for a run: one notification per finished step, never backwards."""

    def __init__(self, ctx: Context, run_id: str) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self.total = 0
        self.done: set[str] = set()
        self.last = -1

    async def start(self, view: RunView, history: list[Event]) -> None:
        """The run as first read (after subscribing) and the step events it already had."""
        self.total = len(view.steps)
        await self.report(f"run {self.run_id} {view.status.value}")
        for event in history:
            await self.on_event(event)

    async def on_event(self, event: Event) -> None:
        """Called in the loop for each event of the run: history from ``start``, then live (the wait delivers
        live events only after ``on_start`` returned)."""
        step = event.payload.get("step_id")
        if event.event_type not in DONE_EVENTS or not isinstance(step, str) or step in self.done:
            return
        self.done.add(step)
        verb = event.event_type.rsplit(".", 1)[-1]
        await self.report(f"step {step} {verb} ({len(self.done)}/{self.total})")

    async def finish(self, final: RunView) -> None:
        """Steps the live feed had not brought yet (or trimmed from history) are named from the final run."""
        for step in final.steps:
            if step.status.is_done and step.step_id not in self.done:
                self.done.add(step.step_id)
                await self.report(f"step {step.step_id} {step.status.value} ({len(self.done)}/{self.total})")

    async def report(self, message: str) -> None:
        """Only when the count grew: the MCP spec wants each notification's progress above the last one's."""
        if len(self.done) <= self.last:
            return
        self.last = len(self.done)
        await self.ctx.report_progress(progress=self.last, total=self.total, message=message)


async def wait_with_progress(service: Orchestrator, run_id: str, ctx: Context, *, timeout: float) -> RunView:
    """Wait (without a thread) until the run ends; report progress after each finished step."""
    reporter = ProgressReporter(ctx, run_id)

    async def on_start(view: RunView) -> None:
        history = await anyio.to_thread.run_sync(
            lambda: service.event_history(run_id=run_id, types=list(DONE_EVENTS), limit=1000)
        )
        await reporter.start(view, history)

    final = await service.wait_for_run_async(run_id, timeout=timeout, on_event=reporter.on_event, on_start=on_start)
    await reporter.finish(final)
    return final
