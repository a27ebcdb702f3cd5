"""Keep the embedded Redis of ``itom-orch up`` running: start it again, on its port and files, when it dies.

Why: ``up`` supervises its workers, but the Redis it started itself was left dead if it crashed or was killed (the
out-of-memory killer picks the largest process): every route then answered 503 until someone restarted ``up``.
The workers, the API and the reconciler reconnect on their own once a Redis answers on the same URL again, and the
server reloads its append-only file (``up`` starts it durable): at most the last second of writes is lost, and the
reconciler repairs the runs that second touched.
"""

from __future__ import annotations

import logging
import threading
import time

from orchestrator.errors import OrchestratorError
from orchestrator.runtime.embedded import RedisHandle
from orchestrator.runtime.procs import STABLE_AFTER_SECONDS, restart_delay

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


class EmbeddedRedisWatchdog:
    """A thread that restarts ``handle``'s server with backoff (0.5 s, doubling to 30 s) each time it exits."""

    def __init__(self, handle: RedisHandle, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.handle = handle
        self.poll_seconds = poll_seconds
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="itom-redis-watchdog", daemon=True)

    def start(self) -> EmbeddedRedisWatchdog:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching (before the server itself is stopped, so a planned stop is not taken for a crash)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _watch(self) -> None:
        failures = 0
        up_since = time.monotonic()
        while not self._stopping.wait(self.poll_seconds):
            process = self.handle.process
            if process is None or process.poll() is None:  # poll() also reaps a dead server (no zombie left)
                if failures and time.monotonic() - up_since > STABLE_AFTER_SECONDS:
                    failures = 0
                continue
            failures += 1
            delay = restart_delay(failures)
            log.warning(
                "the embedded Redis at %s exited (code %s); starting it again in %.1fs",
                self.handle.url,
                process.returncode,
                delay,
            )
            if self._stopping.wait(delay):
                return
            try:
                self.handle.launch()
            except OrchestratorError as exc:  # its port taken meanwhile, a bad disk: try again after the next delay
                log.warning("the embedded Redis did not start again: %s", exc.message)
                continue
            self.restarts += 1
            up_since = time.monotonic()
            log.warning("the embedded Redis answers again at %s (restart %d)", self.handle.url, self.restarts)
