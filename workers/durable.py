"""Recording that survives a Redis restart: retry with backoff, never ack a lost outcome away.

Why: a step's effect may exist (a ticket opened) while Redis restarts (with AOF: seconds). If the worker gave
up and let Celery ack the message, the outcome would be lost with the effect in place. So the worker keeps
retrying the write for ``record_retry_seconds``; only then does it give up, without acking (the caller makes
the message come back), and the lease/reconciler machinery takes over.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from orchestrator.runtime.redis_client import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

T = TypeVar("T")


class RecordingLost(Exception):
    """Redis stayed unreachable for the whole retry window."""


def durable(call: Callable[[], T], *, what: str, window: float, first_delay: float = 0.05) -> T:
    """``call()``, retried on transient Redis errors with jittered exponential backoff for ``window`` seconds."""
    deadline = time.monotonic() + window
    delay = first_delay
    attempt = 0
    while True:
        try:
            return call()
        except TRANSIENT_ERRORS as exc:
            attempt += 1
            if time.monotonic() + delay > deadline:
                raise RecordingLost(f"{what}: Redis unreachable for {window:g}s ({exc})") from exc
            log.warning("%s: Redis unavailable (%s), retry %d in %.2fs", what, type(exc).__name__, attempt, delay)
            time.sleep(delay * random.uniform(0.5, 1.0))  # backoff between retries of a lost connection
            delay = min(delay * 2, 2.0)
