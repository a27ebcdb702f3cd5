"""The outbox: enqueues a state change implied, applied after the change committed and confirmed after.

Why: Redis state and the broker are two systems; a crash between "the run is recorded" and "its canvas is on
the broker" (or "a join was released" and "its canvas is on the broker") would leave a run that waits for
nothing. The state scripts write the enqueue as an outbox entry in the same atomic step; whoever made the
change drains it at once, and the reconciler drains what nobody confirmed. An entry is removed only after the
broker took it, so a crash can only duplicate a message, never lose one; duplicates are harmless because a
step refuses to run twice (its begin script checks status, generation and lease).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery

from orchestrator import keys
from orchestrator.dispatch.enqueue import enqueue
from orchestrator.state.runs import RunStore

log = logging.getLogger(__name__)


class Outbox:
    """Applies a run's unconfirmed outbox entries on a Celery app."""

    def __init__(self, runs: RunStore, app: Celery) -> None:
        self.runs = runs
        self.app = app

    def drain(self, run_id: str, only: list[str] | None = None) -> list[str]:
        """Apply the run's entries (or just ``only``) and confirm them; returns the entries applied.

        Entries of an older generation, or of a run that no longer runs, are confirmed without being applied.
        A broker error stops the drain: what was not applied stays for the next attempt.
        """
        entries = self.runs.outbox(run_id)
        if only is not None:
            entries = {name: value for name, value in entries.items() if name in only}
        if not entries:
            return []
        state = self.runs.redis.hmget(keys.run_key(run_id), ["generation", "status"])
        generation, status = int(state[0] or 0), state[1]
        settled: list[str] = []
        applied: list[str] = []
        try:
            for name, value in sorted(entries.items()):
                canvas = self._canvas(run_id, name, value, generation, status)
                if canvas is not None:
                    enqueue(self.app, canvas)
                    applied.append(name)
                settled.append(name)
        finally:
            self.runs.confirm_outbox(run_id, settled)
        return applied

    def _canvas(self, run_id: str, name: str, value: str, generation: int, status: str | None) -> Any:
        kind, _, rest = name.partition(":")
        entry_generation, _, trigger_id = rest.partition(":")
        if status != "running" or not entry_generation.isdigit() or int(entry_generation) != generation:
            log.info(
                "outbox entry %s of run %s settled without effect (run %s, gen %s)", name, run_id, status, generation
            )
            return None
        if kind == "start":
            return json.loads(value)
        if kind == "fire":
            return self.runs.trigger_canvas(run_id, trigger_id)
        log.warning("unknown outbox entry %s of run %s dropped", name, run_id)
        return None
