"""The beat ``itom-orch up`` runs as a supervised thread: a scheduler that crashes is started again after a
backoff, and stopping ends the thread promptly. Real threads and a real ``celery.beat.Service`` on a Celery app
with no broker (these schedulers send nothing); the live firing of a schedule is in
``tests/integration/test_schedules_live.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from celery import Celery
from celery.beat import Scheduler

from orchestrator.runtime import procs
from orchestrator.schedules.embedded import EmbeddedBeat
from tests.integration.helpers import wait_until


class CountingScheduler(Scheduler):  # type: ignore[misc]
    """Counts its ticks; the first ``crashes`` ticks (over all instances) raise, as a Redis outage would."""

    crashes: ClassVar[int] = 0
    ticks: ClassVar[int] = 0
    instances: ClassVar[int] = 0
    lock = threading.Lock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).instances += 1

    def tick(self, *args: Any, **kwargs: Any) -> float:
        with self.lock:
            type(self).ticks += 1
            if type(self).crashes > 0:
                type(self).crashes -= 1
                raise ConnectionError("redis went away mid-tick")
        return 0.05


@pytest.fixture
def scheduler() -> Iterator[type[CountingScheduler]]:
    CountingScheduler.crashes = CountingScheduler.ticks = CountingScheduler.instances = 0
    yield CountingScheduler


@pytest.fixture
def app() -> Celery:
    return Celery("embedded-beat-test", broker="memory://", set_as_current=False)


def test_a_beat_that_crashes_is_started_again_and_keeps_ticking(
    app: Celery, scheduler: type[CountingScheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "BACKOFF_FIRST_SECONDS", 0.05)
    scheduler.crashes = 2
    beat = EmbeddedBeat(app, scheduler, max_interval=0.2)
    beat.start()
    try:
        wait_until(lambda: scheduler.ticks >= 6, timeout=10, what="the beat to tick again after two crashes")
        assert beat.restarts == 2
        assert scheduler.instances == 3  # a fresh scheduler after each crash
        assert beat.alive
    finally:
        beat.stop()
    assert not beat.alive


def test_stop_ends_the_beat_within_its_interval_even_while_it_backs_off(
    app: Celery, scheduler: type[CountingScheduler]
) -> None:
    scheduler.crashes = 10**6  # crashes forever: the watchdog sits in its backoff
    beat = EmbeddedBeat(app, scheduler, max_interval=0.2)
    beat.start()
    wait_until(lambda: beat.restarts >= 1, timeout=10, what="the first crash")
    started = time.monotonic()
    beat.stop(timeout=5)
    assert not beat.alive
    assert time.monotonic() - started < 2


def test_a_beat_stopped_before_it_ran_never_ticks(app: Celery, scheduler: type[CountingScheduler]) -> None:
    beat = EmbeddedBeat(app, scheduler, max_interval=0.2)
    beat.stop()
    beat.start()
    wait_until(lambda: not beat.alive, timeout=5, what="the stopped beat's thread to end")
    assert scheduler.ticks == 0
