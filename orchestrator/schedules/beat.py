"""The beat: celery-redbeat's Redis-stored, lock-guarded schedule, firing through the service.

Why fire in this process instead of sending a Celery task: a due schedule is an ordinary start by the
principal ``scheduler``; doing it here needs no extra queue or worker, and passes the same planning, policy
gate, durable record and audit as any other start. Only one beat holds the lock (``orch:schedule::lock``);
another one started beside it waits and takes over within the lock timeout if the first dies.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from redbeat.schedulers import RedBeatScheduler

from orchestrator.schedules.embedded import EmbeddedBeat
from orchestrator.schedules.store import configure_redbeat
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class OrchestratorScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat, except that a due entry starts its run through ``app.orch_service`` (see ``run_beat``)."""

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        entry = self.reserve(entry) if advance else entry  # advance first: a failing start never loops
        schedule_id = (entry.kwargs or {}).get("schedule_id")
        if not schedule_id:
            log.warning("beat entry %s has no schedule_id; ignored", entry.name)
            return None
        self.app.orch_service.fire_schedule(schedule_id)
        return None


def beat_app(settings: Settings) -> Celery:
    """A Celery app configured for the beat, with the service it fires through attached."""
    from orchestrator.service import Orchestrator

    service = Orchestrator(settings)
    app = service.app
    configure_redbeat(app, settings.redis_url, max_interval=settings.schedules.max_interval_seconds)
    app.orch_service = service
    return app


def run_beat(settings: Settings, *, loglevel: str = "INFO") -> None:
    """Run the beat in the foreground until SIGTERM/SIGINT (it releases its lock on the way out)."""
    app = beat_app(settings)
    beat = app.Beat(
        scheduler=OrchestratorScheduler,
        max_interval=settings.schedules.max_interval_seconds,
        loglevel=loglevel,
        quiet=True,
        redirect_stdouts=False,
    )
    beat.run()


def embedded_beat(settings: Settings) -> EmbeddedBeat:
    """The beat ``itom-orch up`` runs in its own process (see ``embedded``); call ``start()`` and ``stop()``."""
    return EmbeddedBeat(beat_app(settings), OrchestratorScheduler, max_interval=settings.schedules.max_interval_seconds)
