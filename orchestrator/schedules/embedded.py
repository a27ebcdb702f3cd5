"""The beat ``itom-orch up`` runs: a supervised thread of its own process, not a process of its own.

Why a thread: a beat is idle almost all the time (one tick every few seconds), yet as a separate Python process
it weighed ~59 MB of the dev stack, which has a budget of 700 MB. The scheduler is the same one ``itom-orch
beat`` runs (celery-redbeat's lock-guarded schedule, firing through the service), so a standalone beat beside
``up`` is still a standby, never a second firer. Why a watchdog: a beat that died would silently stop every
schedule, so a crash (Redis gone mid-tick, say) starts a fresh beat after a backoff that doubles up to 30 s and
resets once a beat has run for a minute; the restart count is kept for the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from celery.beat import Service
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.runtime.procs import STABLE_AFTER_SECONDS, restart_delay

log = logging.getLogger(__name__)


class EmbeddedBeat:
    """Run ``scheduler_cls`` on ``app`` in a daemon thread, restarted with backoff whenever it stops by itself."""

    def __init__(self, app: Celery, scheduler_cls: type[Any], *, max_interval: float) -> None:
        self.app = app
        self.scheduler_cls = scheduler_cls
        self.max_interval = max_interval
        self.restarts = 0
        self._stopping = threading.Event()
        self._service: Service | None = None
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="itom-beat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the beat to stop; it ends after its current sleep (at most ``max_interval``) and releases its lock.

        A standby beat blocked waiting for the lock is left to die with the process (the thread is a daemon)."""
        self._stopping.set()
        if self._service is not None:
            self._service.stop()
        if self._thread is not None:
            self._thread.join(self.max_interval + 2 if timeout is None else timeout)

    def _supervise(self) -> None:
        failures = 0  # since the last beat that ran for STABLE_AFTER_SECONDS
        while not self._stopping.is_set():
            service = Service(self.app, scheduler_cls=self.scheduler_cls, max_interval=self.max_interval)
            self._service = service
            if self._stopping.is_set():  # stop() came before this service existed
                return
            started = time.monotonic()
            error: Exception | None = None
            try:
                service.start()
            except Exception as exc:
                error = exc
            else:
                if self._stopping.is_set():
                    return
            failures = 1 if time.monotonic() - started > STABLE_AFTER_SECONDS else failures + 1
            delay = restart_delay(failures)
            what = "crashed" if error else "stopped by itself"
            if isinstance(error, RedisConnectionError | RedisTimeoutError):  # Redis away: no traceback to read
                what = f"lost Redis ({type(error).__name__}: {error})"
                error = None
            log.log(
                logging.ERROR if error else logging.WARNING,
                "the beat %s; restarting it in %.1fs",
                what,
                delay,
                exc_info=error,
            )
            self.restarts += 1
            if self._stopping.wait(delay):
                return
